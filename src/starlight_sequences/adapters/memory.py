"""In-memory adapters: first-class implementations of every port, for tests and demos.

Host apps test their integration against these too. They are thread-safe (one lock each) but
live in one process.
"""

from __future__ import annotations

import bisect
import datetime as dt
import threading
from collections.abc import Collection, Mapping
from typing import Any, TypeVar

import attrs

from starlight_sequences.bounce_breaker import SenderHold
from starlight_sequences.campaigns import (
    Campaign,
    CampaignStatus,
    Enrolment,
    ScheduledSend,
    SendStatus,
)
from starlight_sequences.channels import Action
from starlight_sequences.credits import CreditAccount, CreditMovement, MovementKind
from starlight_sequences.drafts import Draft
from starlight_sequences.errors import (
    CampaignNotFound,
    EnrolmentNotFound,
)
from starlight_sequences.events import Activity, ActivityPage, JournalEntry
from starlight_sequences.ids import CampaignId, LeadId, SenderId, WorkspaceId
from starlight_sequences.ports.senders import (
    LinkedInAction,
    OutgoingEmail,
    SendFailure,
    SendReceipt,
)
from starlight_sequences.ports.storage import (
    Changes,
    check_cursor,
    check_lead_filter,
    check_lease,
    check_one_filter,
    check_page_limit,
    check_revision,
    check_workspace,
    finish_changes,
    position_text,
    read_position,
)

__all__ = [
    "InMemoryCreditLedger",
    "InMemoryStorage",
    "RecordingEmailSender",
    "RecordingLinkedInSender",
]


def _email_domain(enrolment: Enrolment) -> str | None:
    email = enrolment.lead.email
    return email.rsplit("@", 1)[1].lower() if email else None


_Stored = TypeVar("_Stored", Campaign, Enrolment, ScheduledSend, Activity, SenderHold)


def _in_utc(record: _Stored) -> _Stored:
    """The record with its instants in UTC, as the port promises they come back."""
    moved: dict[str, Any] = {
        field.name: value.astimezone(dt.UTC)
        for field in attrs.fields(type(record))
        if isinstance(value := getattr(record, field.name), dt.datetime)
        and value.utcoffset() is not None
        and value.tzinfo is not dt.UTC
    }
    return attrs.evolve(record, **moved) if moved else record


_CLAIMABLE = frozenset({SendStatus.SCHEDULED, SendStatus.WAITING, SendStatus.CLAIMED})

_QueueEntry = tuple[dt.datetime, str, WorkspaceId]
"""A send's place in a claim queue: (instant, send id, workspace)."""


_POSITION_TAG = "mem"
"""How the in-memory journal's positions begin."""


_SentIndex = dict[tuple[WorkspaceId, SenderId], list[tuple[dt.datetime, str]]]


def _index_sent(
    index: _SentIndex,
    entries: dict[tuple[WorkspaceId, str], tuple[dt.datetime, str]],
    key: tuple[WorkspaceId, str],
    send: ScheduledSend,
) -> None:
    """Keep the send's place among its sender's sent sends (``index``, sorted by instant)
    in step with its status; ``entries`` holds each send's place."""
    sent = index.setdefault((key[0], send.sender_id), [])
    previous = entries.pop(key, None)
    if previous is not None:
        del sent[bisect.bisect_left(sent, previous)]
    if send.status is SendStatus.SENT and send.sent_at is not None:
        entry = (send.sent_at, send.id)
        bisect.insort(sent, entry)
        entries[key] = entry


