"""The drafting port: turns a brief, a step's guidance and a lead into a message."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import attrs

from starlight_sequences.drafts import ChannelLimits
from starlight_sequences.leads import Lead

__all__ = ["DraftFailure", "DraftRequest", "DraftedMessage", "Drafter", "EarlierTouch"]


@attrs.frozen(kw_only=True)
class EarlierTouch:
    """A message drafted for the same lead earlier in the campaign (so the next one differs)."""

    step: int
    action_label: str
    subject: str | None
    body: str


@attrs.frozen(kw_only=True)
class DraftRequest:
    """One message to draft.

    Lead fields are untrusted input: a drafter passes them to a model as data, never as
    instructions.

    Attributes:
        key: identifies the request in the batch ("<lead id>:<step>").
        brief: the campaign's brief, written by the user.
        guidance: the step's drafting guidance.
        step: the step number in the shape; ``step_index``/``step_count`` place it in the
            lead's own cadence (1-based).
        limits: what the channel allows (subject or not, lengths).
        lead: the recipient.
        sender_name: who signs.
        earlier: the lead's earlier drafts in this campaign, in step order.
    """

    key: str
    brief: str
    guidance: str
    step: int
    step_index: int
    step_count: int
    limits: ChannelLimits
    lead: Lead
    sender_name: str = ""
    earlier: tuple[EarlierTouch, ...] = ()


@attrs.frozen(kw_only=True)
class DraftedMessage:
    """A drafted message: ``subject`` for email (None otherwise) and the body."""

    subject: str | None
    body: str


@attrs.frozen(kw_only=True)
class DraftFailure:
    """The drafter could not draft this message; ``reason`` says why (shown to the user)."""

    reason: str


class Drafter(Protocol):
    """Drafts messages in batches.

    Implementations: ``TemplateDrafter`` (offline, deterministic), ``OpenAICompatibleDrafter``.
    """

    def draft(self, requests: Sequence[DraftRequest]) -> list[DraftedMessage | DraftFailure]:
        """Draft every request; return one result per request, in the same order.

        A message that cannot be drafted is a :class:`DraftFailure` in its place: one failure
        never fails the batch. Raising is for when the drafter cannot work at all (bad
        credentials, misconfiguration): ``AdapterError``. The service validates every result
        against ``limits`` itself, so a drafter need not be perfect, only honest.
        """
        ...
