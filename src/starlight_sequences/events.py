"""What happened to a contact: inbound events a host app reports, and the activity journal."""

from __future__ import annotations

import datetime as dt
import enum
import reprlib
from typing import Any

import attrs

from starlight_sequences.errors import InvalidEvent
from starlight_sequences.ids import CampaignId, LeadId

__all__ = [
    "Activity",
    "ActivityKind",
    "ActivityPage",
    "ActivityReason",
    "EventKind",
    "InboundEvent",
    "JournalEntry",
]


class EventKind(enum.StrEnum):
    """Events a host app reports about a contact."""

    REPLY = "reply"
    CONNECTION_ACCEPTED = "connection_accepted"
    CONNECTION_DECLINED = "connection_declined"
    """Declined or withdrawn: gated LinkedIn steps will not be sent."""
    BOUNCE = "bounce"
    UNSUBSCRIBE = "unsubscribe"
    MEETING_BOOKED = "meeting_booked"
    OUT_OF_OFFICE = "out_of_office"


def _shown(value: object) -> str:
    """A value for an error message: text quoted and cut short, anything else by its type."""
    if isinstance(value, str):
        return reprlib.repr(value)
    return f"a {type(value).__name__}"


def _event_kind(value: EventKind | str) -> EventKind:
    if isinstance(value, EventKind):
        return value
    if isinstance(value, str):
        try:
            return EventKind(value)
        except ValueError:
            pass
    known = ", ".join(kind.value for kind in EventKind)
    raise InvalidEvent(f"inbound event: kind must be one of {known}, not {_shown(value)}")


def _lead_id(value: str) -> LeadId:
    if not isinstance(value, str) or not value:
        raise InvalidEvent(
            f"inbound event: lead_id must be a non-empty string, not {_shown(value)}"
        )
    return LeadId(value)


def _campaign_id(value: str | None) -> CampaignId | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise InvalidEvent(
            f"inbound event: campaign_id must be a non-empty string or None, not {_shown(value)}"
        )
    return CampaignId(value)


def _aware(instance: Any, attribute: attrs.Attribute[dt.datetime], value: object) -> None:
    if not isinstance(value, dt.datetime):
        raise InvalidEvent(f"inbound event: at must be a datetime, not {_shown(value)}")
    if value.utcoffset() is None:
        raise InvalidEvent(
            f"inbound event: at must be timezone-aware, not the naive {value.isoformat()}"
        )


def _date_or_none(instance: Any, attribute: attrs.Attribute[dt.date | None], value: object) -> None:
    # a datetime is a date too, but its local date depends on a timezone the event lacks
    if value is not None and (not isinstance(value, dt.date) or isinstance(value, dt.datetime)):
        raise InvalidEvent(
            f"inbound event: return_date must be a date (not a datetime) or None, "
            f"not {_shown(value)}"
        )


def _text(instance: Any, attribute: attrs.Attribute[str], value: object) -> None:
    if not isinstance(value, str):
        raise InvalidEvent(f"inbound event: {attribute.name} must be a string, not {_shown(value)}")


@attrs.frozen(kw_only=True)
class InboundEvent:
    """An event about a contact, reported by the host app.

    Checked when built: ``kind`` may be given as its value (``"reply"``) and becomes an
    :class:`EventKind`; ``lead_id`` and ``campaign_id`` may be plain strings. Anything else
    raises :class:`~starlight_sequences.errors.InvalidEvent` naming the field: an unknown kind,
    an empty or non-string id, an ``at`` that is not an aware ``datetime``, a ``return_date``
    that is not a ``date`` (a ``datetime`` is refused), a ``key`` or ``detail`` that is not text.

    Attributes:
        kind: what happened.
        lead_id: the contact.
        at: when it happened (aware).
        campaign_id: the campaign it came from, when known (None: every campaign of the
            workspace that wrote to the contact).
        key: the host's idempotency key (e.g. the reply's Message-ID); reporting the same key
            twice changes nothing. Empty: derived from kind, lead, campaign and ``at``.
        return_date: for an out-of-office, the date the contact is back (None: use the
            campaign's default pause).
        detail: free text kept in the journal (the bounce reason, ...).
    """

    kind: EventKind = attrs.field(converter=_event_kind)
    lead_id: LeadId = attrs.field(converter=_lead_id)
    at: dt.datetime = attrs.field(validator=_aware)
    campaign_id: CampaignId | None = attrs.field(default=None, converter=_campaign_id)
    key: str = attrs.field(default="", validator=_text)
    return_date: dt.date | None = attrs.field(default=None, validator=_date_or_none)
    detail: str = attrs.field(default="", validator=_text)

    @property
    def dedupe_key(self) -> str:
        """The key that makes reporting this event idempotent."""
        if self.key:
            return f"{self.kind}:{self.key}"
        return f"{self.kind}:{self.lead_id}:{self.campaign_id or '*'}:{self.at.isoformat()}"