class InMemoryStorage:
    """The storage port in process memory. See :class:`~starlight_sequences.ports.Storage`."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._campaigns: dict[tuple[WorkspaceId, CampaignId], Campaign] = {}
        self._enrolments: dict[tuple[WorkspaceId, CampaignId, LeadId], Enrolment] = {}
        self._drafts: dict[tuple[WorkspaceId, CampaignId, LeadId, int], Draft] = {}
        self._sends: dict[tuple[WorkspaceId, str], ScheduledSend] = {}
        self._activities: dict[WorkspaceId, list[Activity]] = {}
        self._event_keys: dict[WorkspaceId, set[str]] = {}
        self._suppressed: dict[WorkspaceId, set[str]] = {}
        # Indexes (insertion-ordered key sets), so reads and claims do not scan everything.
        self._enrolments_of_campaign: dict[tuple[WorkspaceId, CampaignId], dict[LeadId, None]] = {}
        self._enrolments_of_lead: dict[tuple[WorkspaceId, LeadId], dict[CampaignId, None]] = {}
        self._drafts_of_campaign: dict[
            tuple[WorkspaceId, CampaignId], dict[tuple[LeadId, int], None]
        ] = {}
        self._drafts_of_lead: dict[tuple[WorkspaceId, CampaignId, LeadId], dict[int, None]] = {}
        # Enrolments whose status is not final, per campaign (completion checks count them).
        self._unfinished: dict[tuple[WorkspaceId, CampaignId], dict[LeadId, None]] = {}
        self._sends_of_lead: dict[tuple[WorkspaceId, CampaignId, LeadId], dict[str, None]] = {}
        self._sends_by_receipt: dict[tuple[WorkspaceId, str], str] = {}
        self._sends_of_campaign: dict[tuple[WorkspaceId, CampaignId], dict[str, None]] = {}
        self._open_sends: dict[tuple[WorkspaceId, str], None] = {}
        # Claimable in order: (due_at, id, workspace) of SCHEDULED/WAITING sends, and
        # (lease_expires_at, id, workspace) of CLAIMED ones; each send's entry in _queued.
        self._waiting_queue: list[_QueueEntry] = []
        self._lease_queue: list[_QueueEntry] = []
        self._queued: dict[tuple[WorkspaceId, str], tuple[bool, _QueueEntry]] = {}
        self._enrolled_seq: dict[tuple[WorkspaceId, CampaignId, LeadId], int] = {}
        # Per (workspace, sender, action): sorted (instant, send id) bookings, and last sent.
        self._bookings: dict[tuple[WorkspaceId, SenderId, Action], list[tuple[dt.datetime, str]]]
        self._bookings = {}
        self._booked: dict[
            tuple[WorkspaceId, str],
            tuple[tuple[WorkspaceId, SenderId, Action], tuple[dt.datetime, str]],
        ] = {}
        self._last_sent: dict[tuple[WorkspaceId, SenderId, Action], dt.datetime] = {}
        self._cursors: dict[tuple[WorkspaceId, str], str] = {}
        # Per (workspace, sender): sorted (sent_at, send id) of SENT sends; each send's entry.
        self._sent_of_sender: _SentIndex = {}
        self._sent_entry: dict[tuple[WorkspaceId, str], tuple[dt.datetime, str]] = {}
        self._holds: dict[tuple[WorkspaceId, SenderId], SenderHold] = {}

    # -- writes ---------------------------------------------------------------------------

    def commit(self, workspace_id: WorkspaceId, changes: Changes) -> bool:
        """See :meth:`Storage.commit`."""
        with self._lock:
            return self._commit(workspace_id, changes)

    def _commit(self, workspace_id: WorkspaceId, changes: Changes) -> bool:
        check_workspace(workspace_id, changes)
        keys = self._event_keys.setdefault(workspace_id, set())
        new_keys = [a.key for a in changes.activities if a.key]
        if any(key in keys for key in new_keys):
            return False
        for campaign in changes.campaigns:
            stored_c = self._campaigns.get((workspace_id, campaign.id))
            check_revision(
                "campaign",
                campaign.id,
                None if stored_c is None else stored_c.revision,
                campaign.revision,
            )
        for enrolment in changes.enrolments:
            stored_e = self._enrolments.get(
                (workspace_id, enrolment.campaign_id, enrolment.lead_id)
            )
            check_revision(
                "enrolment",
                f"{enrolment.campaign_id}/{enrolment.lead_id}",
                None if stored_e is None else stored_e.revision,
                enrolment.revision,
            )
        for send in changes.sends:
            stored_s = self._sends.get((workspace_id, send.id))
            check_revision(
                "send", send.id, None if stored_s is None else stored_s.revision, send.revision
            )
        for hold in changes.sender_holds:
            stored_h = self._holds.get((workspace_id, hold.sender_id))
            check_revision(
                "sender hold",
                hold.sender_id,
                None if stored_h is None else stored_h.revision,
                hold.revision,
            )
        for campaign in changes.campaigns:
            self._campaigns[(workspace_id, campaign.id)] = _in_utc(campaign)
        for hold in changes.sender_holds:
            self._holds[(workspace_id, hold.sender_id)] = _in_utc(hold)
        for enrolment in changes.enrolments:
            key = (workspace_id, enrolment.campaign_id, enrolment.lead_id)
            self._enrolments[key] = _in_utc(enrolment)
            self._enrolled_seq.setdefault(key, len(self._enrolled_seq))
            self._enrolments_of_campaign.setdefault(key[:2], {})[enrolment.lead_id] = None
            unfinished = self._unfinished.setdefault(key[:2], {})
            if enrolment.status.is_final:
                unfinished.pop(enrolment.lead_id, None)
            else:
                unfinished[enrolment.lead_id] = None
            self._enrolments_of_lead.setdefault((workspace_id, enrolment.lead_id), {})[
                enrolment.campaign_id
            ] = None
        for send in changes.sends:
            self._put_send(workspace_id, _in_utc(send))
        for draft in changes.drafts:
            self._drafts[(workspace_id, draft.campaign_id, draft.lead_id, draft.step)] = draft
            self._drafts_of_campaign.setdefault((workspace_id, draft.campaign_id), {})[
                (draft.lead_id, draft.step)
            ] = None
            self._drafts_of_lead.setdefault((workspace_id, draft.campaign_id, draft.lead_id), {})[
                draft.step
            ] = None
        self._activities.setdefault(workspace_id, []).extend(map(_in_utc, changes.activities))
        keys.update(new_keys)
        self._suppressed.setdefault(workspace_id, set()).update(changes.suppress)
        return True

    def _put_send(self, workspace_id: WorkspaceId, send: ScheduledSend) -> None:
        key = (workspace_id, send.id)
        self._sends[key] = send
        self._sends_of_campaign.setdefault((workspace_id, send.campaign_id), {})[send.id] = None
        self._sends_of_lead.setdefault((workspace_id, send.campaign_id, send.lead_id), {})[
            send.id
        ] = None
        if send.receipt:
            self._sends_by_receipt[(workspace_id, send.receipt)] = send.id
        if send.status in _CLAIMABLE:
            self._open_sends[key] = None
        else:
            self._open_sends.pop(key, None)
        self._requeue(key, send)
        lane = (workspace_id, send.sender_id, send.action)
        booking: tuple[dt.datetime, str] | None = None
        if send.status is SendStatus.SENT and send.sent_at is not None:
            booking = (send.sent_at, send.id)
            last = self._last_sent.get(lane)
            self._last_sent[lane] = send.sent_at if last is None else max(last, send.sent_at)
        elif send.status in (SendStatus.SCHEDULED, SendStatus.CLAIMED):
            booking = (send.due_at, send.id)
        previous = self._booked.pop(key, None)
        if previous is not None:  # from its lane then: a pool may move a send to another sender
            old = self._bookings[previous[0]]
            del old[bisect.bisect_left(old, previous[1])]
        if booking is not None:
            bisect.insort(self._bookings.setdefault(lane, []), booking)
            self._booked[key] = (lane, booking)
        _index_sent(self._sent_of_sender, self._sent_entry, key, send)

    def _requeue(self, key: tuple[WorkspaceId, str], send: ScheduledSend) -> None:
        """Keep the send's place in the claim queues in step with its status."""
        entry: tuple[bool, _QueueEntry] | None = None
        if send.status in (SendStatus.SCHEDULED, SendStatus.WAITING):
            entry = (False, (send.due_at, send.id, key[0]))
        elif send.status is SendStatus.CLAIMED and send.lease_expires_at is not None:
            entry = (True, (send.lease_expires_at, send.id, key[0]))
        previous = self._queued.pop(key, None)
        if previous == entry:
            if entry is not None:
                self._queued[key] = entry
            return
        if previous is not None:
            queue = self._lease_queue if previous[0] else self._waiting_queue
            del queue[bisect.bisect_left(queue, previous[1])]
        if entry is not None:
            queue = self._lease_queue if entry[0] else self._waiting_queue
            bisect.insort(queue, entry[1])
            self._queued[key] = entry

    def _due_now(
        self, now: dt.datetime, limit: int, workspace_id: WorkspaceId | None
    ) -> list[ScheduledSend]:
        """The first ``limit`` claimable sends by (due_at, id): walks the queues from their
        fronts, so a claim costs what it takes, not the number of open sends."""
        found: list[ScheduledSend] = []
        for due_at, send_id, ws in self._waiting_queue:
            if due_at > now or len(found) >= limit:
                break
            if workspace_id is None or ws == workspace_id:
                send = self._sends[(ws, send_id)]
                if self._claimable(send, now):
                    found.append(send)
        for expires_at, send_id, ws in self._lease_queue:
            if expires_at > now:
                break
            if workspace_id is None or ws == workspace_id:
                found.append(self._sends[(ws, send_id)])
        found.sort(key=lambda s: (s.due_at, s.id, s.workspace_id))
        return found[:limit]

    def next_due(
        self, now: dt.datetime, *, workspace_id: WorkspaceId | None = None
    ) -> dt.datetime | None:
        """See :meth:`Storage.next_due`."""
        with self._lock:
            candidates: list[dt.datetime] = []
            start = bisect.bisect_right(self._waiting_queue, (now, "\U0010ffff", ""))
            for due_at, send_id, ws in self._waiting_queue[start:]:
                if workspace_id not in (None, ws):
                    continue
                send = self._sends[(ws, send_id)]
                campaign = self._campaigns.get((ws, send.campaign_id))
                if campaign is not None and campaign.status is CampaignStatus.ACTIVE:
                    candidates.append(due_at)
                    break
            start = bisect.bisect_right(self._lease_queue, (now, "\U0010ffff", ""))
            for expires_at, _, ws in self._lease_queue[start:]:
                if workspace_id in (None, ws):
                    candidates.append(expires_at)
                    break
            return min(candidates, default=None)

    def claim_due(
        self,
        now: dt.datetime,
        *,
        worker_id: str,
        lease: dt.timedelta,
        limit: int,
        workspace_id: WorkspaceId | None = None,
    ) -> list[ScheduledSend]:
        """See :meth:`Storage.claim_due`."""
        with self._lock:
            due = self._due_now(now, max(limit, 0), workspace_id)
            claimed = []
            for send in due[: max(limit, 0)]:
                taken = attrs.evolve(
                    send,
                    status=SendStatus.CLAIMED,
                    lease_owner=worker_id,
                    lease_expires_at=now + lease,
                    attempts=send.attempts + 1,
                    revision=send.revision + 1,
                )
                self._put_send(send.workspace_id, taken)
                claimed.append(taken)
            return claimed

    def _claimable(self, send: ScheduledSend, now: dt.datetime) -> bool:
        if send.status in (SendStatus.SCHEDULED, SendStatus.WAITING):
            if send.due_at > now:
                return False
            campaign = self._campaigns.get((send.workspace_id, send.campaign_id))
            return campaign is not None and campaign.status is CampaignStatus.ACTIVE
        return (
            send.status is SendStatus.CLAIMED
            and send.lease_expires_at is not None
            and send.lease_expires_at <= now
        )

    def finish_send(
        self,
        send: ScheduledSend,
        *,
        worker_id: str,
        now: dt.datetime,
        changes: Changes | None = None,
    ) -> None:
        """See :meth:`Storage.finish_send`."""
        with self._lock:
            combined = finish_changes(send, changes)
            stored = self._sends.get((send.workspace_id, send.id))
            held = (
                None
                if stored is None
                else (stored.status, stored.lease_owner, stored.lease_expires_at)
            )
            check_lease(send.id, worker_id, held, now)
            self._commit(send.workspace_id, combined)

    # -- reads ----------------------------------------------------------------------------

    def get_campaign(self, workspace_id: WorkspaceId, campaign_id: CampaignId) -> Campaign:
        """See :meth:`Storage.get_campaign`."""
        with self._lock:
            campaign = self._campaigns.get((workspace_id, campaign_id))
        if campaign is None:
            raise CampaignNotFound(f"workspace {workspace_id!r} has no campaign {campaign_id!r}")
        return campaign

    def list_campaigns(self, workspace_id: WorkspaceId) -> list[Campaign]:
        """See :meth:`Storage.list_campaigns`."""
        with self._lock:
            return [c for (ws, _), c in self._campaigns.items() if ws == workspace_id]

    def list_enrolments(
        self, workspace_id: WorkspaceId, campaign_id: CampaignId
    ) -> list[Enrolment]:
        """See :meth:`Storage.list_enrolments`."""
        with self._lock:
            leads = self._enrolments_of_campaign.get((workspace_id, campaign_id), {})
            return [self._enrolments[(workspace_id, campaign_id, lid)] for lid in leads]

    def get_enrolment(
        self, workspace_id: WorkspaceId, campaign_id: CampaignId, lead_id: LeadId
    ) -> Enrolment:
        """See :meth:`Storage.get_enrolment`."""
        with self._lock:
            enrolment = self._enrolments.get((workspace_id, campaign_id, lead_id))
        if enrolment is None:
            raise EnrolmentNotFound(f"campaign {campaign_id!r} has no enrolment of {lead_id!r}")
        return enrolment

    def _enrolment_order(self, enrolment: Enrolment) -> int:
        return self._enrolled_seq[
            (enrolment.workspace_id, enrolment.campaign_id, enrolment.lead_id)
        ]

    def has_unfinished_enrolments(self, workspace_id: WorkspaceId, campaign_id: CampaignId) -> bool:
        """See :meth:`Storage.has_unfinished_enrolments`."""
        with self._lock:
            return bool(self._unfinished.get((workspace_id, campaign_id)))

    def find_enrolments(
        self,
        workspace_id: WorkspaceId,
        *,
        lead_id: LeadId | None = None,
        email_domain: str | None = None,
        lead_ids: Collection[LeadId] | None = None,
    ) -> list[Enrolment]:
        """See :meth:`Storage.find_enrolments`."""
        check_one_filter(lead_id, email_domain, lead_ids)
        with self._lock:
            if lead_id is not None or lead_ids is not None:
                found = [
                    self._enrolments[(workspace_id, cid, lid)]
                    for lid in ([lead_id] if lead_id is not None else dict.fromkeys(lead_ids or ()))
                    for cid in self._enrolments_of_lead.get((workspace_id, lid), {})
                ]
                return sorted(found, key=self._enrolment_order) if lead_id is None else found
            return [
                e
                for (ws, _, _), e in self._enrolments.items()
                if ws == workspace_id and _email_domain(e) == email_domain
            ]

    def list_drafts(
        self,
        workspace_id: WorkspaceId,
        campaign_id: CampaignId,
        lead_id: LeadId | None = None,
        *,
        lead_ids: Collection[LeadId] | None = None,
    ) -> list[Draft]:
        """See :meth:`Storage.list_drafts`."""
        check_lead_filter("list_drafts", lead_id, lead_ids)
        with self._lock:
            if lead_ids is not None:
                return [
                    self._drafts[(workspace_id, campaign_id, lid, step)]
                    for lid in sorted(set(lead_ids))
                    for step in sorted(
                        self._drafts_of_lead.get((workspace_id, campaign_id, lid), {})
                    )
                ]
            if lead_id is not None:
                steps = self._drafts_of_lead.get((workspace_id, campaign_id, lead_id), {})
                return [
                    self._drafts[(workspace_id, campaign_id, lead_id, step)]
                    for step in sorted(steps)
                ]
            keys = self._drafts_of_campaign.get((workspace_id, campaign_id), {})
            found = [self._drafts[(workspace_id, campaign_id, lid, step)] for lid, step in keys]
        return sorted(found, key=lambda d: (d.lead_id, d.step))

    def drafts_needing_attention(
        self, workspace_id: WorkspaceId, campaign_id: CampaignId
    ) -> list[Draft]:
        """See :meth:`Storage.drafts_needing_attention`."""
        with self._lock:
            keys = self._drafts_of_campaign.get((workspace_id, campaign_id), {})
            found = [
                draft
                for lid, step in keys
                if (draft := self._drafts[(workspace_id, campaign_id, lid, step)]).needs_attention
            ]
        return sorted(found, key=lambda d: (d.lead_id, d.step))

    def find_send(self, workspace_id: WorkspaceId, *, message_id: str) -> ScheduledSend | None:
        """See :meth:`Storage.find_send`."""
        with self._lock:
            send_id = self._sends_by_receipt.get((workspace_id, message_id))
            return None if send_id is None else self._sends[(workspace_id, send_id)]

    def list_sends(
        self,
        workspace_id: WorkspaceId,
        campaign_id: CampaignId,
        lead_id: LeadId | None = None,
        *,
        lead_ids: Collection[LeadId] | None = None,
    ) -> list[ScheduledSend]:
        """See :meth:`Storage.list_sends`."""
        check_lead_filter("list_sends", lead_id, lead_ids)
        with self._lock:
            if lead_ids is not None:
                ids = {
                    send_id: None
                    for lid in set(lead_ids)
                    for send_id in self._sends_of_lead.get((workspace_id, campaign_id, lid), {})
                }
            elif lead_id is None:
                ids = self._sends_of_campaign.get((workspace_id, campaign_id), {})
            else:
                ids = self._sends_of_lead.get((workspace_id, campaign_id, lead_id), {})
            found = [self._sends[(workspace_id, send_id)] for send_id in ids]
        return sorted(found, key=lambda s: (s.lead_id, s.step))

    def sender_bookings(
        self,
        workspace_id: WorkspaceId,
        sender_id: SenderId,
        start: dt.datetime,
        end: dt.datetime,
        *,
        actions: Collection[Action] | None = None,
    ) -> list[dt.datetime]:
        """See :meth:`Storage.sender_bookings`."""
        instants: list[dt.datetime] = []
        with self._lock:
            for action in Action if actions is None else set(actions):
                bookings = self._bookings.get((workspace_id, sender_id, action), [])
                low = bisect.bisect_left(bookings, (start, ""))
                high = bisect.bisect_left(bookings, (end, ""))
                instants.extend(instant for instant, _ in bookings[low:high])
        return sorted(instants)

    def last_sent(
        self,
        workspace_id: WorkspaceId,
        sender_id: SenderId,
        *,
        actions: Collection[Action] | None = None,
    ) -> dt.datetime | None:
        """See :meth:`Storage.last_sent`."""
        with self._lock:
            instants = [
                self._last_sent[lane]
                for action in (Action if actions is None else set(actions))
                if (lane := (workspace_id, sender_id, action)) in self._last_sent
            ]
        return max(instants, default=None)

    def recent_sends(
        self,
        workspace_id: WorkspaceId,
        sender_id: SenderId,
        *,
        limit: int,
        after: dt.datetime | None = None,
    ) -> list[ScheduledSend]:
        """See :meth:`Storage.recent_sends`."""
        with self._lock:
            sent = self._sent_of_sender.get((workspace_id, sender_id), [])
            found: list[ScheduledSend] = []
            for sent_at, send_id in reversed(sent):
                if len(found) >= limit or (after is not None and sent_at <= after):
                    break
                found.append(self._sends[(workspace_id, send_id)])
        return found

    def get_sender_hold(self, workspace_id: WorkspaceId, sender_id: SenderId) -> SenderHold | None:
        """See :meth:`Storage.get_sender_hold`."""
        with self._lock:
            return self._holds.get((workspace_id, sender_id))

    def list_sender_holds(self, workspace_id: WorkspaceId) -> list[SenderHold]:
        """See :meth:`Storage.list_sender_holds`."""
        with self._lock:
            return sorted(
                (h for (ws, _), h in self._holds.items() if ws == workspace_id),
                key=lambda h: h.sender_id,
            )

    def list_activities(
        self,
        workspace_id: WorkspaceId,
        *,
        campaign_id: CampaignId | None = None,
        lead_id: LeadId | None = None,
    ) -> list[Activity]:
        """See :meth:`Storage.list_activities`."""
        with self._lock:
            return [
                a
                for a in self._activities.get(workspace_id, [])
                if campaign_id in (None, a.campaign_id) and lead_id in (None, a.lead_id)
            ]

    def activities_since(
        self, workspace_id: WorkspaceId, cursor: str | None, *, limit: int
    ) -> ActivityPage:
        """See :meth:`Storage.activities_since`. A position is the activity's index in the
        workspace's journal, which commits append to under the lock (commit order)."""
        check_page_limit(limit)
        start = read_position(cursor, _POSITION_TAG, 1)
        after = 0 if start is None else start[0]
        with self._lock:
            journal = self._activities.get(workspace_id, [])
            found = journal[after : after + limit + 1]
        entries = tuple(
            JournalEntry(position=position_text(_POSITION_TAG, after + n), activity=a)
            for n, a in enumerate(found[:limit], start=1)
        )
        return ActivityPage(
            entries=entries,
            cursor=entries[-1].position if entries else position_text(_POSITION_TAG, after),
            more=len(found) > limit,
        )

    def suppressed(self, workspace_id: WorkspaceId, keys: Collection[str]) -> set[str]:
        """See :meth:`Storage.suppressed`."""
        with self._lock:
            return set(keys) & self._suppressed.get(workspace_id, set())

    # -- cursors --------------------------------------------------------------------------

    def load_cursor(self, workspace_id: WorkspaceId, name: str) -> str | None:
        """See :meth:`Storage.load_cursor`."""
        check_cursor(name)
        with self._lock:
            return self._cursors.get((workspace_id, name))

    def save_cursor(self, workspace_id: WorkspaceId, name: str, value: str) -> None:
        """See :meth:`Storage.save_cursor`."""
        check_cursor(name, value)
        with self._lock:
            self._cursors[(workspace_id, name)] = value


