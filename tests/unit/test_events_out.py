"""Events out of the service: each kind a CRM needs is journalled by the use case it reports,
with a machine-readable reason, and handed out by ``activities_since``; subscribed callbacks
hear of each activity after its commit and never break the use case.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging

import attrs
import pytest

from starlight_sequences.async_service import AsyncCampaignService
from starlight_sequences.campaigns import CampaignSettings, EnrolmentStatus, StopScope
from starlight_sequences.errors import InvalidInput, StorageError
from starlight_sequences.events import (
    Activity,
    ActivityKind,
    ActivityReason,
    EventKind,
    InboundEvent,
)
from starlight_sequences.ids import CampaignId, LeadId
from starlight_sequences.ports.senders import SendFailure
from starlight_sequences.ports.storage import Changes
from tests.service_kit import LINKEDIN, MAILBOX, WS, Kit, lead, make_kit

CID = CampaignId("c1")


def launch(kit: Kit, leads: list, shape: str = "email-sequence", **settings: object) -> None:  # type: ignore[type-arg]
    kit.service.create_campaign(
        WS,
        name="Q4",
        brief="We cut cloud bills by 30%.",
        shape=shape,
        leads=leads,
        email_identity=MAILBOX,
        linkedin_identity=LINKEDIN,
        campaign_id=CID,
        settings=CampaignSettings(**settings),  # type: ignore[arg-type]
    )
    kit.service.approve(WS, CID)


def run_for(kit: Kit, days: float, step: dt.timedelta = dt.timedelta(minutes=30)) -> None:
    end = kit.clock.now() + dt.timedelta(days=days)
    while kit.clock.now() < end:
        kit.service.dispatch_due(worker_id="w1")
        kit.clock.advance(step)


def journal(kit: Kit) -> list[Activity]:
    """Everything the pull API hands out, page by small page."""
    activities: list[Activity] = []
    cursor = None
    while True:
        page = kit.service.activities_since(WS, cursor, limit=7)
        activities += [entry.activity for entry in page.entries]
        if not page.more:
            return activities
        cursor = page.cursor


def of_lead(kit: Kit, lead_id: str) -> list[tuple[str, int | None, str]]:
    """(kind, step, reason) of one lead's CRM-relevant activities, in journal order."""
    crm = {
        ActivityKind.SENT,
        ActivityKind.FAILED,
        ActivityKind.SKIPPED,
        ActivityKind.STOPPED,
        ActivityKind.ACCEPTED,
        ActivityKind.COMPLETED,
    }
    return [
        (a.kind.value, a.step, a.reason)
        for a in journal(kit)
        if a.lead_id == lead_id and a.kind in crm
    ]


def report(kit: Kit, kind: EventKind, lead_id: str, **fields: object) -> None:
    kit.service.report_event(
        WS,
        InboundEvent(kind=kind, lead_id=LeadId(lead_id), at=kit.clock.now(), **fields),  # type: ignore[arg-type]
    )


# --- each kind from its use case -------------------------------------------------------------


def test_every_sent_step_is_handed_out_then_the_lead_and_the_campaign_complete() -> None:
    kit = make_kit()
    launch(kit, [lead("ann")])
    run_for(kit, 21)
    assert of_lead(kit, "ann") == [
        ("sent", 1, ""),
        ("sent", 2, ""),
        ("sent", 3, ""),
        ("completed", None, "every_step_sent"),
    ]
    last = journal(kit)[-1]
    assert (last.kind, last.campaign_id, last.lead_id, last.reason) == (
        ActivityKind.COMPLETED,
        CID,
        None,
        ActivityReason.EVERY_LEAD_FINISHED,
    )


def test_a_sent_activity_carries_the_campaign_the_step_and_when() -> None:
    kit = make_kit()
    launch(kit, [lead("ann")])
    run_for(kit, 1)
    [sent] = [a for a in journal(kit) if a.kind is ActivityKind.SENT]
    assert sent.campaign_id == CID
    assert sent.lead_id == "ann"
    assert sent.step == 1
    assert sent.at.utcoffset() == dt.timedelta(0)
    assert sent.detail.startswith("Email sent (")


@pytest.mark.parametrize(
    ("kind", "status", "reason"),
    [
        (EventKind.REPLY, EnrolmentStatus.REPLIED, ActivityReason.REPLY),
        (EventKind.MEETING_BOOKED, EnrolmentStatus.MEETING_BOOKED, ActivityReason.MEETING_BOOKED),
        (EventKind.BOUNCE, EnrolmentStatus.BOUNCED, ActivityReason.BOUNCE),
        (EventKind.UNSUBSCRIBE, EnrolmentStatus.UNSUBSCRIBED, ActivityReason.UNSUBSCRIBE),
    ],
)
def test_an_event_that_stops_a_lead_hands_out_stopped_with_its_reason(
    kind: EventKind, status: EnrolmentStatus, reason: ActivityReason
) -> None:
    kit = make_kit()
    launch(kit, [lead("ann"), lead("bob")])
    run_for(kit, 1)
    report(kit, kind, "ann", detail="from the host")
    assert kit.storage.get_enrolment(WS, CID, LeadId("ann")).status is status
    assert of_lead(kit, "ann")[-1] == ("stopped", None, reason.value)
    event, stopped = [a for a in journal(kit) if a.lead_id == "ann"][-2:]
    assert event.kind is ActivityKind.EVENT  # the report first, then what it did
    assert stopped.campaign_id == CID
    assert of_lead(kit, "bob") == [("sent", 1, "")]


