"""The bounce breaker as a hypothesis state machine over the in-memory adapters.

Two campaigns, each from its own mailbox with a touchy breaker (it may trip after two sends);
random dispatch passes, clock jumps, hard and soft bounces, resumes. After every step: a held
mailbox sends nothing, a hold ends only when the host resumes it, the rule's verdict and the
stored holds agree, and credits add up (held sends are neither charged nor released).
"""

from __future__ import annotations

import datetime as dt

import attrs
import hypothesis.strategies as st
from hypothesis import event, settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from starlight_sequences.bounce_breaker import BounceBreaker, evaluate_breaker, window_outcomes
from starlight_sequences.campaigns import EmailIdentity, EnrolmentStatus, SendStatus
from starlight_sequences.credits import MovementKind
from starlight_sequences.errors import SenderNotHeld
from starlight_sequences.events import EventKind, InboundEvent
from starlight_sequences.ids import CampaignId, LeadId, SenderId
from starlight_sequences.inbound import InboundKind
from starlight_sequences.ports.senders import OutgoingEmail, SendFailure, SendReceipt
from tests.service_kit import MAILBOX, WS, lead, make_kit
from tests.unit._inbound_messages import delivery_report

TOUCHY = BounceBreaker(window=6, minimum_sends=2, threshold=0.2)
MAILBOXES = {
    CampaignId("alpha"): attrs.evolve(MAILBOX, min_spacing=dt.timedelta(0), bounce_breaker=TOUCHY),
    CampaignId("beta"): EmailIdentity(
        id=SenderId("mbx-2"),
        address="bea@acme.test",
        min_spacing=dt.timedelta(0),
        bounce_breaker=TOUCHY,
    ),
}
LEADS = {c: [f"{c[0]}{i}" for i in range(4)] for c in MAILBOXES}


class BreakerMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.kit = make_kit()
        self.sent_while_held: list[str] = []
        self.resumed: set[SenderId] = set()
        self.seen_held: set[SenderId] = set()
        self.soft = 0
        storage, send_email = self.kit.storage, self.kit.email.send_email

        def watched(message: OutgoingEmail) -> SendReceipt | SendFailure:
            hold = storage.get_sender_hold(WS, message.sender_id)
            if hold is not None and hold.held:
                self.sent_while_held.append(message.idempotency_key)
            return send_email(message)

        self.kit.email.send_email = watched  # type: ignore[method-assign]
        for campaign_id, identity in MAILBOXES.items():
            self.kit.service.create_campaign(
                WS,
                name=campaign_id,
                brief="b",
                shape="email-sequence",
                leads=[lead(name) for name in LEADS[campaign_id]],
                email_identity=identity,
                campaign_id=campaign_id,
            )
            self.kit.service.approve(WS, campaign_id)

    @rule(hours=st.integers(1, 30))
    def run_for_hours(self, hours: int) -> None:
        end = self.kit.clock.now() + dt.timedelta(hours=hours)
        while self.kit.clock.now() < end:
            self.kit.service.dispatch_due(worker_id="w")
            self.kit.clock.advance(dt.timedelta(minutes=30))

    @rule(
        campaign=st.sampled_from(sorted(MAILBOXES)),
        index=st.integers(0, 3),
        hard=st.booleans(),
    )
    def bounce(self, campaign: CampaignId, index: int, hard: bool) -> None:
        name = LEADS[campaign][index]
        if hard:
            event = InboundEvent(
                kind=EventKind.BOUNCE, lead_id=LeadId(name), at=self.kit.clock.now()
            )
            self.kit.service.report_event(WS, event)
            return
        sent = [
            s
            for s in self.kit.storage.list_sends(WS, campaign, LeadId(name))
            if s.status is SendStatus.SENT
        ]
        if sent:  # a soft bounce of its latest email, as a delivery report
            self.soft += 1
            block = f"Final-Recipient: rfc822; {name}@{name}.example.com\nAction: delayed\n"
            raw = delivery_report(block + "Status: 4.2.2", original=sent[-1].receipt)
            raw = raw.replace(b"<dsn.1@", f"<dsn.soft{self.soft}@".encode())
            result = self.kit.service.ingest_email(WS, raw)
            assert (result.kind, result.applied) == (InboundKind.BOUNCE_SOFT, False)

    @precondition(lambda self: bool(self.kit.service.sender_holds(WS)))
    @rule(data=st.data())
    def resume(self, data: st.DataObject) -> None:
        held = self.kit.service.sender_holds(WS)
        sender = data.draw(st.sampled_from([h.sender_id for h in held]))
        self.kit.service.resume_sender(WS, sender)
        self.resumed.add(sender)
        event("a held mailbox was resumed")

    @rule(sender=st.sampled_from([m.id for m in MAILBOXES.values()]))
    def resuming_a_mailbox_not_held_is_refused(self, sender: SenderId) -> None:
        hold = self.kit.storage.get_sender_hold(WS, sender)
        if hold is not None and hold.held:
            return
        try:
            self.kit.service.resume_sender(WS, sender)
        except SenderNotHeld:
            return
        raise AssertionError(f"{sender} was resumed while not held")

    @invariant()
    def a_held_mailbox_sends_nothing(self) -> None:
        assert self.sent_while_held == []

    @invariant()
    def a_hold_ends_only_when_the_host_resumes_it(self) -> None:
        for hold in self.kit.storage.list_sender_holds(WS):
            if hold.held:
                self.seen_held.add(hold.sender_id)
                self.resumed.discard(hold.sender_id)
            elif hold.sender_id in self.seen_held:
                assert hold.sender_id in self.resumed

    @invariant()
    def a_mailbox_that_is_not_held_has_not_passed_its_threshold(self) -> None:
        storage = self.kit.storage
        for identity in MAILBOXES.values():
            hold = storage.get_sender_hold(WS, identity.id)
            if hold is not None and hold.held:
                continue
            recent = storage.recent_sends(
                WS,
                identity.id,
                limit=TOUCHY.window,
                after=None if hold is None else hold.resumed_at,
            )
            bounced = {
                (e.campaign_id, e.lead_id)
                for e in storage.find_enrolments(WS, lead_ids=[s.lead_id for s in recent])
                if e.status is EnrolmentStatus.BOUNCED
            }
            keys = [(s.campaign_id, s.lead_id) for s in recent]
            # Bounces are evaluated when they arrive: a send made after a contact's bounce
            # cannot exist (a bounce stops the contact), so the verdict cannot change later.
            assert not evaluate_breaker(TOUCHY, window_outcomes(keys, bounced)).trip

    @invariant()
    def held_sends_wait_and_credits_add_up(self) -> None:
        sends = [s for c in MAILBOXES for s in self.kit.storage.list_sends(WS, c)]
        assert not any(s.status is SendStatus.FAILED for s in sends)
        prices = self.kit.service.prices
        movements = self.kit.ledger.movements(WS)
        charged = sum(m.amount for m in movements if m.kind is MovementKind.CHARGE)
        assert charged == sum(
            prices.price_of(s.action) for s in sends if s.status is SendStatus.SENT
        )
        open_sends = sum(prices.price_of(s.action) for s in sends if not s.status.is_final)
        assert self.kit.ledger.balance(WS).reserved == open_sends


BreakerMachine.TestCase.settings = settings(
    max_examples=settings.default.max_examples, stateful_step_count=25, deadline=None
)
test_bounce_breaker_machine = BreakerMachine.TestCase