class InMemoryCreditLedger:
    """The credit ledger in process memory. See :class:`~starlight_sequences.ports.CreditLedger`."""

    def __init__(self, balances: Mapping[str, int] | None = None) -> None:
        self._lock = threading.Lock()
        self._accounts: dict[WorkspaceId, CreditAccount] = {}
        self._journal: dict[WorkspaceId, list[CreditMovement]] = {}
        self._keys: dict[WorkspaceId, set[str]] = {}
        for workspace_id, amount in (balances or {}).items():
            self.post(
                WorkspaceId(workspace_id),
                CreditMovement(kind=MovementKind.TOP_UP, amount=amount, note="opening balance"),
            )

    def balance(self, workspace_id: WorkspaceId) -> CreditAccount:
        """See :meth:`CreditLedger.balance`."""
        with self._lock:
            return self._accounts.get(workspace_id, CreditAccount(workspace=workspace_id))

    def post(self, workspace_id: WorkspaceId, *movements: CreditMovement) -> CreditAccount:
        """See :meth:`CreditLedger.post`."""
        with self._lock:
            account = self._accounts.get(workspace_id, CreditAccount(workspace=workspace_id))
            keys = self._keys.setdefault(workspace_id, set())
            applied: list[CreditMovement] = []
            seen: set[str] = set()  # keys of this post; O(movements), not O(journal)
            for movement in movements:
                if movement.key and (movement.key in keys or movement.key in seen):
                    continue
                account = account.apply(movement)
                applied.append(movement)
                seen.add(movement.key)
            self._accounts[workspace_id] = account
            self._journal.setdefault(workspace_id, []).extend(applied)
            keys.update(m.key for m in applied if m.key)
            return account

    def movements(
        self, workspace_id: WorkspaceId, *, campaign_id: CampaignId | None = None
    ) -> list[CreditMovement]:
        """See :meth:`CreditLedger.movements`."""
        with self._lock:
            return [
                m
                for m in self._journal.get(workspace_id, [])
                if campaign_id in (None, m.campaign_id)
            ]


