"""Sender identities check and normalise their header fields on construction."""

from __future__ import annotations

import attrs
import pytest

from starlight_sequences.campaigns import EmailIdentity, LinkedInIdentity
from starlight_sequences.errors import InvalidIdentity, InvalidSettings
from starlight_sequences.ids import SenderId


def mailbox(**overrides: object) -> EmailIdentity:
    values: dict[str, object] = {"id": "mbx-1", "address": "ada@acme.example.com"}
    values.update(overrides)
    return EmailIdentity(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("Ada", "Ada"),
        ("Ada\n", "Ada"),  # a trailing newline separates nothing: removed, not sent
        ("  Ada Lovelace\r\n", "Ada Lovelace"),
        ("Ada\tfrom Nimbus", "Ada from Nimbus"),
        ("", ""),
        ("Chief, Executive", "Chief, Executive"),  # quoted by the email package, not refused
    ],
)
def test_a_display_name_is_tidied(given: str, kept: str) -> None:
    assert mailbox(display_name=given).display_name == kept


@pytest.mark.parametrize(
    ("given", "reason"),
    [
        ("Ada\nBcc: victim@evil.example", "line break (U+000A) at position 4"),
        ("Ada\r\nLovelace", "line break (U+000D) at position 4"),
        ("Ada\x1b[31m", "control character (U+001B)"),
        ("Ada\x07", "control character (U+0007)"),
        ("\u202emoc.knab", "bidirectional control (U+202E)"),
        ("Ada\u2028Lovelace", "line break (U+2028)"),
    ],
)
def test_a_display_name_with_a_line_break_or_control_character_is_refused(
    given: str, reason: str
) -> None:
    with pytest.raises(InvalidIdentity) as caught:
        mailbox(display_name=given)
    assert (caught.value.identity, caught.value.field) == ("mbx-1", "display_name")
    assert reason in caught.value.reason
    assert isinstance(caught.value, InvalidSettings)
    assert str(caught.value).startswith("sender identity 'mbx-1': display_name: ")


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("ada@acme.example.com", "ada@acme.example.com"),
        (" Ada@ACME.Example.COM ", "Ada@acme.example.com"),
        ("ada@EXAMPLE.ＣＯＭ", "ada@example.com"),
        ("ada@bücher.de", "ada@xn--bcher-kva.de"),
    ],
)
def test_the_address_takes_the_stored_form_leads_use(given: str, stored: str) -> None:
    assert mailbox(address=given).address == stored


@pytest.mark.parametrize(
    ("given", "reason"),
    [
        ("ada@xn--zz.com", "Invalid A-label"),
        ("ada", "no @"),
        ("Ada <ada@acme.example.com>", "whitespace"),
        ("ada@acme.example.com\r\nBcc: x@evil.example", "whitespace"),
        ("", "is empty"),
    ],
)
def test_an_invalid_address_is_refused_naming_the_field(given: str, reason: str) -> None:
    with pytest.raises(InvalidIdentity) as caught:
        mailbox(address=given)
    assert (caught.value.identity, caught.value.field) == ("mbx-1", "address")
    assert reason in caught.value.reason


@pytest.mark.parametrize("given", ["mbx\x1b[2J", "mbx\n", "mbx\t1", "", "  "])
def test_an_email_identity_id_must_be_a_clean_identifier(given: str) -> None:
    with pytest.raises(InvalidIdentity) as caught:
        mailbox(id=given)
    assert caught.value.field == "id"
    assert str(caught.value).isprintable()


@pytest.mark.parametrize("given", ["li\x1b[2J", "li\r\n", ""])
def test_a_linkedin_identity_id_must_be_a_clean_identifier(given: str) -> None:
    with pytest.raises(InvalidIdentity) as caught:
        LinkedInIdentity(id=given)
    assert caught.value.field == "id"


def test_identities_take_plain_string_ids_typed_as_sender_ids() -> None:
    assert mailbox(id="ada").id == SenderId("ada")
    assert LinkedInIdentity(id="ada-li").id == SenderId("ada-li")
    assert attrs.evolve(LinkedInIdentity(id="a"), id="b").id == "b"


def test_evolve_checks_an_identity_again() -> None:
    with pytest.raises(InvalidIdentity, match="display_name"):
        attrs.evolve(mailbox(), display_name="Ada\nBcc: x@evil.example")
    assert attrs.evolve(mailbox(), display_name="Ada\n").display_name == "Ada"
