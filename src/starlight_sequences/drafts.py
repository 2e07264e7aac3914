"""Drafts: the message a step will send to one lead, and the channel rules it must obey."""

from __future__ import annotations

import enum
import re
from typing import Final

import attrs

from starlight_sequences.channels import Action
from starlight_sequences.header_text import UnsafeKind, header_text_problem, normalise_header_text
from starlight_sequences.ids import CampaignId, LeadId

__all__ = [
    "EMAIL_SUBJECT_LIMIT",
    "LINKEDIN_MESSAGE_LIMIT",
    "LINKEDIN_NOTE_LIMIT_FREE",
    "LINKEDIN_NOTE_LIMIT_PREMIUM",
    "ChannelLimits",
    "Draft",
    "DraftStatus",
    "draft_problems",
    "normalise_subject",
]

EMAIL_SUBJECT_LIMIT = 200
"""Longest email subject we accept, in characters (mail clients cut far earlier)."""
LINKEDIN_NOTE_LIMIT_PREMIUM = 300
"""Longest connection note LinkedIn accepts from a premium account."""
LINKEDIN_NOTE_LIMIT_FREE = 200
"""Longest connection note LinkedIn accepts from a free account."""
LINKEDIN_MESSAGE_LIMIT = 8000
"""Longest LinkedIn message, in characters."""

_SURROGATE: Final = re.compile("[\ud800-\udfff]")


class DraftStatus(enum.StrEnum):
    """Where a draft stands in review."""

    READY = "ready"
    """Valid; will be sent once the campaign is approved."""
    NEEDS_ATTENTION = "needs_attention"
    """Invalid or the drafter failed; ``problem`` says why. Blocks approval of its lead."""


@attrs.frozen(kw_only=True)
class ChannelLimits:
    """What a message on a channel may contain; handed to the drafter and checked on drafts.

    Attributes:
        action: the step's action.
        needs_subject: email only.
        subject_max: longest subject, in characters (0 when there is no subject).
        body_max: longest body, in characters (None: no limit but non-empty).
    """

    action: Action
    needs_subject: bool
    subject_max: int
    body_max: int | None

    @classmethod
    def for_action(cls, action: Action, *, premium_linkedin: bool = True) -> ChannelLimits:
        """The limits of ``action``; a connection note's limit depends on the account type."""
        if action is Action.EMAIL:
            return cls(
                action=action, needs_subject=True, subject_max=EMAIL_SUBJECT_LIMIT, body_max=None
            )
        if action is Action.LINKEDIN_CONNECT:
            limit = LINKEDIN_NOTE_LIMIT_PREMIUM if premium_linkedin else LINKEDIN_NOTE_LIMIT_FREE
            return cls(action=action, needs_subject=False, subject_max=0, body_max=limit)
        return cls(
            action=action, needs_subject=False, subject_max=0, body_max=LINKEDIN_MESSAGE_LIMIT
        )


def normalise_subject(subject: str | None) -> str | None:
    """A subject as a draft stores it: tidied by the header rule (tabs become spaces,
    surrounding white space goes; see :mod:`starlight_sequences.header_text`). Never raises:
    what the rule refuses is left for :func:`draft_problems` to report."""
    return None if subject is None else normalise_header_text(subject)


def _subject_problem(subject: str) -> str | None:
    unsafe = header_text_problem(subject)
    if unsafe is None:
        return None
    if unsafe.kind is UnsafeKind.LINE_BREAK:
        return f"subject must be one line (it {unsafe.reason})"
    return f"subject {unsafe.reason}; an email header cannot hold it"


def draft_problems(subject: str | None, body: str, limits: ChannelLimits) -> tuple[str, ...]:
    """Every way a draft breaks its channel's rules, as sentences; empty when it is valid.

    The subject is judged as :func:`normalise_subject` stores it (a tab is no problem, a
    trailing newline neither). Email: a non-empty subject, one line, without control
    characters or bidirectional controls (the header rule of
    :mod:`starlight_sequences.header_text`), at most ``subject_max`` characters. All channels:
    a non-empty body (whitespace does not count), within ``body_max``, without unpaired
    surrogates (which cannot be written as UTF-8, so no sender could send it).
    """
    problems: list[str] = []
    subject = normalise_subject(subject)
    if limits.needs_subject:
        if not subject:
            problems.append("subject is empty")
        else:
            if (problem := _subject_problem(subject)) is not None:
                problems.append(problem)
            if len(subject) > limits.subject_max:
                problems.append(
                    f"subject is {len(subject)} characters; the limit is {limits.subject_max}"
                )
    elif subject:
        problems.append(f"a {limits.action.value} has no subject")
    what = "note" if limits.action is Action.LINKEDIN_CONNECT else "body"
    if not body.strip():
        problems.append("body is empty")
    elif limits.body_max is not None and len(body) > limits.body_max:
        problems.append(f"{what} is {len(body)} characters; the limit is {limits.body_max}")
    if (found := _SURROGATE.search(body)) is not None:
        problems.append(
            f"{what} contains an unpaired surrogate (U+{ord(found.group()):04X}) at "
            f"position {found.start() + 1}, which cannot be written as UTF-8"
        )
    return tuple(problems)


@attrs.frozen(kw_only=True)
class Draft:
    """The message one step sends to one lead.

    Attributes:
        campaign_id, lead_id, step: which (campaign, lead, step) it belongs to.
        action: the step's action.
        subject: email subject; None for LinkedIn. Stored as :func:`normalise_subject` gives
            it (also through ``attrs.evolve``), so an edited or drafted subject with a tab
            holds a space; whatever the header rule refuses stays, for the check to report.
        body: the text (email body, connection note, or LinkedIn message).
        status: READY, or NEEDS_ATTENTION with ``problem`` saying why.
        problem: why it needs attention ("" when ready).
        version: 1 for the first draft; +1 per regeneration or edit.
        edited: a person changed it after drafting.
    """

    campaign_id: CampaignId
    lead_id: LeadId
    step: int
    action: Action
    subject: str | None = attrs.field(converter=normalise_subject)
    body: str
    status: DraftStatus
    problem: str = ""
    version: int = 1
    edited: bool = False

    @property
    def needs_attention(self) -> bool:
        """True when the draft blocks approval of its lead."""
        return self.status is DraftStatus.NEEDS_ATTENTION
