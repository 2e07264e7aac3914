"""A/B variants: the shape model, the even split, the Wilson interval, the winner rule, and
the service end to end (create → drafts per variant → approve → send → replies → stats →
winner)."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from starlight_sequences.campaigns import (
    CampaignSettings,
    Enrolment,
    EnrolmentStatus,
    ScheduledSend,
    SendStatus,
)
from starlight_sequences.channels import Action
from starlight_sequences.credits import MovementKind
from starlight_sequences.errors import InvalidInput, InvalidShape
from starlight_sequences.events import ActivityKind, EventKind, InboundEvent
from starlight_sequences.ids import CampaignId, LeadId, SenderId, SendId
from starlight_sequences.shapes import SendShape, Step, Variant, WinnerRule
from starlight_sequences.variants import (
    VariantResult,
    assign_variants,
    leads_to_switch,
    pick_winner,
    split_evenly,
    variant_results,
    wilson_interval,
)
from tests.service_kit import LINKEDIN, MAILBOX, WS, Kit, lead, make_kit
from tests.unit._shape_strategies import shapes_with_variants

CID = CampaignId("ab1")
ROI = Variant(key="roi", guidance="Lead with the cost saving, in numbers.")
PEER = Variant(key="peer", guidance="Lead with how a peer company did it.")


def ab_shape(*, winner: WinnerRule | None = None) -> SendShape:
    return SendShape(
        key="ab-cold",
        name="A/B cold email",
        description="one email, two angles",
        steps=(
            Step(
                number=1,
                action=Action.EMAIL,
                guidance="One ask: a 15-minute call.",
                variants=(ROI, PEER),
                winner=winner,
            ),
            Step(number=2, action=Action.EMAIL, wait_days=3, guidance="A short nudge."),
        ),
    )


def one_step(**fields: object) -> SendShape:
    return SendShape(
        key="x",
        name="x",
        description="",
        steps=(Step(**{"number": 1, "action": Action.EMAIL, **fields}),),  # type: ignore[arg-type]
    )


# --- the shape model --------------------------------------------------------------------------


def test_a_variant_guidance_follows_the_steps_shared_guidance() -> None:
    step = ab_shape().step(1)
    assert step.variant_keys == ("roi", "peer")
    assert step.guidance_for("peer") == f"One ask: a 15-minute call.\n\n{PEER.guidance}"
    assert attrs.evolve(step, guidance="").guidance_for("roi") == ROI.guidance
    with pytest.raises(KeyError):
        step.guidance_for("nope")


def test_a_single_variant_is_rejected_naming_the_step() -> None:
    with pytest.raises(InvalidShape, match="step 1: an A/B test needs at least 2") as info:
        one_step(variants=(ROI,))
    assert info.value.step == 1


def test_duplicate_variant_keys_are_rejected_naming_the_step_and_variant() -> None:
    with pytest.raises(InvalidShape, match="step 1 variant 'roi': duplicate") as info:
        one_step(variants=(ROI, attrs.evolve(PEER, key="roi")))
    assert (info.value.step, info.value.variant) == (1, "roi")


def test_a_variant_with_empty_guidance_is_rejected_naming_it() -> None:
    with pytest.raises(InvalidShape, match="variant 'peer': empty guidance") as info:
        one_step(variants=(ROI, Variant(key="peer", guidance="  \n")))
    assert info.value.variant == "peer"


@pytest.mark.parametrize("key", ["", " a", "a b", "a\nb", "-a", "x" * 41, "é"])
def test_a_variant_key_that_is_not_a_short_name_is_rejected(key: str) -> None:
    with pytest.raises(InvalidShape, match="is not a short name"):
        one_step(variants=(ROI, Variant(key=key, guidance="g")))


def test_variants_on_a_connection_request_without_note_are_rejected() -> None:
    with pytest.raises(InvalidShape, match="linkedin_connect without note"):
        SendShape(
            key="li",
            name="li",
            description="",
            steps=(Step(number=1, action=Action.LINKEDIN_CONNECT, variants=(ROI, PEER)),),
        )
    # with a note, the note is drafted per variant
    SendShape(
        key="li",
        name="li",
        description="",
        steps=(
            Step(number=1, action=Action.LINKEDIN_CONNECT, with_note=True, variants=(ROI, PEER)),
        ),
    )


def test_a_winner_rule_needs_variants_and_at_least_one_send() -> None:
    with pytest.raises(InvalidShape, match="needs variants"):
        one_step(winner=WinnerRule(after_sends=10))
    with pytest.raises(InvalidShape, match="after_sends must be a whole number >= 1, not 0"):
        one_step(variants=(ROI, PEER), winner=WinnerRule(after_sends=0))
    with pytest.raises(InvalidShape, match="after_days must be a whole number from 0 to 260"):
        one_step(variants=(ROI, PEER), winner=WinnerRule(after_sends=5, after_days=-1))


def test_variants_and_winner_are_written_only_for_a_step_that_has_them() -> None:
    data = ab_shape(winner=WinnerRule(after_sends=40, after_days=2)).to_dict()
    assert data["steps"][0]["variants"] == [
        {"key": "roi", "guidance": ROI.guidance},
        {"key": "peer", "guidance": PEER.guidance},
    ]
    assert data["steps"][0]["winner"] == {"after_sends": 40, "after_days": 2}
    assert "variants" not in data["steps"][1]
    assert "winner" not in data["steps"][1]


def test_a_dict_with_a_bad_variant_names_the_step_and_variant() -> None:
    data = ab_shape().to_dict()
    data["steps"][0]["variants"][1]["guidance"] = ""
    with pytest.raises(InvalidShape, match="step 1 variant 'peer': empty guidance"):
        SendShape.from_dict(data)
    data["steps"][0]["variants"][1] = {"key": "peer", "angle": "x"}
    with pytest.raises(InvalidShape, match=r"variant #2: unknown field\(s\): angle"):
        SendShape.from_dict(data)
    data["steps"][0]["variants"] = "roi,peer"
    with pytest.raises(InvalidShape, match="variants must be a list"):
        SendShape.from_dict(data)
    data["steps"][0]["variants"] = [{"key": "a", "guidance": "g"}] * 2
    with pytest.raises(InvalidShape, match="duplicate variant key"):
        SendShape.from_dict(data)


@given(shapes_with_variants())
def test_every_shape_with_variants_survives_a_json_round_trip(shape: SendShape) -> None:
    assert SendShape.from_dict(json.loads(json.dumps(shape.to_dict()))) == shape


# --- the split --------------------------------------------------------------------------------

lead_id_sets = st.sets(st.from_regex(r"[a-z0-9]{1,8}", fullmatch=True), max_size=60)
key_lists = (
    st.lists(st.from_regex(r"[a-z]{1,4}", fullmatch=True), min_size=2, max_size=5)
    .map(lambda keys: list(dict.fromkeys(keys)))
    .filter(lambda keys: len(keys) >= 2)
)


@given(lead_id_sets, key_lists, st.text(max_size=8), st.integers(1, 9))
def test_the_split_is_even_within_one_lead(
    ids: set[str], keys: list[str], seed: str, step: int
) -> None:
    split = split_evenly([LeadId(i) for i in ids], keys, seed=seed, step=step)
    assert set(split) == ids
    counts = Counter(split.values())
    sizes = [counts.get(key, 0) for key in keys]
    assert max(sizes) - min(sizes) <= 1


@given(lead_id_sets, key_lists, st.text(max_size=8), st.randoms(use_true_random=False))
def test_the_split_is_deterministic_whatever_the_order_of_the_leads(
    ids: set[str], keys: list[str], seed: str, rnd: object
) -> None:
    ordered = sorted(ids)
    shuffled = list(ordered)
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    first = split_evenly([LeadId(i) for i in ordered], keys, seed=seed, step=1)
    again = split_evenly([LeadId(i) for i in shuffled], keys, seed=seed, step=1)
    assert first == again


def test_the_split_is_stable_for_a_seed_and_changes_with_it() -> None:
    ids = [LeadId(f"lead-{n}") for n in range(40)]
    by_seed = {seed: split_evenly(ids, ["a", "b"], seed=seed, step=1) for seed in ("", "s1", "s2")}
    # pinned: the split of a seed does not change across versions or runs
    assert [by_seed["s1"][LeadId(f"lead-{n}")] for n in range(8)] == pinned_s1()
    assert by_seed["s1"] != by_seed["s2"] != by_seed[""]
    assert split_evenly(ids, ["a", "b"], seed="s1", step=2) != by_seed["s1"]


def pinned_s1() -> list[str]:
    return ["b", "b", "b", "b", "a", "a", "b", "a"]


def test_a_split_needs_keys() -> None:
    with pytest.raises(InvalidInput, match="no variant keys"):
        split_evenly([LeadId("a")], [], seed="", step=1)


def _enrolment(lead_id: str, steps: tuple[Step, ...] | None = None) -> Enrolment:
    from starlight_sequences.cadence import resolve_cadence

    cadence = resolve_cadence(ab_shape(), lead(lead_id))
    assert not isinstance(cadence, Exception)
    assert hasattr(cadence, "steps")
    return Enrolment(
        workspace_id=WS,
        campaign_id=CID,
        lead=lead(lead_id),
        steps=cadence.steps,  # type: ignore[union-attr]
    )


def test_assigning_variants_sets_each_leads_key_and_guidance_on_the_ab_step_only() -> None:
    enrolments = assign_variants(ab_shape(), [_enrolment(f"l{n}") for n in range(7)], "seed")
    on = Counter(e.steps[0].variant for e in enrolments)
    assert sorted(on.values()) == [3, 4]
    for e in enrolments:
        first, second = e.steps
        assert first.guidance == ab_shape().step(1).guidance_for(first.variant)
        assert second.variant == ""
        assert second.guidance == "A short nudge."


# --- the Wilson interval ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("replied", "sent", "low", "high"),
    [
        # Newcombe (1998), "Two-sided confidence intervals for the single proportion",
        # Statistics in Medicine 17:857-872, Table I, method 3 (score, no continuity correction)
        (81, 263, 0.2553, 0.3662),
        (15, 148, 0.0624, 0.1605),
        (0, 20, 0.0, 0.1611),
        (1, 29, 0.0061, 0.1718),
        # the textbook 5 of 10
        (5, 10, 0.2366, 0.7634),
    ],
)
def test_the_wilson_interval_matches_published_values(
    replied: int, sent: int, low: float, high: float
) -> None:
    got = wilson_interval(replied, sent)
    assert got == (pytest.approx(low, abs=5e-5), pytest.approx(high, abs=5e-5))


def test_with_no_sends_the_interval_is_everything() -> None:
    assert wilson_interval(0, 0) == (0.0, 1.0)


@given(st.integers(0, 10_000), st.integers(0, 10_000))
def test_the_interval_holds_the_rate_and_stays_within_zero_and_one(a: int, b: int) -> None:
    replied, sent = min(a, b), max(a, b)
    low, high = wilson_interval(replied, sent)
    rate = replied / sent if sent else 0.5
    assert 0.0 <= low <= rate + 1e-12
    assert rate - 1e-12 <= high <= 1.0


@pytest.mark.parametrize(("replied", "sent"), [(-1, 3), (4, 3), (True, 3)])
def test_impossible_counts_are_refused(replied: int, sent: int) -> None:
    with pytest.raises(InvalidInput, match="wilson_interval"):
        wilson_interval(replied, sent)


# --- the winner rule --------------------------------------------------------------------------


def _results(*rows: tuple[str, int, int]) -> list[VariantResult]:
    return [VariantResult(step=1, key=k, leads=s, sent=s, replied=r, bounced=0) for k, s, r in rows]


def test_no_winner_before_the_stated_number_of_sends() -> None:
    step = ab_shape(winner=WinnerRule(after_sends=20)).step(1)
    assert pick_winner(step, _results(("roi", 10, 0), ("peer", 9, 5))) is None
    assert pick_winner(step, _results(("roi", 10, 0), ("peer", 10, 5))) == "peer"
    assert pick_winner(ab_shape().step(1), _results(("roi", 99, 0), ("peer", 99, 9))) is None


def test_the_highest_lower_bound_wins_not_the_highest_rate() -> None:
    step = ab_shape(winner=WinnerRule(after_sends=10)).step(1)
    # peer has the higher rate (1/2) but on two sends; roi's 30/100 is surer
    assert pick_winner(step, _results(("roi", 100, 30), ("peer", 2, 1))) == "roi"


def test_ties_go_to_the_higher_rate_then_to_the_first_listed_variant() -> None:
    step = ab_shape(winner=WinnerRule(after_sends=10)).step(1)
    # 0 replies: both lower bounds are 0; the rates tie too; roi is listed first
    assert pick_winner(step, _results(("peer", 10, 0), ("roi", 20, 0))) == "roi"


def test_the_pick_waits_the_stated_days_after_the_send_that_reached_the_count() -> None:
    step = ab_shape(winner=WinnerRule(after_sends=2, after_days=2)).step(1)
    t0 = dt.datetime(2026, 12, 1, 15, tzinfo=dt.UTC)
    sent_at = [t0, t0 + dt.timedelta(hours=5), t0 + dt.timedelta(days=9)]
    results = _results(("roi", 2, 0), ("peer", 1, 1))
    early = t0 + dt.timedelta(days=2, hours=4)
    assert pick_winner(step, results, sent_at=sent_at, now=early) is None
    on_time = t0 + dt.timedelta(days=2, hours=5)
    assert pick_winner(step, results, sent_at=sent_at, now=on_time) == "peer"
    assert pick_winner(step, results) is None  # no clock given: cannot tell


def _send(lead_id: str, status: SendStatus, step: int = 1) -> ScheduledSend:
    at = dt.datetime(2026, 12, 1, 15, tzinfo=dt.UTC)
    return ScheduledSend(
        id=SendId(f"{CID}:{lead_id}:{step}"),
        workspace_id=WS,
        campaign_id=CID,
        lead_id=LeadId(lead_id),
        step=step,
        action=Action.EMAIL,
        sender_id=SenderId("mbx-1"),
        due_at=at,
        forecast_at=at,
        status=status,
        sent_at=at if status is SendStatus.SENT else None,
    )


def test_results_count_sent_replied_and_bounced_per_variant() -> None:
    e = {e.lead_id: e for e in assign_variants(ab_shape(), [_enrolment(n) for n in "abcdef"], "")}
    on = {lid: en.steps[0].variant for lid, en in e.items()}
    roi = sorted(lid for lid, key in on.items() if key == "roi")
    peer = sorted(lid for lid, key in on.items() if key == "peer")
    e[roi[0]] = attrs.evolve(e[roi[0]], status=EnrolmentStatus.REPLIED)
    e[roi[1]] = attrs.evolve(e[roi[1]], status=EnrolmentStatus.BOUNCED)
    sends = [
        _send(roi[0], SendStatus.SENT),
        _send(roi[1], SendStatus.SENT),
        _send(roi[2], SendStatus.SCHEDULED),
        _send(peer[0], SendStatus.FAILED),
        _send(peer[1], SendStatus.SENT),
    ]
    got = variant_results(ab_shape(), e.values(), sends, {1: "peer"})
    assert got == (
        VariantResult(step=1, key="roi", leads=3, sent=2, replied=1, bounced=1),
        VariantResult(step=1, key="peer", leads=3, sent=1, replied=0, bounced=1, winner=True),
    )
    # the pick moves only running leads on the other variant that the step has not reached
    moved = leads_to_switch(1, "peer", e.values(), sends)
    assert [m.lead_id for m in moved] == [roi[2]]


# --- the service, end to end ------------------------------------------------------------------


def launch(kit: Kit, shape: SendShape, count: int, seed: str = "q4", cap: int = 40) -> None:
    kit.service.create_campaign(
        WS,
        name="Q4 A/B",
        brief="We cut cloud bills by 30%.",
        shape=shape,
        leads=[lead(f"l{n:02d}") for n in range(count)],
        email_identity=attrs.evolve(MAILBOX, daily_cap=cap),
        linkedin_identity=LINKEDIN,
        settings=CampaignSettings(seed=seed),
        campaign_id=CID,
    )


def run_for(kit: Kit, days: float) -> None:
    end = kit.clock.now() + dt.timedelta(days=days)
    while kit.clock.now() < end:
        kit.service.dispatch_due(worker_id="w1")
        kit.clock.advance(dt.timedelta(minutes=30))


def variant_of(kit: Kit, lead_id: LeadId, step: int = 1) -> str:
    enrolment = kit.storage.get_enrolment(WS, CID, lead_id)
    return next(s.variant for s in enrolment.steps if s.number == step)


def test_each_lead_is_drafted_from_its_variant_and_the_preview_shows_it() -> None:
    kit = make_kit()
    launch(kit, ab_shape(), 9)
    preview = kit.service.preview(WS, CID)
    shown = {r.lead.id: r.steps[0].variant for r in preview.recipients}
    assert Counter(shown.values()) in (Counter(roi=5, peer=4), Counter(roi=4, peer=5))
    assert all(r.steps[1].variant == "" for r in preview.recipients)
    step = ab_shape().step(1)
    for request in kit.drafter.requests:
        lead_id, number = request.key.rsplit(":", 1)
        if number == "1":
            assert request.guidance == step.guidance_for(shown[LeadId(lead_id)])
        else:
            assert request.guidance == "A short nudge."


def test_the_split_is_the_same_when_the_campaign_is_created_again_with_the_seed() -> None:
    splits = []
    for _ in range(2):
        kit = make_kit()
        launch(kit, ab_shape(), 12, seed="same")
        splits.append({e.lead_id: e.steps[0].variant for e in kit.storage.list_enrolments(WS, CID)})
    assert splits[0] == splits[1]


def test_credits_charged_are_exactly_the_estimate_when_every_step_goes_out() -> None:
    kit = make_kit()
    shape = ab_shape()
    leads = [lead(f"l{n:02d}") for n in range(6)]
    estimate = kit.service.estimate(shape, leads)
    launch(kit, shape, 6)
    kit.service.approve(WS, CID)
    run_for(kit, 12)
    assert all(len(kit.storage.list_sends(WS, CID, lead.id)) == 2 for lead in leads)
    spent = sum(
        m.amount
        for m in kit.ledger.movements(WS, campaign_id=CID)
        if m.kind in (MovementKind.DRAFT, MovementKind.CHARGE)
    )
    assert spent == estimate.total == 6 * (2 * 4 + 2 * 2)


def test_replies_show_per_variant_and_the_winner_goes_to_the_leads_not_yet_reached() -> None:
    kit = make_kit()
    shape = ab_shape(winner=WinnerRule(after_sends=4, after_days=1))
    leads = [lead(f"l{n:02d}") for n in range(12)]
    estimate = kit.service.estimate(shape, leads)
    launch(kit, shape, 12, cap=4)  # four emails a day: the test runs over three days
    kit.service.approve(WS, CID)
    for _ in range(200):  # until the fourth send, and not one more
        kit.service.dispatch_due(worker_id="w1", limit=1)
        kit.clock.advance(dt.timedelta(minutes=10))
        status = kit.service.status(WS, CID)
        if sum(r.sent for r in status.variants if r.step == 1) == 4:
            break
    assert sum(r.sent for r in status.variants if r.step == 1) == 4
    sent_first = [s.lead_id for s in kit.storage.list_sends(WS, CID) if s.status is SendStatus.SENT]
    # one lead of the first day replies: its variant is ahead
    replier = sent_first[0]
    ahead = variant_of(kit, replier)
    assert ahead == "peer"  # listed second: only the replies can make it win
    behind = "peer" if ahead == "roi" else "roi"
    kit.service.report_event(
        WS, InboundEvent(kind=EventKind.REPLY, lead_id=replier, at=kit.clock.now())
    )
    # a bigger edge so the lower bound moves: a second reply on the same variant if there is one
    others = [lid for lid in sent_first[1:] if variant_of(kit, lid) == ahead]
    for lid in others:
        kit.service.report_event(
            WS, InboundEvent(kind=EventKind.REPLY, lead_id=lid, at=kit.clock.now())
        )
    before = {e.lead_id: variant_of(kit, e.lead_id) for e in kit.storage.list_enrolments(WS, CID)}
    drafts_before = {d.lead_id: d for d in kit.storage.list_drafts(WS, CID) if d.step == 1}
    run_for(kit, 2)
    campaign = kit.storage.get_campaign(WS, CID)
    assert campaign.variant_winners == ((1, ahead),)
    picks = [
        a
        for a in kit.storage.list_activities(WS, campaign_id=CID)
        if a.kind is ActivityKind.VARIANT_PICKED
    ]
    assert len(picks) == 1
    assert picks[0].step == 1
    assert f"variant {ahead!r} wins" in picks[0].detail
    moved = [lid for lid, key in before.items() if key == behind and variant_of(kit, lid) == ahead]
    assert moved, "some leads on the losing variant were not reached yet"
    step = shape.step(1)
    for lid in moved:
        draft = next(d for d in kit.storage.list_drafts(WS, CID, lid) if d.step == 1)
        assert draft.version == drafts_before[lid].version + 1
        asked = [r for r in kit.drafter.requests if r.key == f"{lid}:1"]
        assert asked[-1].guidance == step.guidance_for(ahead)
    # no lead that was already reached changed variant
    for send in kit.storage.list_sends(WS, CID):
        if send.step == 1 and send.sent_at is not None and send.sent_at < picks[0].at:
            assert variant_of(kit, send.lead_id) == before[send.lead_id]
    run_for(kit, 14)
    results = {r.key: r for r in kit.service.status(WS, CID).variants if r.step == 1}
    assert results[ahead].winner
    assert not results[behind].winner
    assert results[ahead].replied == 1 + len(others)
    assert results["roi"].sent + results["peer"].sent == 12
    assert results["roi"].leads + results["peer"].leads == 12
    # the redrafts were not charged again: charged never exceeds the estimate, and equals
    # the estimate less the follow-ups the replies stopped
    spent = sum(
        m.amount
        for m in kit.ledger.movements(WS, campaign_id=CID)
        if m.kind in (MovementKind.DRAFT, MovementKind.CHARGE)
    )
    sent = sum(1 for s in kit.storage.list_sends(WS, CID) if s.status is SendStatus.SENT)
    drafts = len(kit.storage.list_drafts(WS, CID))
    assert spent == drafts * 4 + sent * 2 <= estimate.total
    assert kit.ledger.balance(WS).reserved == 0


@settings(max_examples=15, deadline=None)
@given(
    count=st.integers(2, 10),
    cap=st.integers(1, 6),
    after=st.integers(1, 10),
    repliers=st.sets(st.integers(0, 9), max_size=5),
)
def test_charged_is_what_was_drafted_and_sent_whatever_the_winner_does(
    count: int, cap: int, after: int, repliers: set[int]
) -> None:
    kit = make_kit()
    shape = ab_shape(winner=WinnerRule(after_sends=after))
    launch(kit, shape, count, cap=cap)
    kit.service.approve(WS, CID)
    for day in range(12):
        run_for(kit, 1)
        for n in repliers:
            lid = LeadId(f"l{n:02d}")
            if n < count and day == 1:
                kit.service.report_event(
                    WS, InboundEvent(kind=EventKind.REPLY, lead_id=lid, at=kit.clock.now())
                )
    spent = sum(
        m.amount
        for m in kit.ledger.movements(WS, campaign_id=CID)
        if m.kind in (MovementKind.DRAFT, MovementKind.CHARGE)
    )
    sent = sum(1 for s in kit.storage.list_sends(WS, CID) if s.status is SendStatus.SENT)
    assert spent == len(kit.storage.list_drafts(WS, CID)) * 4 + sent * 2
    results = kit.service.status(WS, CID).variants
    on_step_one = [r for r in results if r.step == 1]
    assert sum(r.leads for r in on_step_one) == count
    sent_one = sum(
        1 for s in kit.storage.list_sends(WS, CID) if s.step == 1 and s.status is SendStatus.SENT
    )
    assert sum(r.sent for r in on_step_one) == sent_one


class ClaimsWhileDrafting:
    """The kit's storage, but another worker claims every due send as soon as the winner
    rule starts redrafting (between its reads and its commit)."""

    def __init__(self, kit: Kit) -> None:
        self.inner = kit.storage
        self.clock = kit.clock
        self.claimed: list[ScheduledSend] = []

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    def list_drafts(self, *args: object, **kwargs: object) -> object:
        # the redraft reads the whole campaign's drafts; a pass reads its batch's leads' only
        whole_campaign = len(args) == 2 and not {"lead_id", "lead_ids"} & kwargs.keys()
        if whole_campaign and not self.claimed:
            self.claimed = self.inner.claim_due(
                self.clock.now(), worker_id="other", lease=dt.timedelta(minutes=5), limit=100
            )
        return self.inner.list_drafts(*args, **kwargs)  # type: ignore[arg-type]


def test_a_lead_claimed_while_the_winner_is_redrafted_is_not_moved() -> None:
    kit = make_kit()
    launch(kit, ab_shape(winner=WinnerRule(after_sends=1)), 6)
    kit.service.approve(WS, CID)
    before = {e.lead_id: e.steps[0].variant for e in kit.storage.list_enrolments(WS, CID)}
    kit.clock.set(dt.datetime(2026, 11, 30, 14, 30, tzinfo=dt.UTC))  # every first email due
    racing = ClaimsWhileDrafting(kit)
    kit.service.storage = racing  # type: ignore[assignment]
    kit.service.dispatch_due(worker_id="w1", limit=1)
    assert len(racing.claimed) == 5  # the other worker took the rest mid-pick
    # so the pick wrote nothing: it would have moved leads whose old draft is being sent
    assert kit.storage.get_campaign(WS, CID).variant_winners == ()
    assert {e.lead_id: e.steps[0].variant for e in kit.storage.list_enrolments(WS, CID)} == before
    kit.service.storage = kit.storage
    run_for(kit, 1)  # the leases run out; the next pass decides again
    ((step, winner),) = kit.storage.get_campaign(WS, CID).variant_winners
    assert step == 1
    drafts = {d.lead_id: d for d in kit.storage.list_drafts(WS, CID) if d.step == 1}
    for enrolment in kit.storage.list_enrolments(WS, CID):
        moved = enrolment.steps[0].variant != before[enrolment.lead_id]
        assert moved == (drafts[enrolment.lead_id].version == 2)
        assert not moved or enrolment.steps[0].variant == winner


def test_two_ab_steps_split_independently_and_each_rule_picks_once() -> None:
    kit = make_kit()
    nudge = [Variant(key="short", guidance="Two lines."), Variant(key="story", guidance="A tale.")]
    shape = attrs.evolve(
        ab_shape(winner=WinnerRule(after_sends=2)),
        steps=(
            ab_shape(winner=WinnerRule(after_sends=2)).step(1),
            attrs.evolve(
                ab_shape().step(2), variants=tuple(nudge), winner=WinnerRule(after_sends=2)
            ),
        ),
    )
    launch(kit, shape, 8)
    kit.service.approve(WS, CID)
    run_for(kit, 12)
    assert dict(kit.storage.get_campaign(WS, CID).variant_winners).keys() == {1, 2}
    picks = [
        a.step
        for a in kit.storage.list_activities(WS, campaign_id=CID)
        if a.kind is ActivityKind.VARIANT_PICKED
    ]
    assert sorted(picks) == [1, 2]
    results = kit.service.status(WS, CID).variants
    assert [(r.step, r.key) for r in results] == [
        (1, "roi"),
        (1, "peer"),
        (2, "short"),
        (2, "story"),
    ]
    assert all(sum(r.sent for r in results if r.step == n) == 8 for n in (1, 2))


def test_a_hard_bounce_counts_against_the_variant_that_was_sent() -> None:
    kit = make_kit()
    launch(kit, ab_shape(), 4)
    kit.service.approve(WS, CID)
    run_for(kit, 1)
    sent = [s for s in kit.storage.list_sends(WS, CID) if s.status is SendStatus.SENT]
    assert len(sent) == 4
    bouncer = sent[0].lead_id
    kit.service.report_event(
        WS, InboundEvent(kind=EventKind.BOUNCE, lead_id=bouncer, at=kit.clock.now())
    )
    results = {r.key: r for r in kit.service.status(WS, CID).variants}
    assert results[variant_of(kit, bouncer)].bounced == 1
    assert sum(r.bounced for r in results.values()) == 1
    assert sum(r.replied for r in results.values()) == 0
