"""The whole campaign lifecycle as a hypothesis state machine over the in-memory adapters.

Random sequences of create, edit, approve, clock jumps, dispatch passes, inbound events,
pauses, resumes, cancels and sender failures; after every step the rules of DESIGN section 1
that users rely on are checked against what the senders, the store and the ledger hold.

The machine runs twice: dispatching one send at a time, and with eight sends in flight (the
email and LinkedIn lanes of a pass then send from two threads at once).
"""

from __future__ import annotations

import datetime as dt
import itertools
import threading
from collections import Counter

import hypothesis.strategies as st
from hypothesis import settings
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
)

from starlight_sequences.campaigns import (
    CampaignStatus,
    EmailIdentity,
    EnrolmentStatus,
    SendStatus,
)
from starlight_sequences.channels import Action
from starlight_sequences.credits import MovementKind
from starlight_sequences.errors import (
    DraftsNeedAttention,
    IllegalTransition,
    InsufficientCredits,
    LastSender,
    UnknownSender,
)
from starlight_sequences.events import EventKind, InboundEvent
from starlight_sequences.ids import CampaignId, LeadId, SenderId
from starlight_sequences.planning import calendar_for, step_moment
from starlight_sequences.ports.senders import (
    LinkedInAction,
    OutgoingEmail,
    SendFailure,
    SendReceipt,
)
from starlight_sequences.shapes import STOCK, WaitAnchor
from tests.service_kit import LINKEDIN, MAILBOX, OTHER_WS, WS, lead, make_kit

POOL = (
    lead("annie", linkedin=True),
    lead("dovid", linkedin=True, country="IL", timezone="Asia/Jerusalem"),
    lead("kimberly", country="AU", timezone="Australia/Sydney"),
    lead("weiwei", email=False, linkedin=True, country="CN", timezone="Asia/Shanghai"),
    lead("samuel", linkedin=True, connected=True, country="GB", timezone="Europe/London"),
)
MAILBOXES = (MAILBOX, EmailIdentity(id="mbx-2", address="bo@acme.test", daily_cap=3))
SCOPED = (EventKind.REPLY, EventKind.MEETING_BOOKED)  # stop one campaign, not every one
CAMPAIGNS = (CampaignId("alpha"), CampaignId("beta"))
STOPPING = {
    EventKind.REPLY: EnrolmentStatus.REPLIED,
    EventKind.MEETING_BOOKED: EnrolmentStatus.MEETING_BOOKED,
    EventKind.UNSUBSCRIBE: EnrolmentStatus.UNSUBSCRIBED,
    EventKind.BOUNCE: EnrolmentStatus.BOUNCED,
}


