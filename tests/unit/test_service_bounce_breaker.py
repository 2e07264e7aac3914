"""The bounce breaker in the service: hard bounces hold the mailbox that sent them, its sends
wait (not failed, not charged) while other mailboxes send, and the host resumes it."""

from __future__ import annotations

import datetime as dt

import attrs
import pytest

from starlight_sequences.bounce_breaker import BounceBreaker
from starlight_sequences.campaigns import EmailIdentity, SendStatus
from starlight_sequences.errors import SenderNotHeld
from starlight_sequences.events import ActivityKind, ActivityReason, EventKind, InboundEvent
from starlight_sequences.ids import CampaignId, LeadId, SenderId
from tests.service_kit import MAILBOX, WS, Kit, lead, make_kit
from tests.unit._inbound_messages import delivery_report

HELD = CampaignId("held")
OTHER = CampaignId("other")
MBX_1 = attrs.evolve(MAILBOX, min_spacing=dt.timedelta(0))
MBX_2 = EmailIdentity(id=SenderId("mbx-2"), address="bea@acme.test", min_spacing=dt.timedelta(0))


def launched(n: int = 20, *, other: int = 0, mailbox: EmailIdentity = MBX_1) -> Kit:
    """Three-email campaigns whose first emails went out (Tuesday 10:00 in New York): ``n``
    leads from ``mailbox``, and ``other`` leads from a second mailbox."""
    kit = make_kit()
    for campaign_id, count, identity, prefix in (
        (HELD, n, mailbox, "a"),
        (OTHER, other, MBX_2, "b"),
    ):
        if not count:
            continue
        kit.service.create_campaign(
            WS,
            name=campaign_id,
            brief="b",
            shape="email-sequence",
            leads=[lead(f"{prefix}{i:02}") for i in range(count)],
            email_identity=identity,
            campaign_id=campaign_id,
        )
        kit.service.approve(WS, campaign_id)
    kit.clock.advance(dt.timedelta(days=1, hours=7))
    kit.service.dispatch_due(worker_id="w", limit=500)
    return kit


def bounce(kit: Kit, lead_id: str) -> None:
    kit.service.report_event(
        WS,
        InboundEvent(
            kind=EventKind.BOUNCE, lead_id=LeadId(lead_id), at=kit.clock.now(), key=f"b-{lead_id}"
        ),
    )


def run_days(kit: Kit, days: int) -> None:
    end = kit.clock.now() + dt.timedelta(days=days)
    while kit.clock.now() < end:
        kit.service.dispatch_due(worker_id="w", limit=500)
        kit.clock.advance(dt.timedelta(minutes=30))


def sent(kit: Kit, campaign_id: CampaignId) -> int:
    return sum(s.status is SendStatus.SENT for s in kit.storage.list_sends(WS, campaign_id))


def test_one_hard_bounce_in_twenty_sends_does_not_hold_the_mailbox() -> None:
    kit = launched(20)
    assert sent(kit, HELD) == 20
    bounce(kit, "a00")
    assert kit.service.sender_holds(WS) == ()


def test_two_hard_bounces_in_twenty_sends_hold_it_while_another_mailbox_sends_on() -> None:
    kit = launched(20, other=5)
    bounce(kit, "a00")
    bounce(kit, "a01")

    (hold,) = kit.service.sender_holds(WS)
    assert (hold.sender_id, hold.sends, hold.hard_bounces) == ("mbx-1", 20, 2)
    reserved = kit.ledger.balance(WS).reserved
    run_days(kit, 10)

    assert sent(kit, HELD) == 20  # nothing more from the held mailbox
    assert sent(kit, OTHER) == 15  # every step of the other mailbox's five leads
    waiting = [s for s in kit.storage.list_sends(WS, HELD) if not s.status.is_final]
    assert len(waiting) == 18 * 2
    assert all(s.status in (SendStatus.SCHEDULED, SendStatus.PENDING) for s in waiting)
    assert not any(s.status is SendStatus.FAILED for s in kit.storage.list_sends(WS, HELD))
    # Only the other mailbox's sends were charged: the held ones keep their reservations.
    assert kit.ledger.balance(WS).reserved == reserved - 10 * 2


