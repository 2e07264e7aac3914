"""The header rule (``header_text``): what is normalised, what is refused, and that what it
accepts is accepted by the email package and by the SMTP adapter's composer."""

from __future__ import annotations

import email.policy
import unicodedata
from email.headerregistry import Address
from email.message import EmailMessage

import pytest
from hypothesis import given
from hypothesis import strategies as st

from starlight_sequences.adapters.smtp import compose_email
from starlight_sequences.campaigns import EmailIdentity
from starlight_sequences.channels import Action
from starlight_sequences.drafts import ChannelLimits, Draft, DraftStatus, draft_problems
from starlight_sequences.errors import InvalidIdentity, InvalidLead
from starlight_sequences.header_text import (
    UnsafeKind,
    find_unsafe_character,
    header_text_problem,
    identifier_problem,
    normalise_header_text,
)
from starlight_sequences.ids import CampaignId, LeadId, SenderId
from starlight_sequences.leads import Lead
from starlight_sequences.ports.senders import OutgoingEmail
from tests.strategies import REFUSED_IN_HEADERS, header_text_inputs

# --- the rule ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("Quick question", "Quick question"),
        ("Quick\tquestion", "Quick question"),
        ("Ada\n", "Ada"),
        ("\r\n  Ada Lovelace \t", "Ada Lovelace"),
        ("\u3000Ada\u00a0", "Ada"),
        ("Ada  Lovelace", "Ada  Lovelace"),  # inner spaces are kept as written
        ("José María", "José María"),
        ("محمد", "محمد"),  # right-to-left text needs no bidi controls
        ("\u200fשלום\u200e", "\u200fשלום\u200e"),  # implicit marks are allowed
        ("نامه\u200cها", "نامه\u200cها"),  # Persian zero-width non-joiner
        ("👩\u200d💻 news", "👩\u200d💻 news"),  # emoji sequence with a joiner
        ("", ""),
        ("   ", ""),
    ],
)
def test_harmless_text_is_normalised_and_accepted(given: str, kept: str) -> None:
    assert header_text_problem(given) is None
    assert normalise_header_text(given) == kept
    assert normalise_header_text(kept) == kept


@pytest.mark.parametrize(
    ("given", "kind", "position"),
    [
        ("Hi\r\nBcc: victim@evil.example", UnsafeKind.LINE_BREAK, 3),
        ("two\nlines", UnsafeKind.LINE_BREAK, 4),
        ("  two\rlines", UnsafeKind.LINE_BREAK, 6),  # counted in the text as given
        ("a\u2028b", UnsafeKind.LINE_BREAK, 2),
        ("a\u2029b", UnsafeKind.LINE_BREAK, 2),
        ("a\x85b", UnsafeKind.LINE_BREAK, 2),
        ("a\x0bb", UnsafeKind.LINE_BREAK, 2),
        ("Ada\x1b[31m", UnsafeKind.CONTROL, 4),
        ("Ada\x00", UnsafeKind.CONTROL, 4),
        ("Ada\x7f", UnsafeKind.CONTROL, 4),
        ("Ada\x9b31m", UnsafeKind.CONTROL, 4),
        ("\x1fAda", UnsafeKind.CONTROL, 1),  # information separators are not white space
        ("\u202emoc.knab@ada", UnsafeKind.BIDI, 1),
        ("Ada\u2066x\u2069", UnsafeKind.BIDI, 4),
        ("Ada\ud800", UnsafeKind.SURROGATE, 4),
    ],
)
def test_control_characters_line_breaks_and_bidi_controls_are_refused(
    given: str, kind: UnsafeKind, position: int
) -> None:
    problem = header_text_problem(given)
    assert problem is not None
    assert (problem.kind, problem.position) == (kind, position)
    assert given[position - 1] == problem.char
    assert f"U+{ord(problem.char):04X}" in problem.reason
    assert f"at position {position}" in problem.reason


@pytest.mark.parametrize("given", ["ann\t", "ann\n", "a\x1bb", "a\u202eb", "a\u2028b"])
def test_identifiers_are_refused_for_any_unsafe_character_even_at_the_ends(given: str) -> None:
    assert identifier_problem(given) is not None


