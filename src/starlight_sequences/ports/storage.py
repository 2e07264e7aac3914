"""The storage port: campaigns, enrolments, drafts, sends, the journal, the suppression list,
and small named cursors for pollers."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable
from typing import Final, Protocol, TypeVar, runtime_checkable

import attrs

from starlight_sequences.bounce_breaker import SenderHold
from starlight_sequences.campaigns import Campaign, Enrolment, ScheduledSend, SendStatus
from starlight_sequences.channels import Action
from starlight_sequences.credits import CreditMovement
from starlight_sequences.drafts import Draft
from starlight_sequences.errors import ConcurrentUpdate, InvalidInput, LeaseLost
from starlight_sequences.events import Activity, ActivityPage
from starlight_sequences.ids import CampaignId, LeadId, SenderId, WorkspaceId

__all__ = [
    "MAX_ACTIVITY_PAGE",
    "MAX_CURSOR_NAME",
    "MAX_CURSOR_VALUE",
    "Changes",
    "ChargingStorage",
    "Storage",
    "check_cursor",
    "check_lead_filter",
    "check_lease",
    "check_no_event_keys",
    "check_one_filter",
    "check_page_limit",
    "check_revision",
    "check_workspace",
    "finish_changes",
    "position_text",
    "read_position",
]


@attrs.frozen(kw_only=True)
class Changes:
    """Everything one use case writes, applied by :meth:`Storage.commit` all or nothing.

    Campaigns, enrolments and sends carry a ``revision``: a record written with revision 0
    must not exist yet; a record written with revision ``n > 0`` replaces the stored one only
    if that one has revision ``n - 1``. Otherwise the whole commit fails with
    :class:`~starlight_sequences.errors.ConcurrentUpdate` and nothing is written. Callers bump
    the revision with ``attrs.evolve(record, revision=record.revision + 1, ...)``.

    Attributes:
        campaigns: campaigns to insert or update.
        enrolments: enrolments to insert or update.
        sends: scheduled sends to insert or update.
        drafts: drafts to insert or replace (keyed by campaign, lead, step; no revision check).
        activities: journal lines to append. An activity with a non-empty ``key`` is an
            inbound event: if the workspace already holds an activity with that key, the commit
            writes nothing and returns False (the event was already applied).
        suppress: contact keys (lead ids, lower-cased email addresses) to add to the
            workspace's suppression list.
        sender_holds: bounce-breaker holds to insert or update, keyed by sender id, with the
            same revision rule as campaigns (a new hold has revision 0; resuming or holding
            again bumps it).
    """

    campaigns: tuple[Campaign, ...] = ()
    enrolments: tuple[Enrolment, ...] = ()
    sends: tuple[ScheduledSend, ...] = ()
    drafts: tuple[Draft, ...] = ()
    activities: tuple[Activity, ...] = ()
    suppress: tuple[str, ...] = ()
    sender_holds: tuple[SenderHold, ...] = ()

    def __bool__(self) -> bool:
        return bool(
            self.campaigns
            or self.enrolments
            or self.sends
            or self.drafts
            or self.activities
            or self.suppress
            or self.sender_holds
        )


def check_revision(kind: str, name: str, stored_revision: int | None, new_revision: int) -> None:
    """Raise ConcurrentUpdate unless ``new_revision`` follows ``stored_revision``.

    ``stored_revision`` is None when nothing is stored under that key.
    """
    if new_revision == 0:
        if stored_revision is not None:
            raise ConcurrentUpdate(f"{kind} {name!r} already exists")
    elif stored_revision != new_revision - 1:
        raise ConcurrentUpdate(
            f"{kind} {name!r} is at revision {stored_revision}, "
            f"expected {new_revision - 1}; read it again and retry"
        )


def check_workspace(workspace_id: WorkspaceId, changes: Changes) -> None:
    """Raise InvalidInput when a record in ``changes`` belongs to another workspace."""
    owners: Iterable[tuple[str, WorkspaceId]] = (
        *((f"campaign {c.id!r}", c.workspace_id) for c in changes.campaigns),
        *((f"enrolment {e.lead_id!r}", e.workspace_id) for e in changes.enrolments),
        *((f"send {s.id!r}", s.workspace_id) for s in changes.sends),
        *((f"sender hold {h.sender_id!r}", h.workspace_id) for h in changes.sender_holds),
    )
    for what, owner in owners:
        if owner != workspace_id:
            raise InvalidInput(f"{what} belongs to workspace {owner!r}, not {workspace_id!r}")


def check_no_event_keys(changes: Changes) -> None:
    """Raise InvalidInput when ``changes`` carries an inbound-event key (for ``finish_send``,
    which records a send and cannot be skipped as a repeated event)."""
    keyed = [a.key for a in changes.activities if a.key]
    if keyed:
        raise InvalidInput(
            f"finish_send: changes must not carry inbound-event keys (got {keyed[0]!r}); "
            "report events with commit"
        )


def finish_changes(send: ScheduledSend, changes: Changes | None) -> Changes:
    """What ``finish_send`` writes: the send's new state with ``changes``, checked.

    Raises:
        InvalidInput: ``changes`` carries an inbound-event key, or a record of another
            workspace than the send's.
    """
    extra = changes if changes is not None else Changes()
    check_no_event_keys(extra)
    combined = attrs.evolve(extra, sends=(send, *extra.sends))
    check_workspace(send.workspace_id, combined)
    return combined


MAX_CURSOR_NAME: Final = 200
"""The longest cursor name :meth:`Storage.save_cursor` takes, in characters."""
MAX_CURSOR_VALUE: Final = 4096
"""The longest cursor value :meth:`Storage.save_cursor` takes, in characters."""


def _check_cursor_text(what: str, text: object, limit: int, *, empty: bool) -> None:
    if not isinstance(text, str):
        raise InvalidInput(f"{what} must be a str, not {type(text).__name__}")
    if not text and not empty:
        raise InvalidInput(f"{what} must not be empty")
    if len(text) > limit:
        raise InvalidInput(f"{what} is {len(text)} characters long; at most {limit} are kept")
    if "\x00" in text:
        raise InvalidInput(f"{what} contains a NUL character, which no storage keeps")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput(f"{what} is not valid Unicode text (a lone surrogate)") from None


def check_cursor(name: str, value: str | None = None) -> None:
    """Raise InvalidInput unless ``name`` (and ``value``, when given) can be stored as a cursor.

    A name is a non-empty str of at most :data:`MAX_CURSOR_NAME` characters; a value a str of
    at most :data:`MAX_CURSOR_VALUE` characters (empty is allowed). Neither may hold a NUL
    character or a lone surrogate (PostgreSQL and SQLite's UTF-8 cannot store them).
    """
    _check_cursor_text(f"cursor name {name!r:.80}", name, MAX_CURSOR_NAME, empty=False)
    if value is not None:
        _check_cursor_text(f"cursor {name!r:.80}: value", value, MAX_CURSOR_VALUE, empty=True)


MAX_ACTIVITY_PAGE: Final = 1000
"""The most activities one :meth:`Storage.activities_since` call hands out."""


def check_page_limit(limit: object) -> int:
    """``limit`` of :meth:`Storage.activities_since`, checked: an int from 1 to
    :data:`MAX_ACTIVITY_PAGE`.

    Raises:
        InvalidInput: anything else, naming ``limit``.
    """
    if isinstance(limit, bool) or not isinstance(limit, int):
        raise InvalidInput(f"activities_since: limit must be an int, not {type(limit).__name__}")
    if not 1 <= limit <= MAX_ACTIVITY_PAGE:
        raise InvalidInput(
            f"activities_since: limit must be from 1 to {MAX_ACTIVITY_PAGE}, not {limit}"
        )
    return limit


def position_text(tag: str, *numbers: int) -> str:
    """An activity position as cursor text: the adapter's ``tag`` and its numbers
    (``"sqlite.42"``). Read back with :func:`read_position`."""
    return ".".join((tag, *map(str, numbers)))


def read_position(cursor: object, tag: str, count: int) -> tuple[int, ...] | None:
    """The ``count`` numbers of a cursor :func:`position_text` wrote with ``tag``; None for a
    None cursor (the start of the journal).

    Raises:
        InvalidInput: ``cursor`` is not a str written by :func:`position_text` with this
            ``tag`` and ``count`` numbers (another adapter's cursor, a cut or edited one).
    """
    if cursor is None:
        return None
    parts = cursor.split(".") if isinstance(cursor, str) else []
    numbers = parts[1:]
    if (
        len(parts) != count + 1
        or parts[0] != tag
        or not all(n.isascii() and n.isdigit() and len(n) <= 20 for n in numbers)
    ):
        shown = repr(cursor)[:80] if isinstance(cursor, str) else f"a {type(cursor).__name__}"
        raise InvalidInput(
            f"activities_since: cursor {shown} is not a cursor of this storage "
            f"(pass None to start, or a cursor a page of this storage returned)"
        )
    return tuple(int(n) for n in numbers)


def check_one_filter(
    lead_id: LeadId | None, email_domain: str | None, lead_ids: Collection[LeadId] | None
) -> None:
    """Raise InvalidInput unless exactly one filter of ``find_enrolments`` is given."""
    if sum(f is not None for f in (lead_id, email_domain, lead_ids)) != 1:
        raise InvalidInput(
            "find_enrolments: give exactly one of lead_id, email_domain and lead_ids"
        )


def check_lead_filter(
    operation: str, lead_id: LeadId | None, lead_ids: Collection[LeadId] | None
) -> None:
    """Raise InvalidInput when both ``lead_id`` and ``lead_ids`` are given to ``operation``
    (``list_drafts``, ``list_sends``)."""
    if lead_id is not None and lead_ids is not None:
        raise InvalidInput(f"{operation}: give lead_id or lead_ids, not both")


_Instant = TypeVar("_Instant", int, dt.datetime)


def check_lease(
    send_id: str,
    worker_id: str,
    held: tuple[str, str | None, _Instant | None] | None,
    now: _Instant,
) -> None:
    """Raise LeaseLost unless the stored send is claimed by ``worker_id`` with a lease that
    has not ended: a lease ends at ``lease_expires_at``, the instant ``claim_due`` may take the
    send again.

    Args:
        send_id: for the message.
        worker_id: the worker finishing the send.
        held: the stored ``(status, lease_owner, lease_expires_at)``, or None when there is no
            such send; instants in whatever form the adapter stores, the same as ``now``'s.
        now: the moment of finishing.
    """
    if (
        held is None
        or held[0] != SendStatus.CLAIMED
        or held[1] != worker_id
        or held[2] is None
        or held[2] <= now
    ):
        raise LeaseLost(f"send {send_id!r}: worker {worker_id!r} no longer holds it")


class Storage(Protocol):
    """Where the service keeps its state. Every call is scoped to one workspace.

    Implementations: :class:`~starlight_sequences.adapters.memory.InMemoryStorage`,
    ``SQLiteStorage``, ``PostgresStorage``; all pass the contract suite of
    :mod:`starlight_sequences.testing`, which checks a host's own implementation the same way.
    Instants go in and come out as UTC-aware datetimes. Reads return immutable values; nothing
    returned aliases stored state. No call made for one workspace reads or changes another's
    data, even when ids collide across workspaces.
    """

    def commit(self, workspace_id: WorkspaceId, changes: Changes) -> bool:
        """Apply ``changes`` atomically: all of them or none.

        Every record in ``changes`` must belong to ``workspace_id``.

        Returns:
            True when applied; False when an inbound-event activity's key was already recorded
            (then nothing is written).

        Raises:
            ConcurrentUpdate: a revision check failed (see :class:`Changes`); nothing written.
            InvalidInput: a record belongs to another workspace; nothing written.
        """
        ...

    def get_campaign(self, workspace_id: WorkspaceId, campaign_id: CampaignId) -> Campaign:
        """The campaign. Raises ``CampaignNotFound`` if this workspace has none by that id."""
        ...

    def list_campaigns(self, workspace_id: WorkspaceId) -> list[Campaign]:
        """Every campaign of the workspace, oldest first."""
        ...

    def list_enrolments(
        self, workspace_id: WorkspaceId, campaign_id: CampaignId
    ) -> list[Enrolment]:
        """The campaign's enrolments, in the order they were enrolled."""
        ...

    def get_enrolment(
        self, workspace_id: WorkspaceId, campaign_id: CampaignId, lead_id: LeadId
    ) -> Enrolment:
        """One enrolment. Raises ``EnrolmentNotFound``."""
        ...

    def has_unfinished_enrolments(self, workspace_id: WorkspaceId, campaign_id: CampaignId) -> bool:
        """True when some enrolment of the campaign has a status that is not final
        (``EnrolmentStatus.is_final``); False when every one is final or there is none.

        Called after every dispatch pass to see whether a campaign is complete, so it must not
        read every enrolment: an indexed existence check (or a maintained count).
        """
        ...

    def find_enrolments(
        self,
        workspace_id: WorkspaceId,
        *,
        lead_id: LeadId | None = None,
        email_domain: str | None = None,
        lead_ids: Collection[LeadId] | None = None,
    ) -> list[Enrolment]:
        """Enrolments of a contact (by lead id), of several contacts at once (by ``lead_ids``,
        one query for a batch) or of a company (by lower-case email domain) across every
        campaign of the workspace, in the order they were enrolled. Exactly one of the three
        must be given (``InvalidInput`` otherwise)."""
        ...

    def list_drafts(
        self,
        workspace_id: WorkspaceId,
        campaign_id: CampaignId,
        lead_id: LeadId | None = None,
        *,
        lead_ids: Collection[LeadId] | None = None,
    ) -> list[Draft]:
        """The campaign's drafts, ordered by lead then step: of one lead (``lead_id``), of
        several leads at once (``lead_ids``: one query for a dispatch batch, whatever the
        campaign's size), or every draft when neither is given. ``InvalidInput`` when both
        are given."""
        ...

    def drafts_needing_attention(
        self, workspace_id: WorkspaceId, campaign_id: CampaignId
    ) -> list[Draft]:
        """The campaign's drafts whose status is ``NEEDS_ATTENTION``, ordered by lead then
        step: exactly what filtering :meth:`list_drafts` on ``needs_attention`` gives.

        Approval calls it on campaigns of 100,000 leads, so a database adapter must not read
        the ready drafts to answer (a partial index on the status, or a maintained set); an
        in-memory adapter may walk the campaign's drafts but must not copy them.
        """
        ...

    def list_sends(
        self,
        workspace_id: WorkspaceId,
        campaign_id: CampaignId,
        lead_id: LeadId | None = None,
        *,
        lead_ids: Collection[LeadId] | None = None,
    ) -> list[ScheduledSend]:
        """The campaign's sends, ordered by lead then step: of one lead (``lead_id``), of
        several leads at once (``lead_ids``: one query for a dispatch batch, whatever the
        campaign's size), or every send when neither is given. ``InvalidInput`` when both
        are given."""
        ...

    def find_send(self, workspace_id: WorkspaceId, *, message_id: str) -> ScheduledSend | None:
        """The send whose ``receipt`` is ``message_id`` (the Message-ID the SMTP and outbox
        senders return, ``<left@domain>``), or None. Compared exactly, so pass it normalised
        (``inbound.normalise_message_id``); indexed, scoped to the workspace."""
        ...

    def sender_bookings(
        self,
        workspace_id: WorkspaceId,
        sender_id: SenderId,
        start: dt.datetime,
        end: dt.datetime,
        *,
        actions: Collection[Action] | None = None,
    ) -> list[dt.datetime]:
        """Instants in ``[start, end)`` at which this sender has sent or will send, across all
        campaigns: ``sent_at`` of sent sends and ``due_at`` of scheduled or claimed ones (of
        the given actions only, when given). Sorted. Keeps spacing and caps across campaigns."""
        ...

    def last_sent(
        self,
        workspace_id: WorkspaceId,
        sender_id: SenderId,
        *,
        actions: Collection[Action] | None = None,
    ) -> dt.datetime | None:
        """The latest ``sent_at`` of this sender's sent sends (of the given actions only, when
        given), or None. The dispatcher keeps a sender's actual sends apart with it."""
        ...

    def recent_sends(
        self,
        workspace_id: WorkspaceId,
        sender_id: SenderId,
        *,
        limit: int,
        after: dt.datetime | None = None,
    ) -> list[ScheduledSend]:
        """This sender's SENT sends, newest first (by ``sent_at``, then id descending), at most
        ``limit`` of them, only those sent strictly after ``after`` when given. Across every
        campaign of the workspace; indexed (the bounce breaker reads it after a hard bounce).
        """
        ...

    def get_sender_hold(self, workspace_id: WorkspaceId, sender_id: SenderId) -> SenderHold | None:
        """The bounce-breaker hold stored for this sender (held or resumed), or None when the
        breaker never tripped for it. Indexed: the dispatcher reads it before every send."""
        ...

    def list_sender_holds(self, workspace_id: WorkspaceId) -> list[SenderHold]:
        """Every hold stored for the workspace (held and resumed), ordered by sender id."""
        ...

    def claim_due(
        self,
        now: dt.datetime,
        *,
        worker_id: str,
        lease: dt.timedelta,
        limit: int,
        workspace_id: WorkspaceId | None = None,
    ) -> list[ScheduledSend]:
        """Claim up to ``limit`` sends that are due, oldest ``due_at`` first, atomically.

        Due: status SCHEDULED or WAITING with ``due_at <= now`` in an ACTIVE campaign (for a
        WAITING send, ``due_at`` is the acceptance deadline: the dispatcher then skips it), or
        status CLAIMED whose lease expired (``lease_expires_at <= now``; the crashed worker's
        send is retried with the same idempotency key). Each returned send is stored, and
        returned, as CLAIMED by ``worker_id`` until ``now + lease``, with ``attempts`` and
        ``revision`` bumped.
        Two concurrent callers (threads, processes or hosts) never receive the same send while
        its lease is live. ``workspace_id=None`` claims across every workspace (a dispatcher
        serving them all).
        """
        ...

    def next_due(
        self, now: dt.datetime, *, workspace_id: WorkspaceId | None = None
    ) -> dt.datetime | None:
        """The earliest instant after ``now`` at which :meth:`claim_due` would find a send it
        does not find at ``now``, or None when nothing is waiting for a moment.

        That is the least ``due_at`` of SCHEDULED or WAITING sends in ACTIVE campaigns, and
        the least ``lease_expires_at`` of CLAIMED sends, among those later than ``now``
        (what is due already is for ``claim_due``). A worker sleeps until then rather than a
        whole poll interval. A read: indexed, it claims nothing. ``workspace_id=None``
        looks across every workspace.
        """
        ...

    def finish_send(
        self,
        send: ScheduledSend,
        *,
        worker_id: str,
        now: dt.datetime,
        changes: Changes | None = None,
    ) -> None:
        """Record what became of a claimed send, with the writes that follow from it.

        ``send`` is the new state (SENT, FAILED, SKIPPED, or SCHEDULED again for a retry) with
        its revision bumped. Atomic with ``changes`` (the next step re-timed, the enrolment...).

        Raises:
            LeaseLost: the stored send is not CLAIMED by ``worker_id``, or its lease has expired
                (``lease_expires_at <= now``, the same rule ``claim_due`` uses to take it
                again); nothing is written (another worker may hold it now).
            InvalidInput: ``changes`` carries an activity with an inbound-event key; nothing
                is written.
            ConcurrentUpdate: as for :meth:`commit`.
        """
        ...

    def list_activities(
        self,
        workspace_id: WorkspaceId,
        *,
        campaign_id: CampaignId | None = None,
        lead_id: LeadId | None = None,
    ) -> list[Activity]:
        """Journal lines (filtered when given), in the order they were appended."""
        ...

    def activities_since(
        self, workspace_id: WorkspaceId, cursor: str | None, *, limit: int
    ) -> ActivityPage:
        """The workspace's journal after ``cursor``, for consumers that mirror it (a CRM).

        Hands out up to ``limit`` activities, each with its position (an opaque str, unique in
        the workspace), and the cursor to pass next. Promises:

        - **Never skips.** Every activity committed is handed out by some call, however the
          writing transactions interleave: an activity is handed out only once no activity
          that is committed later can take a position before it (PostgreSQL: once every
          transaction that was running when it was written has ended).
        - **Stable order.** Positions only grow along the journal; calling again with the same
          cursor gives the same activities in the same order, plus any handed out since.
          Activities of one commit come in the order they were given. Where the adapter
          serialises writers (in-memory, SQLite) commits come in commit order. Otherwise
          (PostgreSQL) a commit that began after another had ended comes after it, and two
          that overlapped (neither saw the other's writes) in a fixed order of the adapter's
          choosing (PostgreSQL: transaction id). A lead's activities follow the order of the
          changes they report: a use case that changes a lead reads it first and commits
          under a revision check, so it comes after the commit it read.
        - **At least once.** A consumer that keeps the cursor after it has acted on a page sees
          each activity once; one that crashes in between sees the page again.
        - Activities of other workspaces are never handed out. A cursor returned by one
          adapter means nothing to another (and reads as invalid there).

        Args:
            workspace_id: whose journal.
            cursor: None for the start of the journal, or a ``cursor`` or ``position`` this
                storage returned.
            limit: the most activities to hand out, 1 to :data:`MAX_ACTIVITY_PAGE`.

        Raises:
            InvalidInput: ``cursor`` is not one this storage returned (the message names it),
                or ``limit`` is out of range (see :func:`check_page_limit`).
        """
        ...

    def suppressed(self, workspace_id: WorkspaceId, keys: Collection[str]) -> set[str]:
        """Which of ``keys`` are on the workspace's suppression list."""
        ...

    def load_cursor(self, workspace_id: WorkspaceId, name: str) -> str | None:
        """The value last saved under ``name`` for this workspace, or None if none was.

        Cursors are small durable values a poller keeps between runs (the IMAP poller keeps the
        last message it handled per mailbox). Names are the caller's; each workspace has its
        own, so the same name in two workspaces holds two values.

        Raises:
            InvalidInput: ``name`` breaks the rules of :func:`check_cursor`.
        """
        ...

    def save_cursor(self, workspace_id: WorkspaceId, name: str, value: str) -> None:
        """Store ``value`` under ``name`` for this workspace, replacing what was there.

        Atomic: a concurrent :meth:`load_cursor` sees the old value or the new one, never a
        mix; of two concurrent saves, one value wins whole. Saving the same value twice is the
        same as once. Durable as the adapter's commits are: once it returns, a reopened
        storage loads the value. Independent of :meth:`commit` (not part of any ``Changes``).

        Raises:
            InvalidInput: ``name`` or ``value`` breaks the rules of :func:`check_cursor` (not a
                str, an empty name, longer than :data:`MAX_CURSOR_NAME` /
                :data:`MAX_CURSOR_VALUE` characters, a NUL or a lone surrogate); nothing is
                written.
        """
        ...


@runtime_checkable
class ChargingStorage(Protocol):
    """A storage that keeps a credit ledger's accounts in its own database and can therefore
    record a sent message and its charge in one transaction (one commit per send).

    Optional: the dispatcher uses it when ``charges_with(ledger)`` is True, and otherwise
    posts the charge through the ledger after the record, as for any storage.
    """

    def charges_with(self, ledger: object) -> bool:
        """True when ``ledger`` keeps its accounts in this storage's database (the same pool
        or file), so :meth:`finish_send_charging` may post to it."""
        ...

    def finish_send_charging(
        self,
        send: ScheduledSend,
        *,
        worker_id: str,
        now: dt.datetime,
        changes: Changes | None,
        charge: CreditMovement,
    ) -> bool:
        """:meth:`Storage.finish_send`, and in the same transaction the keyed ``charge``
        posted as ``CreditLedger.post`` would (skipped when its key was posted before).

        Returns:
            True when the charge was posted or had been posted before; False when the ledger
            refused it (``InsufficientCredits`` or ``InvalidInput``: then the send is recorded
            without it, and the caller leaves the charge to ``reconcile_credits``).

        Raises:
            As :meth:`Storage.finish_send`; nothing is written then, the charge neither.
        """
        ...