def test_a_repeated_event_hands_out_nothing_more() -> None:
    kit = make_kit()
    launch(kit, [lead("ann")])
    event = InboundEvent(kind=EventKind.REPLY, lead_id=LeadId("ann"), at=kit.clock.now(), key="m1")
    kit.service.report_event(WS, event)
    before = journal(kit)
    kit.service.report_event(WS, event)
    assert journal(kit) == before


def test_a_colleagues_reply_stops_the_lead_with_its_own_reason() -> None:
    kit = make_kit()
    colleague = attrs.evolve(lead("zoe"), email="zoe@ann.example.com")
    launch(kit, [lead("ann"), colleague], stop_company_on_reply=True)
    report(kit, EventKind.REPLY, "ann")
    assert of_lead(kit, "zoe") == [("stopped", None, "colleague_replied")]
    assert of_lead(kit, "ann") == [("stopped", None, "reply")]


def test_a_reply_with_workspace_scope_stops_the_lead_in_every_campaign() -> None:
    kit = make_kit()
    launch(kit, [lead("ann")], stop_scope=StopScope.WORKSPACE, allow_overlap=True)
    kit.service.create_campaign(
        WS,
        name="y",
        brief="b",
        shape="cold-email",
        leads=[lead("ann")],
        email_identity=MAILBOX,
        campaign_id=CampaignId("c2"),
        settings=CampaignSettings(allow_overlap=True),
    )
    kit.service.report_event(
        WS,
        InboundEvent(
            kind=EventKind.REPLY, lead_id=LeadId("ann"), campaign_id=CID, at=kit.clock.now()
        ),
    )
    stopped = [a for a in journal(kit) if a.kind is ActivityKind.STOPPED]
    assert {(a.campaign_id, a.reason) for a in stopped} == {(CID, "reply"), ("c2", "reply")}


def test_an_accepted_connection_is_handed_out() -> None:
    kit = make_kit()
    launch(kit, [lead("bob", email=False, linkedin=True)], shape="email-linkedin")
    run_for(kit, 2)
    report(kit, EventKind.CONNECTION_ACCEPTED, "bob")
    report(kit, EventKind.CONNECTION_ACCEPTED, "bob", key="again")  # already accepted
    assert of_lead(kit, "bob") == [("sent", 2, ""), ("accepted", None, "")]


def test_no_acceptance_in_time_skips_the_gated_step_with_its_reason_and_completes_the_lead() -> (
    None
):
    kit = make_kit()
    launch(kit, [lead("bob", email=False, linkedin=True)], shape="email-linkedin")
    run_for(kit, 25, step=dt.timedelta(hours=2))
    assert of_lead(kit, "bob") == [
        ("sent", 2, ""),
        ("skipped", 3, "connection_timeout"),
        ("completed", None, "connection_timeout"),
    ]


def test_a_declined_connection_skips_the_gated_step_and_completes_the_lead() -> None:
    kit = make_kit()
    launch(kit, [lead("bob", email=False, linkedin=True)], shape="email-linkedin")
    run_for(kit, 2)
    report(kit, EventKind.CONNECTION_DECLINED, "bob")
    assert of_lead(kit, "bob") == [
        ("sent", 2, ""),
        ("skipped", 3, "connection_declined"),
        ("completed", None, "connection_declined"),
    ]


def test_a_permanent_failure_is_handed_out_as_failed() -> None:
    kit = make_kit()
    launch(kit, [lead("ann")])
    kit.email.fail_next = [SendFailure(permanent=True, reason="550 no such user")]
    run_for(kit, 1)
    assert of_lead(kit, "ann") == [("failed", 1, "send_failed")]
    [failed] = [a for a in journal(kit) if a.kind is ActivityKind.FAILED]
    assert "550 no such user" in failed.detail


def test_cancelling_hands_out_the_cancellation_and_a_stop_for_each_unfinished_lead() -> None:
    kit = make_kit()
    launch(kit, [lead("ann"), lead("bob")])
    run_for(kit, 1)
    report(kit, EventKind.REPLY, "bob")
    kit.service.cancel_campaign(WS, CID)
    assert of_lead(kit, "ann")[-1] == ("stopped", None, "campaign_cancelled")
    assert of_lead(kit, "bob")[-1] == ("stopped", None, "reply")  # already stopped
    cancelled = [a for a in journal(kit) if a.kind is ActivityKind.CANCELLED]
    assert [(a.campaign_id, a.lead_id) for a in cancelled] == [(CID, None)]


def test_a_bad_cursor_is_a_typed_error_naming_it() -> None:
    kit = make_kit()
    with pytest.raises(InvalidInput, match="'nonsense'"):
        kit.service.activities_since(WS, "nonsense")