def test_exactly_controls_separators_bidi_controls_and_surrogates_are_unsafe() -> None:
    bidi = set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
    for code in range(0x110000):
        char = chr(code)
        expected = unicodedata.category(char) in ("Cc", "Cs", "Zl", "Zp") or char in bidi
        assert (find_unsafe_character(char) is not None) is expected, hex(code)


def test_identifiers_are_not_normalised() -> None:
    assert identifier_problem(" crm 1042 ") is None
    assert identifier_problem("lead-1") is None


# --- what the rule accepts, the email package and the SMTP composer accept ---------------------


def _assert_fits_a_header(text: str) -> None:
    assert not any(char in REFUSED_IN_HEADERS for char in text)
    assert all(ord(char) >= 0x20 and not 0x7F <= ord(char) <= 0x9F for char in text)
    assert not any("\ud800" <= char <= "\udfff" for char in text)
    assert len(text.splitlines()) <= 1
    message = EmailMessage(policy=email.policy.SMTP)
    message["Subject"] = text
    message["From"] = Address(display_name=text, username="ada", domain="example.com")
    message["To"] = Address(display_name=text, username="ann", domain="example.com")
    message.set_content("Hello")
    wire = message.as_bytes()
    parsed = email.message_from_bytes(wire, policy=email.policy.default)
    assert sorted(parsed.keys()) == sorted(message.keys())
    compose_email(
        OutgoingEmail(
            idempotency_key="stl-1",
            sender_id=SenderId("mbx"),
            from_address="ada@example.com",
            from_name=text,
            to_address="ann@example.com",
            to_name=text,
            subject=text or "Hello",
            body="Hello",
            campaign_id=CampaignId("c"),
            lead_id=LeadId("ann"),
            step=1,
        ),
        date="Mon, 30 Nov 2026 09:00:00 +0000",
    )


@given(header_text_inputs | st.text())
def test_any_text_is_refused_or_becomes_header_safe(text: str) -> None:
    problem = header_text_problem(text)
    if problem is not None:
        assert problem.char == text[problem.position - 1]
        return
    _assert_fits_a_header(normalise_header_text(text))


@given(header_text_inputs | st.text(max_size=40))
def test_any_display_name_is_a_typed_error_or_fits_a_header(text: str) -> None:
    if header_text_problem(text) is not None:
        with pytest.raises(InvalidIdentity) as caught:
            EmailIdentity(id="mbx", address="ada@example.com", display_name=text)
        assert (caught.value.identity, caught.value.field) == ("mbx", "display_name")
        return
    mailbox = EmailIdentity(id="mbx", address="ada@example.com", display_name=text)
    _assert_fits_a_header(mailbox.display_name)


@given(header_text_inputs | st.text(max_size=40), header_text_inputs)
def test_any_lead_name_is_a_typed_error_or_fits_a_header(first: str, last: str) -> None:
    refused = [
        field
        for field, text in (("first_name", first), ("last_name", last))
        if header_text_problem(text) is not None
    ]
    if refused:
        with pytest.raises(InvalidLead) as caught:
            Lead(id="ann", first_name=first, last_name=last)
        assert (caught.value.lead, caught.value.field) == ("ann", refused[0])
        return
    lead = Lead(id="ann", first_name=first, last_name=last)
    _assert_fits_a_header(" ".join(p for p in (lead.first_name, lead.last_name) if p))


@given(header_text_inputs | st.text(max_size=60))
def test_any_drafted_subject_needs_attention_or_fits_a_header(text: str) -> None:
    limits = ChannelLimits.for_action(Action.EMAIL)
    drafted = Draft(
        campaign_id=CampaignId("c"),
        lead_id=LeadId("ann"),
        step=1,
        action=Action.EMAIL,
        subject=text,
        body="Hello",
        status=DraftStatus.READY,
    )
    problems = draft_problems(drafted.subject, drafted.body, limits)
    if header_text_problem(text) is not None:
        assert any(p.startswith("subject") for p in problems)
        return
    assert drafted.subject is not None
    if not problems:
        _assert_fits_a_header(drafted.subject)
