"""Drafts: the message a step will send to one lead, and the channel rules it must obey."""

from __future__ import annotations

import enum

import attrs

from starlight_sequences.channels import Action
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
]

EMAIL_SUBJECT_LIMIT = 200
"""Longest email subject we accept, in characters (mail clients cut far earlier)."""
LINKEDIN_NOTE_LIMIT_PREMIUM = 300
"""Longest connection note LinkedIn accepts from a premium account."""
LINKEDIN_NOTE_LIMIT_FREE = 200
"""Longest connection note LinkedIn accepts from a free account."""
LINKEDIN_MESSAGE_LIMIT = 8000
"""Longest LinkedIn message, in characters."""


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


def draft_problems(subject: str | None, body: str, limits: ChannelLimits) -> tuple[str, ...]:
    """Every way a draft breaks its channel's rules, as sentences; empty when it is valid.

    Email: a one-line subject (no CR/LF), non-empty, at most ``subject_max`` characters.
    All channels: a non-empty body (whitespace does not count), within ``body_max``.
    """
    problems: list[str] = []
    if limits.needs_subject:
        if subject is None or not subject.strip():
            problems.append("subject is empty")
        else:
            if "\r" in subject or "\n" in subject:
                problems.append("subject must be one line (it contains a line break)")
            if len(subject) > limits.subject_max:
                problems.append(
                    f"subject is {len(subject)} characters; the limit is {limits.subject_max}"
                )
    elif subject:
        problems.append(f"a {limits.action.value} has no subject")
    if not body.strip():
        problems.append("body is empty")
    elif limits.body_max is not None and len(body) > limits.body_max:
        what = "note" if limits.action is Action.LINKEDIN_CONNECT else "body"
        problems.append(f"{what} is {len(body)} characters; the limit is {limits.body_max}")
    return tuple(problems)


@attrs.frozen(kw_only=True)
class Draft:
    """The message one step sends to one lead.

    Attributes:
        campaign_id, lead_id, step: which (campaign, lead, step) it belongs to.
        action: the step's action.
        subject: email subject; None for LinkedIn.
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
    subject: str | None
    body: str
    status: DraftStatus
    problem: str = ""
    version: int = 1
    edited: bool = False

    @property
    def needs_attention(self) -> bool:
        """True when the draft blocks approval of its lead."""
        return self.status is DraftStatus.NEEDS_ATTENTION