class RecordingEmailSender:
    """An email sender that keeps what it is given, for tests: ``sent`` holds one message per
    idempotency key (a repeat of a key returns the first receipt and is counted in
    ``attempts``). ``fail_next`` queues failures to return instead of sending."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.sent: dict[str, OutgoingEmail] = {}
        self.attempts: list[str] = []
        self.fail_next: list[SendFailure] = []

    def send_email(self, message: OutgoingEmail) -> SendReceipt | SendFailure:
        """Record ``message`` once per idempotency key."""
        with self._lock:
            self.attempts.append(message.idempotency_key)
            if self.fail_next:
                return self.fail_next.pop(0)
            self.sent.setdefault(message.idempotency_key, message)
            return SendReceipt(message_id=f"<{message.idempotency_key}@recording>")


class RecordingLinkedInSender:
    """A LinkedIn sender that keeps what it is given, for tests (as
    :class:`RecordingEmailSender`)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.sent: dict[str, LinkedInAction] = {}
        self.attempts: list[str] = []
        self.fail_next: list[SendFailure] = []

    def send_linkedin(self, action: LinkedInAction) -> SendReceipt | SendFailure:
        """Record ``action`` once per idempotency key."""
        with self._lock:
            self.attempts.append(action.idempotency_key)
            if self.fail_next:
                return self.fail_next.pop(0)
            self.sent.setdefault(action.idempotency_key, action)
            return SendReceipt(message_id=f"li-{action.idempotency_key}")
