"""Sender pools through the service: leads spread over mailboxes by remaining capacity, each
lead's whole sequence from its one mailbox, caps and spacing shared across campaigns, and a
sender removed mid-campaign."""

from __future__ import annotations

import datetime as dt
import itertools
import zoneinfo
from collections import Counter, defaultdict

import pytest

from starlight_sequences.campaigns import EmailIdentity, LinkedInIdentity, SendStatus
from starlight_sequences.errors import LastSender, UnknownSender
from starlight_sequences.events import ActivityKind
from starlight_sequences.ids import CampaignId, LeadId, SenderId
from tests.service_kit import WS, Kit, lead, make_kit

MAILBOXES = (
    EmailIdentity(id="mbx-s", address="s@acme.test", display_name="Sam", daily_cap=20),
    EmailIdentity(id="mbx-m", address="m@acme.test", display_name="Mia", daily_cap=40),
    EmailIdentity(id="mbx-l", address="l@acme.test", display_name="Lou", daily_cap=60),
)
BY_ID = {m.id: m for m in MAILBOXES}


def create(kit: Kit, cid: str, leads: list[str], pool: tuple[EmailIdentity, ...]) -> None:
    kit.service.create_campaign(
        WS,
        name=cid,
        brief="We cut cloud bills by 30%.",
        shape="email-sequence",
        leads=[lead(name) for name in leads],
        email_identities=pool,
        campaign_id=cid,
    )


def run_for(kit: Kit, days: float, step: dt.timedelta = dt.timedelta(minutes=20)) -> None:
    end = kit.clock.now() + dt.timedelta(days=days)
    while kit.clock.now() < end:
        kit.service.dispatch_due(worker_id="w1")
        kit.clock.advance(step)


def senders_of(kit: Kit, cid: str) -> dict[LeadId, SenderId]:
    return {e.lead_id: e.senders[0] for e in kit.storage.list_enrolments(WS, CampaignId(cid))}


@pytest.fixture(scope="module")
def big() -> Kit:
    """300 leads over three mailboxes of daily caps 20, 40 and 60, run to the end."""
    kit = make_kit(credits=100_000)
    create(kit, "big", [f"p{i:03d}" for i in range(300)], MAILBOXES)
    kit.service.approve(WS, "big")
    run_for(kit, 35)
    return kit


def test_leads_are_spread_over_the_mailboxes_by_remaining_capacity(big: Kit) -> None:
    counts = Counter(senders_of(big, "big").values())
    assert counts == {SenderId("mbx-s"): 50, SenderId("mbx-m"): 100, SenderId("mbx-l"): 150}


def test_every_send_of_a_lead_goes_out_from_its_one_mailbox(big: Kit) -> None:
    assigned = senders_of(big, "big")
    sends = big.storage.list_sends(WS, CampaignId("big"))
    assert sends
    assert all(s.status is SendStatus.SENT for s in sends)
    for send in sends:
        assert send.sender_id == assigned[send.lead_id]
    for message in big.email.sent.values():
        mailbox = BY_ID[assigned[message.lead_id]]
        assert (message.sender_id, message.from_address, message.from_name) == (
            mailbox.id,
            mailbox.address,
            mailbox.display_name,
        )


def test_follow_ups_stay_in_the_thread_of_the_lead_s_mailbox(big: Kit) -> None:
    by_lead = defaultdict(list)
    for message in big.email.sent.values():
        by_lead[message.lead_id].append(message)
    replies = 0
    for messages in by_lead.values():
        messages.sort(key=lambda m: m.step)
        assert len({m.from_address for m in messages}) == 1
        for index, message in enumerate(messages[1:], start=1):
            if message.in_reply_to:
                replies += 1
                earlier = {f"<{m.idempotency_key}@recording>" for m in messages[:index]}
                assert message.in_reply_to in earlier
    assert replies > 0


def test_no_mailbox_exceeds_its_daily_cap_or_spacing(big: Kit) -> None:
    _assert_caps_and_spacing(big)


def test_the_preview_shows_each_lead_s_sender(big: Kit) -> None:
    assigned = senders_of(big, "big")
    preview = big.service.preview(WS, "big", "p007")
    (recipient,) = preview.recipients
    assert {step.sender_id for step in recipient.steps} == {assigned[LeadId("p007")]}