def test_another_workspaces_activities_are_not_handed_out() -> None:
    kit = make_kit()
    launch(kit, [lead("ann")])
    run_for(kit, 1)
    assert kit.service.activities_since("globex").entries == ()


# --- callbacks -------------------------------------------------------------------------------


def test_a_subscribed_callback_hears_every_activity_in_journal_order() -> None:
    kit = make_kit()
    heard: list[tuple[str, Activity]] = []
    kit.service.subscribe(lambda workspace, activity: heard.append((workspace, activity)))
    launch(
        kit,
        [lead("ann"), lead("cy"), lead("bob", email=False, linkedin=True)],
        shape="email-linkedin",
    )
    report(kit, EventKind.REPLY, "ann")
    run_for(kit, 2)
    report(kit, EventKind.CONNECTION_ACCEPTED, "bob")
    run_for(kit, 20)
    assert heard == [(WS, a) for a in journal(kit)]
    assert {a.kind for _, a in heard} >= {
        ActivityKind.SENT,
        ActivityKind.ACCEPTED,
        ActivityKind.STOPPED,
        ActivityKind.COMPLETED,
    }


def test_a_raising_callback_is_logged_and_breaks_neither_the_use_case_nor_other_callbacks(
    caplog: pytest.LogCaptureFixture,
) -> None:
    kit = make_kit()
    launch(kit, [lead("ann"), lead("bob")])

    def broken(workspace: str, activity: Activity) -> None:
        raise RuntimeError("CRM is down")

    heard: list[Activity] = []
    kit.service.subscribe(broken)
    kit.service.subscribe(lambda workspace, activity: heard.append(activity))
    with caplog.at_level(logging.ERROR, logger="starlight_sequences.events"):
        changed = kit.service.report_event(
            WS, InboundEvent(kind=EventKind.REPLY, lead_id=LeadId("ann"), at=kit.clock.now())
        )
    assert [e.status for e in changed] == [EnrolmentStatus.REPLIED]
    assert kit.storage.get_enrolment(WS, CID, LeadId("ann")).status is EnrolmentStatus.REPLIED
    assert [a.kind for a in heard] == [ActivityKind.EVENT, ActivityKind.STOPPED]
    failures = [r for r in caplog.records if r.name == "starlight_sequences.events"]
    assert len(failures) == 2  # one per activity
    assert failures[0].exc_info is not None
    assert "CRM is down" in str(failures[0].exc_info[1])


def test_a_raising_callback_does_not_break_a_dispatch_pass() -> None:
    kit = make_kit()
    launch(kit, [lead("ann"), lead("bob")])
    kit.service.subscribe(lambda workspace, activity: 1 / 0)
    run_for(kit, 1)
    assert [a.kind for a in journal(kit)].count(ActivityKind.SENT) == 2


def test_a_cancelled_subscription_hears_nothing_more() -> None:
    kit = make_kit()
    heard: list[Activity] = []
    with kit.service.subscribe(lambda workspace, activity: heard.append(activity)) as sub:
        assert sub.active
        launch(kit, [lead("ann")])
    assert not sub.active
    count = len(heard)
    assert count > 0
    run_for(kit, 1)
    assert len(heard) == count
    sub.cancel()  # twice is fine


class _FailingCommits:
    """The in-memory storage, but every commit fails before it writes."""

    def __init__(self, kit: Kit) -> None:
        self._inner = kit.storage

    def commit(self, workspace_id: str, changes: Changes) -> bool:
        raise StorageError("disk full")

    def __getattr__(self, name: str) -> object:
        return getattr(self._inner, name)


def test_a_callback_is_not_called_when_the_commit_failed() -> None:
    kit = make_kit()
    launch(kit, [lead("ann")])
    heard: list[Activity] = []
    kit.service.subscribe(lambda workspace, activity: heard.append(activity))
    kit.service.storage = _FailingCommits(kit)  # type: ignore[assignment]
    with pytest.raises(StorageError):
        report(kit, EventKind.REPLY, "ann")
    assert heard == []
    kit.service.storage = kit.storage
    assert [a for a in journal(kit) if a.kind is ActivityKind.STOPPED] == []


# --- the async twin --------------------------------------------------------------------------


def test_the_async_service_pulls_and_subscribes_like_the_service() -> None:
    kit = make_kit()
    launch(kit, [lead("ann")])

    async def scenario() -> tuple[list[Activity], list[Activity]]:
        async with AsyncCampaignService(kit.service) as service:
            heard: list[Activity] = []
            subscription = await service.subscribe(lambda ws, activity: heard.append(activity))
            await service.report_event(
                WS, InboundEvent(kind=EventKind.REPLY, lead_id=LeadId("ann"), at=kit.clock.now())
            )
            subscription.cancel()
            page = await service.activities_since(WS, None, limit=1000)
            return heard, [entry.activity for entry in page.entries]

    heard, pulled = asyncio.run(scenario())
    # the reply, the lead it stopped, and the campaign it completed (its only lead)
    assert [a.kind for a in heard] == [
        ActivityKind.EVENT,
        ActivityKind.STOPPED,
        ActivityKind.COMPLETED,
    ]
    assert pulled[-3:] == heard
