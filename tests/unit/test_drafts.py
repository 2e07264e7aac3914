"""Drafts: the subject is normalised by the header rule, and what it refuses needs attention."""

from __future__ import annotations

import attrs
import pytest

from starlight_sequences.channels import Action
from starlight_sequences.drafts import (
    ChannelLimits,
    Draft,
    DraftStatus,
    draft_problems,
    normalise_subject,
)
from starlight_sequences.ids import CampaignId, LeadId

EMAIL = ChannelLimits.for_action(Action.EMAIL)
MESSAGE = ChannelLimits.for_action(Action.LINKEDIN_MESSAGE)


def draft(subject: str | None = "Quick question", body: str = "Hi Ann.") -> Draft:
    return Draft(
        campaign_id=CampaignId("c1"),
        lead_id=LeadId("ann"),
        step=1,
        action=Action.EMAIL,
        subject=subject,
        body=body,
        status=DraftStatus.READY,
    )


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("Quick\tquestion", "Quick question"),
        ("Quick question\n", "Quick question"),
        ("  Quick question  ", "Quick question"),
        (None, None),
    ],
)
def test_a_draft_stores_its_subject_normalised(given: str | None, stored: str | None) -> None:
    assert draft(subject=given).subject == stored
    assert normalise_subject(given) == stored


def test_an_edit_through_evolve_is_normalised_too() -> None:
    assert attrs.evolve(draft(), subject="Quick\tquestion").subject == "Quick question"


def test_a_subject_with_a_tab_has_no_problem() -> None:
    assert draft_problems("Quick\tquestion", "Hi Ann.", EMAIL) == ()


@pytest.mark.parametrize(
    ("subject", "problem"),
    [
        (
            "two\nlines",
            "subject must be one line (it contains a line break (U+000A) at position 4)",
        ),
        ("Hi\r\nBcc: x@evil.example", "subject must be one line (it contains a line break"),
        ("Quick\x07question", "subject contains a control character (U+0007) at position 6"),
        ("Quick\x1b[31mquestion", "subject contains a control character (U+001B)"),
        ("\u202eQuick question", "subject contains a bidirectional control (U+202E)"),
        ("Quick\u2029question", "subject must be one line"),
    ],
)
def test_a_subject_the_header_rule_refuses_is_a_problem(subject: str, problem: str) -> None:
    problems = draft_problems(subject, "Hi Ann.", EMAIL)
    assert len(problems) == 1
    assert problems[0].startswith(problem)
    # A draft keeps such a subject as it is, for review to show and the check to report.
    assert draft(subject=subject).subject == subject.strip()


def test_a_subject_of_only_white_space_is_empty() -> None:
    assert draft_problems("\t\n ", "Hi Ann.", EMAIL) == ("subject is empty",)


def test_the_subject_limit_counts_the_normalised_subject() -> None:
    assert draft_problems("x" * 200 + "\n", "Hi.", EMAIL) == ()
    assert draft_problems("x" * 201, "Hi.", EMAIL) == (
        "subject is 201 characters; the limit is 200",
    )


def test_a_body_with_an_unpaired_surrogate_cannot_be_sent_so_it_is_a_problem() -> None:
    assert draft_problems("Hi", "Hi \ud800 Ann", EMAIL) == (
        "body contains an unpaired surrogate (U+D800) at position 4, which cannot be written "
        "as UTF-8",
    )
    assert draft_problems(None, "\udfff", MESSAGE)[0].startswith("body contains an unpaired")


def test_bodies_keep_their_line_breaks_and_tabs() -> None:
    assert draft_problems("Hi", "Hi Ann,\n\n\tThanks.\r\n", EMAIL) == ()