def test_two_campaigns_sharing_a_mailbox_keep_its_daily_cap_and_spacing_together() -> None:
    kit = make_kit(credits=100_000)
    create(kit, "one", [f"a{i}" for i in range(6)], (SHARED,))
    kit.service.approve(WS, "one")
    kit.clock.advance(dt.timedelta(hours=1))
    create(kit, "two", [f"b{i}" for i in range(6)], (SHARED,))
    kit.service.approve(WS, "two")
    planned = sorted(
        s.due_at
        for cid in ("one", "two")
        for s in kit.storage.list_sends(WS, CampaignId(cid))
        if s.status is SendStatus.SCHEDULED
    )
    assert len(planned) == 12  # both campaigns' first steps, planned around each other
    assert all(b - a >= SHARED.min_spacing for a, b in itertools.pairwise(planned))
    assert max(Counter(p.date() for p in planned).values()) <= SHARED.daily_cap
    run_for(kit, 16, step=dt.timedelta(minutes=5))
    sent = [
        s
        for cid in ("one", "two")
        for s in kit.storage.list_sends(WS, CampaignId(cid))
        if s.status is SendStatus.SENT
    ]
    assert len(sent) == 36
    assert {s.sender_id for s in sent} == {SHARED.id}
    _assert_caps_and_spacing(kit, {SHARED.id: SHARED})


def test_a_second_campaign_s_leads_go_to_the_mailbox_another_campaign_left_room_in() -> None:
    kit = make_kit(credits=100_000)
    own = EmailIdentity(id="mbx-own", address="o@acme.test", daily_cap=6)
    create(kit, "one", [f"a{i}" for i in range(6)], (SHARED,))
    kit.service.approve(WS, "one")  # books the shared mailbox's whole day
    create(kit, "two", [f"b{i}" for i in range(6)], (SHARED, own))
    assert set(senders_of(kit, "two").values()) == {own.id}


SHARED = EmailIdentity(
    id="mbx-shared", address="x@acme.test", daily_cap=6, min_spacing=dt.timedelta(minutes=11)
)


def _assert_caps_and_spacing(kit: Kit, mailboxes: dict[SenderId, EmailIdentity] = BY_ID) -> None:
    per_day: Counter[tuple[SenderId, dt.date]] = Counter()
    times: dict[SenderId, list[dt.datetime]] = defaultdict(list)
    for campaign in kit.storage.list_campaigns(WS):
        for send in kit.storage.list_sends(WS, campaign.id):
            if send.status is SendStatus.SENT and send.sender_id in mailboxes:
                assert send.sent_at is not None
                zone = zoneinfo.ZoneInfo(mailboxes[send.sender_id].timezone)
                per_day[send.sender_id, send.sent_at.astimezone(zone).date()] += 1
                times[send.sender_id].append(send.sent_at)
    assert per_day
    for (sender, _day), count in per_day.items():
        assert count <= mailboxes[sender].daily_cap
    for sender, instants in times.items():
        instants.sort()
        gaps = [b - a for a, b in itertools.pairwise(instants)]
        assert all(gap >= mailboxes[sender].min_spacing for gap in gaps)


def _started_and_not(kit: Kit, cid: str, sender: SenderId) -> tuple[set[LeadId], set[LeadId]]:
    sends = kit.storage.list_sends(WS, CampaignId(cid))
    leads = {s.lead_id for s in sends if s.sender_id == sender}
    started = {s.lead_id for s in sends if s.sender_id == sender and s.status is SendStatus.SENT}
    return started, leads - started


def _half_sent(move_started: bool) -> tuple[Kit, set[LeadId], set[LeadId]]:
    kit = make_kit(credits=100_000)
    small = (
        EmailIdentity(id="mbx-a", address="a@acme.test", daily_cap=3),
        EmailIdentity(id="mbx-b", address="b@acme.test", daily_cap=3),
    )
    create(kit, "c", [f"q{i:02d}" for i in range(10)], small)
    kit.service.approve(WS, "c")
    run_for(kit, 1)  # the first day: three leads of each mailbox start
    started, waiting = _started_and_not(kit, "c", SenderId("mbx-a"))
    assert started
    assert waiting
    kit.service.remove_sender(WS, "c", "mbx-a", move_started=move_started)
    return kit, started, waiting


