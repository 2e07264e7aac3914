"""A/B variants as a state machine: a campaign with an A/B step and a winner rule, driven by
time passing, replies and bounces in any order. After every step: the split was even, a lead
the step reached never changes variant, after a pick every running lead not reached is on the
winner, and what was charged is exactly what was drafted and sent (the rest is reserved for
the sends still to come)."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import attrs
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from starlight_sequences.campaigns import CampaignSettings, SendStatus
from starlight_sequences.channels import Action
from starlight_sequences.credits import MovementKind
from starlight_sequences.events import EventKind, InboundEvent
from starlight_sequences.ids import CampaignId, LeadId
from starlight_sequences.shapes import SendShape, Step, Variant, WinnerRule
from tests.service_kit import MAILBOX, WS, Kit, lead, make_kit

CID = CampaignId("ab-machine")
REACHED = frozenset({SendStatus.CLAIMED, SendStatus.SENT, SendStatus.SKIPPED, SendStatus.FAILED})


def shape(after_sends: int, after_days: int) -> SendShape:
    return SendShape(
        key="ab",
        name="A/B",
        description="",
        steps=(
            Step(
                number=1,
                action=Action.EMAIL,
                guidance="One ask.",
                variants=(
                    Variant(key="a", guidance="Angle A."),
                    Variant(key="b", guidance="Angle B."),
                    Variant(key="c", guidance="Angle C."),
                ),
                winner=WinnerRule(after_sends=after_sends, after_days=after_days),
            ),
            Step(number=2, action=Action.EMAIL, wait_days=2, guidance="Nudge."),
        ),
    )


class VariantCampaign(RuleBasedStateMachine):
    kit: Kit
    count: int

    @initialize(
        count=st.integers(2, 12),
        cap=st.integers(1, 6),
        after_sends=st.integers(1, 10),
        after_days=st.integers(0, 1),
        seed=st.text(max_size=4),
    )
    def launch(self, count: int, cap: int, after_sends: int, after_days: int, seed: str) -> None:
        self.kit = make_kit()
        self.count = count
        self.kit.service.create_campaign(
            WS,
            name="m",
            brief="We cut cloud bills by 30%.",
            shape=shape(after_sends, after_days),
            leads=[lead(f"l{n:02d}") for n in range(count)],
            email_identity=attrs.evolve(MAILBOX, daily_cap=cap),
            settings=CampaignSettings(seed=seed),
            campaign_id=CID,
        )
        self.kit.service.approve(WS, CID)
        self.reached_on: dict[LeadId, str] = {}
        split = Counter(self.variants().values())
        sizes = [split.get(key, 0) for key in ("a", "b", "c")]
        assert max(sizes) - min(sizes) <= 1

    def variants(self) -> dict[LeadId, str]:
        return {e.lead_id: e.steps[0].variant for e in self.kit.storage.list_enrolments(WS, CID)}

    @rule(hours=st.integers(1, 40))
    def time_passes(self, hours: int) -> None:
        end = self.kit.clock.now() + dt.timedelta(hours=hours)
        while self.kit.clock.now() < end:
            self.kit.service.dispatch_due(worker_id="w1")
            self.kit.clock.advance(dt.timedelta(minutes=30))

    @rule(n=st.integers(0, 11), kind=st.sampled_from([EventKind.REPLY, EventKind.BOUNCE]))
    def a_lead_answers(self, n: int, kind: EventKind) -> None:
        if n < self.count:
            event = InboundEvent(kind=kind, lead_id=LeadId(f"l{n:02d}"), at=self.kit.clock.now())
            self.kit.service.report_event(WS, event)

    @invariant()
    def a_reached_lead_keeps_its_variant_and_the_rest_follow_the_winner(self) -> None:
        if not hasattr(self, "kit"):
            return
        on = self.variants()
        assert len(on) == self.count
        status = {s.lead_id: s.status for s in self.kit.storage.list_sends(WS, CID) if s.step == 1}
        for lead_id, state in status.items():
            if state in REACHED:
                assert self.reached_on.setdefault(lead_id, on[lead_id]) == on[lead_id]
        winners = dict(self.kit.storage.get_campaign(WS, CID).variant_winners)
        if 1 in winners:
            running = {
                e.lead_id
                for e in self.kit.storage.list_enrolments(WS, CID)
                if not e.status.is_final
            }
            for lead_id in running:
                if status.get(lead_id) not in REACHED:
                    assert on[lead_id] == winners[1]

    @invariant()
    def charged_is_what_was_drafted_and_sent_and_the_rest_is_reserved(self) -> None:
        if not hasattr(self, "kit"):
            return
        sends = self.kit.storage.list_sends(WS, CID)
        movements = self.kit.ledger.movements(WS, campaign_id=CID)
        spent = sum(
            m.amount for m in movements if m.kind in (MovementKind.DRAFT, MovementKind.CHARGE)
        )
        sent = sum(1 for s in sends if s.status is SendStatus.SENT)
        assert spent == len(self.kit.storage.list_drafts(WS, CID)) * 4 + sent * 2
        to_come = sum(1 for s in sends if not s.status.is_final)
        assert self.kit.ledger.balance(WS).reserved == to_come * 2


VariantCampaign.TestCase.settings = settings(max_examples=12, stateful_step_count=8, deadline=None)
TestVariantCampaign = VariantCampaign.TestCase
