"""The send log (``CampaignService.sends``) and the timezone the preview says it assumed."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import pytest

from starlight_sequences.campaigns import CampaignSettings, SendStatus
from starlight_sequences.errors import CampaignNotFound, EnrolmentNotFound
from starlight_sequences.ids import CampaignId, LeadId
from starlight_sequences.leads import Lead
from starlight_sequences.reports import CreationReport
from tests.service_kit import MAILBOX, WS, Kit, lead, make_kit

CID = CampaignId("c1")


def _create(
    kit: Kit, leads: Sequence[Lead], settings: CampaignSettings | None = None
) -> CreationReport:
    return kit.service.create_campaign(
        WS,
        name="Q1",
        brief="We cut cloud bills.",
        shape="email-sequence",
        leads=leads,
        email_identity=MAILBOX,
        campaign_id=CID,
        settings=settings,
    )


def test_the_send_log_is_empty_before_approval_and_lists_every_step_after() -> None:
    kit = make_kit()
    _create(kit, [lead("ann"), lead("dov", country="IL", timezone="Asia/Jerusalem")])
    assert kit.service.sends(WS, CID) == []
    kit.service.approve(WS, CID)
    log = kit.service.sends(WS, CID)
    assert [(r.lead_id, r.step) for r in log] == [
        ("ann", 1),
        ("ann", 2),
        ("ann", 3),
        ("dov", 1),
        ("dov", 2),
        ("dov", 3),
    ]
    assert all(r.sent_utc is None and r.sent_local is None for r in log)
    first = log[0]
    assert first.status is SendStatus.SCHEDULED
    assert first.sender_id == MAILBOX.id
    assert first.timezone == "America/New_York"
    assert first.due_local == first.due_utc
    assert str(first.due_local.tzinfo) == "America/New_York"
    assert first.due_utc.tzinfo is dt.UTC


def test_the_send_log_gives_the_actual_send_time_in_utc_and_local_time() -> None:
    kit = make_kit()
    _create(kit, [lead("dov", country="IL", timezone="Asia/Jerusalem")])
    kit.service.approve(WS, CID)
    first_due = kit.service.sends(WS, CID)[0].due_utc
    kit.clock.set(first_due + dt.timedelta(minutes=7))  # the worker comes by late
    assert kit.service.dispatch_due(worker_id="w").sent == 1
    sent = kit.service.sends(WS, CID, "dov")[0]
    assert sent.status is SendStatus.SENT
    assert sent.sent_utc == first_due + dt.timedelta(minutes=7)
    assert sent.sent_utc is not None
    assert sent.sent_utc.tzinfo is dt.UTC
    assert sent.sent_local == sent.sent_utc
    assert str(sent.sent_local.tzinfo) == "Asia/Jerusalem"
    assert sent.attempts == 1
    assert sent.receipt  # the sender's message id
    # The next step is re-timed from the actual send and still lists its forecast.
    second = kit.service.sends(WS, CID, "dov")[1]
    assert second.forecast_utc.tzinfo is dt.UTC
    assert second.sent_utc is None


def test_the_send_log_of_an_unknown_campaign_or_lead_is_an_error() -> None:
    kit = make_kit()
    _create(kit, [lead("ann")])
    with pytest.raises(CampaignNotFound):
        kit.service.sends(WS, "nope")
    with pytest.raises(EnrolmentNotFound):
        kit.service.sends(WS, CID, "nobody")


def test_the_preview_names_the_timezone_it_assumed_and_why() -> None:
    kit = make_kit()
    leads = [
        Lead(id=LeadId("lukas"), first_name="Lukas", email="l@fernweh.example.com", country="DE"),
        Lead(id=LeadId("wei"), first_name="Wei", email="w@lotus.example.com", country="CN"),
        Lead(id=LeadId("ana"), first_name="Ana", email="a@ipe.example.com", country="BR"),
        lead("ann"),
    ]
    report = _create(kit, leads, settings=CampaignSettings(default_timezone=None))
    assert [e.lead_id for e in report.excluded] == ["ana"]
    assert "no timezone of BR is safe to assume" in report.excluded[0].message
    recipients = {r.lead.id: r for r in kit.service.preview(WS, CID).recipients}
    assert recipients[LeadId("lukas")].assumed_timezone == "Europe/Berlin"
    assert "Europe/Busingen" in recipients[LeadId("lukas")].timezone_reason
    assert recipients[LeadId("wei")].assumed_timezone == "Asia/Shanghai"
    assert "one legal time" in recipients[LeadId("wei")].timezone_reason
    # Ann gave her own zone: nothing was assumed.
    assert recipients[LeadId("ann")].assumed_timezone is None
    assert recipients[LeadId("ann")].timezone_reason == ""
    due = recipients[LeadId("lukas")].steps[0].due_local
    assert due is not None
    assert str(due.tzinfo) == "Europe/Berlin"