class LifecycleMachine(RuleBasedStateMachine):
    IN_FLIGHT = 1
    """Most sends a dispatch pass hands to senders at once."""

    def __init__(self) -> None:
        super().__init__()
        self.kit = make_kit(credits=400)
        self.deliveries: Counter[str] = Counter()
        self._counting = threading.Lock()  # the senders may be called from two threads
        self.delivered_at: dict[str, dt.datetime] = {}
        self._count_deliveries()
        self.drafts_made = 0
        self.approved_at: dict[CampaignId, dt.datetime] = {}
        # (campaign or None for every campaign, lead) -> moment after which nothing may go out
        self.stopped: dict[tuple[CampaignId | None, LeadId], dt.datetime] = {}
        self.cancelled_at: dict[CampaignId, dt.datetime] = {}
        self.retired_at: dict[SenderId, dt.datetime] = {}  # removed from the second campaign
        # A campaign of another workspace with the same lead ids: nothing here may touch it.
        self.kit.service.top_up(OTHER_WS, 100)
        self.kit.service.create_campaign(
            OTHER_WS,
            name="other",
            brief="b",
            shape="email-sequence",
            leads=POOL,
            email_identity=MAILBOX,
            linkedin_identity=LINKEDIN,
            campaign_id=CAMPAIGNS[0],
        )
        self.other_snapshot = self._snapshot_other()

    def _count_deliveries(self) -> None:
        email, linkedin, clock = self.kit.email, self.kit.linkedin, self.kit.clock
        send_email, send_linkedin = email.send_email, linkedin.send_linkedin

        def counted_email(message: OutgoingEmail) -> SendReceipt | SendFailure:
            result = send_email(message)
            if isinstance(result, SendReceipt):
                with self._counting:
                    self.deliveries[message.idempotency_key] += 1
                    self.delivered_at[message.idempotency_key] = clock.now()
            return result

        def counted_linkedin(action: LinkedInAction) -> SendReceipt | SendFailure:
            result = send_linkedin(action)
            if isinstance(result, SendReceipt):
                with self._counting:
                    self.deliveries[action.idempotency_key] += 1
                    self.delivered_at[action.idempotency_key] = clock.now()
            return result

        email.send_email = counted_email  # type: ignore[method-assign]
        linkedin.send_linkedin = counted_linkedin  # type: ignore[method-assign]

    def _snapshot_other(self) -> object:
        storage = self.kit.storage
        return (
            storage.list_campaigns(OTHER_WS),
            storage.list_enrolments(OTHER_WS, CAMPAIGNS[0]),
            storage.list_drafts(OTHER_WS, CAMPAIGNS[0]),
            storage.list_sends(OTHER_WS, CAMPAIGNS[0]),
            self.kit.ledger.balance(OTHER_WS),
        )

    def _campaign_ids(self) -> list[CampaignId]:
        return [c.id for c in self.kit.storage.list_campaigns(WS)]

    # -- rules ---------------------------------------------------------------------------

    @precondition(lambda self: len(self._campaign_ids()) < len(CAMPAIGNS))
    @rule(
        shape=st.sampled_from(sorted(STOCK)),
        members=st.sets(st.sampled_from(POOL), min_size=1, max_size=len(POOL)),
        failing=st.sampled_from([False, False, True]),
        approve_now=st.booleans(),
    )
    def create(self, shape: str, members: set, failing: bool, approve_now: bool) -> None:  # type: ignore[type-arg]
        campaign_id = CAMPAIGNS[len(self._campaign_ids())]
        leads = sorted(members, key=lambda x: x.id)
        if failing:
            self.kit.drafter.fail.add(f"{leads[0].id}:1")
        try:
            report = self.kit.service.create_campaign(
                WS,
                name="m",
                brief="We cut cloud bills.",
                shape=shape,
                leads=leads,
                # The second campaign sends from a pool that shares MAILBOX with the first.
                email_identities=(MAILBOX,) if campaign_id == CAMPAIGNS[0] else MAILBOXES,
                linkedin_identity=LINKEDIN,
                campaign_id=campaign_id,
            )
        except InsufficientCredits:
            return
        finally:
            self.kit.drafter.fail.clear()
        self.drafts_made += report.drafts
        if approve_now:
            self.approve(len(self._campaign_ids()) - 1)

    @rule(data=st.data())
    def edit_a_failed_draft(self, data: st.DataObject) -> None:
        for campaign_id in self._campaign_ids():
            if self.kit.storage.get_campaign(WS, campaign_id).status is not CampaignStatus.DRAFT:
                continue
            broken = [d for d in self.kit.storage.list_drafts(WS, campaign_id) if d.needs_attention]
            if broken:
                draft = data.draw(st.sampled_from(broken))
                subject = "A fixed subject" if draft.action is Action.EMAIL else None
                self.kit.service.edit_draft(
                    WS, campaign_id, draft.lead_id, draft.step, subject=subject, body="Fixed."
                )

    @rule(index=st.integers(0, len(CAMPAIGNS) - 1))
    def approve(self, index: int) -> None:
        ids = self._campaign_ids()
        if index >= len(ids):
            return
        campaign_id = ids[index]
        try:
            campaign = self.kit.service.approve(WS, campaign_id)
        except (DraftsNeedAttention, InsufficientCredits, IllegalTransition):
            return
        self.approved_at.setdefault(campaign_id, campaign.approved_at or self.kit.clock.now())

    @rule(minutes=st.integers(1, 3 * 24 * 60))
    def advance_the_clock(self, minutes: int) -> None:
        self.kit.clock.advance(dt.timedelta(minutes=minutes))

    @rule()
    def dispatch(self) -> None:
        self.kit.service.dispatch_due(worker_id="w1", limit=50, in_flight=self.IN_FLIGHT)

    def _run(self, total: dt.timedelta, tick: dt.timedelta) -> None:
        end = self.kit.clock.now() + total
        while self.kit.clock.now() < end:
            self.kit.service.dispatch_due(worker_id="w1", limit=50, in_flight=self.IN_FLIGHT)
            self.kit.clock.advance(tick)

    @rule(hours=st.integers(1, 12))
    def run_for_hours(self, hours: int) -> None:
        """A worker polling every 20 minutes."""
        self._run(dt.timedelta(hours=hours), dt.timedelta(minutes=20))

    @rule(days=st.integers(1, 8))
    def run_for_days(self, days: int) -> None:
        """A worker polling every 2 hours, for days (waits and timeouts elapse)."""
        self._run(dt.timedelta(days=days), dt.timedelta(hours=2))

    @rule(
        kind=st.sampled_from(list(EventKind)),
        who=st.sampled_from(POOL),
        days=st.integers(1, 10),
    )
    def report(self, kind: EventKind, who, days: int) -> None:  # type: ignore[no-untyped-def]
        enrolments = self.kit.storage.find_enrolments(WS, lead_id=who.id)
        if not enrolments:
            return
        if kind is EventKind.CONNECTION_ACCEPTED and not any(
            e.connect_sent_at is not None for e in enrolments
        ):
            return  # nobody accepts a request that was never sent
        now = self.kit.clock.now()
        campaign_id = enrolments[0].campaign_id
        event = InboundEvent(
            kind=kind,
            lead_id=who.id,
            at=now,
            campaign_id=campaign_id
            if kind in (EventKind.REPLY, EventKind.MEETING_BOOKED)
            else None,
            return_date=(now + dt.timedelta(days=days)).date()
            if kind is EventKind.OUT_OF_OFFICE
            else None,
        )
        self.kit.service.report_event(WS, event)
        if kind in STOPPING:
            scope = (
                event.campaign_id if kind in (EventKind.REPLY, EventKind.MEETING_BOOKED) else None
            )
            self.stopped.setdefault((scope, who.id), now)

    @rule(
        index=st.integers(0, len(CAMPAIGNS) - 1),
        action=st.sampled_from(["pause", "resume", "resume", "pause", "cancel"]),
    )
    def control(self, index: int, action: str) -> None:
        ids = self._campaign_ids()
        if index >= len(ids):
            return
        campaign_id = ids[index]
        try:
            if action == "pause":
                self.kit.service.pause_campaign(WS, campaign_id)
            elif action == "resume":
                self.kit.service.resume_campaign(WS, campaign_id)
            else:
                self.kit.service.cancel_campaign(WS, campaign_id)
                self.cancelled_at.setdefault(campaign_id, self.kit.clock.now())
        except IllegalTransition:
            return

    @rule(sender=st.sampled_from([m.id for m in MAILBOXES]))
    def remove_a_pool_sender(self, sender: SenderId) -> None:
        if CAMPAIGNS[1] not in self._campaign_ids():
            return
        try:
            self.kit.service.remove_sender(WS, CAMPAIGNS[1], sender)
        except (UnknownSender, LastSender):
            return
        self.retired_at[sender] = self.kit.clock.now()

    @rule(channel=st.sampled_from(["email", "linkedin"]), permanent=st.booleans())
    def sender_fails_next(self, channel: str, permanent: bool) -> None:
        failure = SendFailure(permanent=permanent, reason="550 no" if permanent else "451 later")
        sender = self.kit.email if channel == "email" else self.kit.linkedin
        sender.fail_next.append(failure)

    # -- invariants ----------------------------------------------------------------------

    def _all_sends(self):  # type: ignore[no-untyped-def]
        return [s for cid in self._campaign_ids() for s in self.kit.storage.list_sends(WS, cid)]

    @invariant()
    def nothing_is_sent_before_approval_or_after_a_stop(self) -> None:
        for send in self._all_sends():
            if send.status is not SendStatus.SENT:
                continue
            assert send.sent_at is not None
            assert send.campaign_id in self.approved_at
            assert send.sent_at >= self.approved_at[send.campaign_id]
            cancelled = self.cancelled_at.get(send.campaign_id)
            assert cancelled is None or send.sent_at <= cancelled
            for scope in (None, send.campaign_id):
                stop = self.stopped.get((scope, send.lead_id))
                assert stop is None or send.sent_at <= stop, (send.id, stop)

    @invariant()
    def every_send_lands_in_business_hours_and_honours_its_wait(self) -> None:
        for campaign_id in self._campaign_ids():
            campaign = self.kit.storage.get_campaign(WS, campaign_id)
            hours = campaign.settings.business_hours
            sends = {(s.lead_id, s.step): s for s in self.kit.storage.list_sends(WS, campaign_id)}
            for enrolment in self.kit.storage.list_enrolments(WS, campaign_id):
                calendar = calendar_for(enrolment.lead, hours)
                previous = None
                for step in enrolment.steps:
                    send = sends.get((enrolment.lead_id, step.number))
                    if send is None or send.status is not SendStatus.SENT:
                        break
                    assert send.sent_at is not None
                    local = send.sent_at.astimezone(calendar.zone)
                    assert calendar.is_business_day(local.date()), (send.id, local)
                    opens, closes = hours.on(local.weekday())
                    assert opens <= local.time() < closes, (send.id, local)
                    if step.gated_on_acceptance:
                        assert enrolment.accepted_at is not None, send.id
                        assert send.sent_at >= enrolment.accepted_at
                    if previous is not None:
                        anchor = (
                            enrolment.accepted_at
                            if step.counts_from is WaitAnchor.CONNECTION_ACCEPTED
                            and enrolment.accepted_at is not None
                            else previous.sent_at
                        )
                        assert anchor is not None
                        earliest = step_moment(calendar, anchor, step.wait_days)
                        assert send.sent_at >= earliest, (send.id, send.sent_at, earliest)
                    previous = send

    @invariant()
    def a_senders_actual_sends_keep_their_spacing(self) -> None:
        for identity, spacing in (
            *((m.id, m.min_spacing) for m in MAILBOXES),
            (LINKEDIN.id, LINKEDIN.min_spacing),
        ):
            times = sorted(
                s.sent_at
                for s in self._all_sends()
                if s.sender_id == identity and s.status is SendStatus.SENT and s.sent_at
            )
            assert all(b - a >= spacing for a, b in itertools.pairwise(times))

    @invariant()
    def a_lead_hears_from_one_sender_per_channel_and_a_removed_one_starts_no_lead(self) -> None:
        first: dict[tuple[CampaignId, LeadId, object], tuple[dt.datetime, SenderId]] = {}
        sent = sorted(
            (s for s in self._all_sends() if s.status is SendStatus.SENT and s.sent_at),
            key=lambda s: (s.sent_at, s.id),
        )
        for send in sent:
            assert send.sent_at is not None
            lane = (send.campaign_id, send.lead_id, send.action.channel)
            started, sender = first.setdefault(lane, (send.sent_at, send.sender_id))
            assert send.sender_id == sender, (send.id, sender)
            retired = self.retired_at.get(send.sender_id)
            if send.campaign_id == CAMPAIGNS[1] and retired is not None:
                assert started <= retired, (send.id, "a removed sender started a lead")
        by_key = {s.idempotency_key: s for s in sent}
        mailboxes = {m.id: m for m in MAILBOXES}
        for message in self.kit.email.sent.values():
            if message.idempotency_key in by_key:
                mailbox = mailboxes[by_key[message.idempotency_key].sender_id]
                assert (message.sender_id, message.from_address) == (mailbox.id, mailbox.address)

    @invariant()
    def each_lead_step_goes_to_a_sender_at_most_once(self) -> None:
        assert all(count == 1 for count in self.deliveries.values())
        sent = {s.idempotency_key for s in self._all_sends() if s.status is SendStatus.SENT}
        assert sent == set(self.deliveries)

    @invariant()
    def credits_add_up_and_never_go_negative(self) -> None:
        account = self.kit.ledger.balance(WS)
        assert account.available >= 0
        assert account.reserved >= 0
        movements = self.kit.ledger.movements(WS)
        prices = self.kit.service.prices
        sends = self._all_sends()
        charged = sum(m.amount for m in movements if m.kind is MovementKind.CHARGE)
        assert charged == sum(
            prices.price_of(s.action) for s in sends if s.status is SendStatus.SENT
        )
        drafted = sum(m.amount for m in movements if m.kind is MovementKind.DRAFT)
        assert drafted == self.drafts_made * prices.draft
        open_sends = sum(prices.price_of(s.action) for s in sends if not s.status.is_final)
        assert account.reserved == open_sends

    @invariant()
    def another_workspace_never_changes(self) -> None:
        assert self._snapshot_other() == self.other_snapshot


LifecycleMachine.TestCase.settings = settings(
    max_examples=settings.default.max_examples,
    stateful_step_count=40,
    deadline=None,
)
test_campaign_lifecycle = LifecycleMachine.TestCase


class ManySendsInFlightMachine(LifecycleMachine):
    IN_FLIGHT = 8


ManySendsInFlightMachine.TestCase.settings = LifecycleMachine.TestCase.settings
test_campaign_lifecycle_with_eight_sends_in_flight = ManySendsInFlightMachine.TestCase