def test_removing_a_sender_moves_its_not_started_leads_and_keeps_started_threads() -> None:
    kit, started, waiting = _half_sent(move_started=False)
    campaign = kit.storage.get_campaign(WS, CampaignId("c"))
    assert campaign.retired_senders == (SenderId("mbx-a"),)
    assigned = senders_of(kit, "c")
    assert {assigned[x] for x in waiting} == {SenderId("mbx-b")}
    assert {assigned[x] for x in started} == {SenderId("mbx-a")}
    (note,) = [a for a in kit.storage.list_activities(WS) if a.kind is ActivityKind.SENDER_REMOVED]
    assert note.campaign_id == "c"
    assert f"{len(waiting)} lead(s) moved" in note.detail
    assert f"{len(started)} kept it" in note.detail
    run_for(kit, 21)
    for message in kit.email.sent.values():
        if message.lead_id in waiting:
            assert message.sender_id == "mbx-b"
        if message.lead_id in started:
            assert message.from_address == "a@acme.test"
    assert {m.lead_id for m in kit.email.sent.values() if m.step == 3} >= started | waiting
    _assert_caps_and_spacing(
        kit, {m.id: m for m in kit.storage.get_campaign(WS, CampaignId("c")).email_identities}
    )


def test_removing_a_sender_with_move_started_moves_its_started_threads_too() -> None:
    kit, started, waiting = _half_sent(move_started=True)
    assigned = senders_of(kit, "c")
    assert {assigned[x] for x in started | waiting} == {SenderId("mbx-b")}
    pending = [
        s
        for s in kit.storage.list_sends(WS, CampaignId("c"))
        if not s.status.is_final and s.lead_id in started
    ]
    assert pending
    assert {s.sender_id for s in pending} == {SenderId("mbx-b")}


def test_removing_an_unknown_or_already_removed_sender_is_refused_by_name() -> None:
    kit, _, _ = _half_sent(move_started=False)
    with pytest.raises(UnknownSender, match="'mbx-z'"):
        kit.service.remove_sender(WS, "c", "mbx-z")
    with pytest.raises(UnknownSender, match="'mbx-a'"):
        kit.service.remove_sender(WS, "c", "mbx-a")


def test_removing_the_last_sender_that_leads_still_need_is_refused_and_changes_nothing() -> None:
    kit, _, _ = _half_sent(move_started=False)
    before = kit.storage.get_campaign(WS, CampaignId("c"))
    with pytest.raises(LastSender, match=r"'mbx-b'.*still need"):
        kit.service.remove_sender(WS, "c", "mbx-b")
    assert kit.storage.get_campaign(WS, CampaignId("c")) == before


def test_removing_a_sender_before_approval_moves_all_its_leads_and_approval_plans_them_there() -> (
    None
):
    kit = make_kit(credits=100_000)
    create(kit, "d", [f"r{i}" for i in range(6)], MAILBOXES[:2])
    kit.service.remove_sender(WS, "d", "mbx-s")
    assert set(senders_of(kit, "d").values()) == {SenderId("mbx-m")}
    kit.service.approve(WS, "d")
    assert {s.sender_id for s in kit.storage.list_sends(WS, CampaignId("d"))} == {"mbx-m"}


def test_a_linkedin_pool_sends_each_lead_s_requests_and_messages_from_its_one_account() -> None:
    kit = make_kit(credits=100_000)
    accounts = (
        LinkedInIdentity(id="li-a", weekly_connect_cap=20),
        LinkedInIdentity(id="li-b", weekly_connect_cap=60),
    )
    kit.service.create_campaign(
        WS,
        name="li",
        brief="We cut cloud bills by 30%.",
        shape="linkedin-note",
        leads=[lead(f"kay{i}", email=False, linkedin=True) for i in range(8)],
        linkedin_identities=accounts,
        campaign_id="li",
    )
    assigned = senders_of(kit, "li")
    assert Counter(assigned.values()) == {SenderId("li-a"): 2, SenderId("li-b"): 6}
    kit.service.approve(WS, "li")
    run_for(kit, 5)
    assert kit.linkedin.sent
    for action in kit.linkedin.sent.values():
        assert action.sender_id == assigned[action.lead_id]