def test_resuming_the_mailbox_lets_its_sends_go_out_again() -> None:
    kit = launched(20)
    bounce(kit, "a00")
    bounce(kit, "a01")
    run_days(kit, 6)
    assert sent(kit, HELD) == 20

    resumed = kit.service.resume_sender(WS, "mbx-1")
    run_days(kit, 14)

    assert resumed.resumed_at == kit.storage.get_sender_hold(WS, SenderId("mbx-1")).resumed_at  # type: ignore[union-attr]
    assert kit.service.sender_holds(WS) == ()
    assert sent(kit, HELD) == 20 + 18 * 2


def test_a_resumed_mailboxs_window_starts_afresh() -> None:
    kit = launched(20)
    bounce(kit, "a00")
    bounce(kit, "a01")
    kit.service.resume_sender(WS, "mbx-1")
    bounce(kit, "a02")  # its send was before the resume: the new window is empty
    assert kit.service.sender_holds(WS) == ()


def test_resuming_a_mailbox_that_is_not_held_is_a_typed_error() -> None:
    kit = launched(1)
    with pytest.raises(SenderNotHeld, match="'mbx-1' is not held"):
        kit.service.resume_sender(WS, "mbx-1")


def test_the_hold_and_the_resume_are_in_the_journal_with_their_reason() -> None:
    kit = launched(20)
    heard = []
    kit.service.subscribe(lambda workspace, activity: heard.append(activity))
    bounce(kit, "a00")
    bounce(kit, "a01")
    kit.service.resume_sender(WS, "mbx-1")

    page = kit.service.activities_since(WS, None, limit=1000)
    kinds = [e.activity for e in page.entries if e.activity.kind.value.startswith("sender_")]
    assert [a.kind for a in kinds] == [ActivityKind.SENDER_HELD, ActivityKind.SENDER_RESUMED]
    assert all(a.reason == ActivityReason.BOUNCE_RATE for a in kinds)
    assert kinds[0].detail == (
        "sender mbx-1 held: 2 hard bounces in its last 20 sends (10.0%, above 5.0%)"
    )
    assert [a.kind for a in heard if a.kind.value.startswith("sender_")] == [
        ActivityKind.SENDER_HELD,
        ActivityKind.SENDER_RESUMED,
    ]


def test_status_says_which_sender_is_held_why_and_since_when() -> None:
    kit = launched(20, other=2)
    bounce(kit, "a00")
    bounce(kit, "a01")

    (held,) = kit.service.status(WS, HELD).held_senders
    assert held.sender_id == "mbx-1"
    assert held.reason == "2 hard bounces in its last 20 sends (10.0%, above 5.0%)"
    assert held.held_at == kit.clock.now()
    assert kit.service.status(WS, OTHER).held_senders == ()


def test_soft_bounces_never_hold_the_mailbox() -> None:
    kit = launched(20)
    block = """Final-Recipient: rfc822; {address}
Action: delayed
Status: 4.2.2"""
    for i in range(20):
        send = next(s for s in kit.storage.list_sends(WS, HELD) if s.lead_id == f"a{i:02}")
        raw = delivery_report(
            block.format(address=f"a{i:02}@a{i:02}.example.com"), original=send.receipt
        ).replace(b"<dsn.1@", f"<dsn.{i}@".encode())
        kit.service.ingest_email(WS, raw)
    assert kit.service.sender_holds(WS) == ()


def test_hard_bounces_from_inbound_mail_hold_the_mailbox() -> None:
    kit = launched(20)
    block = """Final-Recipient: rfc822; {address}
Action: failed
Status: 5.1.1"""
    for i in range(2):
        send = next(s for s in kit.storage.list_sends(WS, HELD) if s.lead_id == f"a{i:02}")
        raw = delivery_report(
            block.format(address=f"a{i:02}@a{i:02}.example.com"), original=send.receipt
        ).replace(b"<dsn.1@", f"<dsn.{i}@".encode())
        kit.service.ingest_email(WS, raw)
    assert [h.sender_id for h in kit.service.sender_holds(WS)] == ["mbx-1"]


def test_a_mailbox_with_its_breaker_off_is_never_held() -> None:
    kit = launched(20, mailbox=attrs.evolve(MBX_1, bounce_breaker=BounceBreaker(enabled=False)))
    for i in range(5):
        bounce(kit, f"a{i:02}")
    assert kit.service.sender_holds(WS) == ()


def test_a_repeated_bounce_event_holds_nothing_twice() -> None:
    kit = launched(20)
    bounce(kit, "a00")
    bounce(kit, "a01")
    bounce(kit, "a01")
    held = [a for a in kit.storage.list_activities(WS) if a.kind is ActivityKind.SENDER_HELD]
    assert len(held) == 1