class ActivityKind(enum.StrEnum):
    """Entries of the activity journal.

    The kinds a CRM mirrors (see ``docs/events.md``): SENT, FAILED, SKIPPED, STOPPED, ACCEPTED
    and COMPLETED; the others record the campaign's own life and what the host reported.
    """

    DRAFTED = "drafted"
    APPROVED = "approved"
    SENT = "sent"
    """A step went out (``step`` is set)."""
    RETRIED = "retried"
    FAILED = "failed"
    """A step could not be sent and the lead was stopped (``reason`` is ``send_failed``)."""
    SKIPPED = "skipped"
    """A step will not be sent, the lead may carry on (``reason`` says why)."""
    STOPPED = "stopped"
    """The lead was stopped before its sequence ended (``reason``: reply, bounce, ...)."""
    EVENT = "event"
    PAUSED = "paused"
    RESUMED = "resumed"
    CANCELLED = "cancelled"
    ACCEPTED = "accepted"
    """The lead accepted the LinkedIn connection request."""
    COMPLETED = "completed"
    """With a lead: the lead's sequence finished. Without: the campaign completed."""
    VARIANT_PICKED = "variant_picked"
    """An A/B step's winner rule picked a variant; ``step`` is the step, ``detail`` says which
    variant, with each variant's results, and how many leads moved to it."""
    SENDER_HELD = "sender_held"
    """The bounce breaker held a mailbox (``detail`` names it and says why)."""
    SENDER_RESUMED = "sender_resumed"
    """The host resumed a mailbox the bounce breaker held."""
    SENDER_REMOVED = "sender_removed"
    """A sender was removed from the campaign's pool (``CampaignService.remove_sender``);
    ``detail`` names it and says how many leads moved and how many kept it."""


class ActivityReason(enum.StrEnum):
    """Machine-readable reasons an activity carries in :attr:`Activity.reason`.

    A ``StrEnum``, so ``activity.reason == ActivityReason.REPLY`` holds for the stored text.
    New reasons may be added in later versions: a consumer should treat an unknown one as
    "other" rather than fail.
    """

    REPLY = "reply"
    MEETING_BOOKED = "meeting_booked"
    BOUNCE = "bounce"
    UNSUBSCRIBE = "unsubscribe"
    COLLEAGUE_REPLIED = "colleague_replied"
    """A reply or booked meeting from someone else at the lead's company (or workspace)."""
    SUPPRESSED = "suppressed"
    """The contact is on the workspace's suppression list."""
    CONNECTION_TIMEOUT = "connection_timeout"
    """The connection request was not accepted in time: the gated steps are skipped."""
    CONNECTION_DECLINED = "connection_declined"
    CAMPAIGN_CANCELLED = "campaign_cancelled"
    LEAD_STOPPED = "lead_stopped"
    """A step that was claimed while its lead was being stopped."""
    SEND_FAILED = "send_failed"
    EVERY_STEP_SENT = "every_step_sent"
    EVERY_LEAD_FINISHED = "every_lead_finished"
    BOUNCE_RATE = "bounce_rate"
    """A mailbox's hard-bounce rate passed its bounce breaker's threshold."""


@attrs.frozen(kw_only=True)
class Activity:
    """One line of a workspace's activity journal.

    Attributes:
        kind: what happened.
        at: when (UTC-aware).
        campaign_id: the campaign, if any.
        lead_id: the contact, if any.
        step: the step, if any.
        detail: a sentence for people.
        key: for inbound events, the dedupe key (unique per workspace).
        reason: why, for machines: an :class:`ActivityReason` value, or empty.
    """

    kind: ActivityKind
    at: dt.datetime
    campaign_id: CampaignId | None = None
    lead_id: LeadId | None = None
    step: int | None = None
    detail: str = ""
    key: str = ""
    reason: str = ""


@attrs.frozen(kw_only=True)
class JournalEntry:
    """An activity as the journal hands it out, with its place in the journal.

    Attributes:
        position: an opaque cursor just after this activity: passing it to
            ``activities_since`` resumes with the next one. Unique within the workspace, so
            it also serves a consumer as the activity's idempotency key.
        activity: what happened.
    """

    position: str
    activity: Activity


@attrs.frozen(kw_only=True)
class ActivityPage:
    """One page of ``activities_since``.

    Attributes:
        entries: the activities after the cursor, in journal order.
        cursor: what to pass next: the position of the last entry, or the cursor given when
            the page is empty (then no activity was handed out).
        more: True when the page was cut at its limit (call again at once); False when the
            journal had nothing more to hand out yet.
    """

    entries: tuple[JournalEntry, ...]
    cursor: str
    more: bool = False
