"""Out-of-range input stops at the service's door: a typed error, and nothing charged or stored."""

from __future__ import annotations

from typing import Any

import pytest

from starlight_sequences import shapes
from starlight_sequences.campaigns import CampaignSettings, EnrolmentStatus
from starlight_sequences.errors import InvalidSettings, InvalidShape
from starlight_sequences.events import InboundEvent
from starlight_sequences.shapes import MAX_WAIT_DAYS, SendShape
from tests.service_kit import MAILBOX, WS, lead, make_kit


def long_wait_shape(wait: int = 10**9) -> dict[str, Any]:
    """The email sequence with a follow-up ``wait`` business days after the first email."""
    data = shapes.get("email-sequence").to_dict()
    data["key"] = "slow-sequence"
    data["steps"][1]["wait_days"] = wait
    return data


def test_estimating_a_shape_whose_wait_is_past_the_maximum_is_a_shape_error() -> None:
    kit = make_kit()
    with pytest.raises(InvalidShape) as caught:
        kit.service.estimate(SendShape.from_dict(long_wait_shape()), [lead("ann")])
    assert (caught.value.shape, caught.value.step) == ("slow-sequence", 2)
    assert "wait_days" in caught.value.reason


def test_creating_a_campaign_whose_wait_is_past_the_maximum_charges_and_stores_nothing() -> None:
    kit = make_kit(credits=100)
    balance, journal = kit.ledger.balance(WS), kit.ledger.movements(WS)
    with pytest.raises(InvalidShape, match="maximum of 260 business days"):
        kit.service.create_campaign(
            WS,
            name="Slow",
            brief="We cut cloud bills by 30% for data teams.",
            shape=SendShape.from_dict(long_wait_shape()),
            leads=[lead("ann"), lead("bob")],
            email_identity=MAILBOX,
        )
    assert kit.ledger.balance(WS) == balance
    assert kit.ledger.movements(WS) == journal
    assert kit.drafter.requests == []
    assert kit.service.campaigns(WS) == []


def test_a_campaign_with_the_longest_wait_can_be_created_approved_and_planned() -> None:
    kit = make_kit()
    report = kit.service.create_campaign(
        WS,
        name="Yearly",
        brief="We cut cloud bills by 30% for data teams.",
        shape=SendShape.from_dict(long_wait_shape(MAX_WAIT_DAYS)),
        leads=[lead("ann")],
        email_identity=MAILBOX,
    )
    kit.service.approve(WS, report.campaign.id)
    (recipient,) = kit.service.preview(WS, report.campaign.id).recipients
    first, follow_up = (step.due_utc for step in recipient.steps[:2])
    assert first is not None
    assert follow_up is not None
    # 260 US business days: a year, give or take the holidays
    assert 360 <= (follow_up - first).days <= 380


def test_an_event_reported_with_plain_strings_stops_the_lead_like_a_typed_one() -> None:
    kit = make_kit()
    report = kit.service.create_campaign(
        WS,
        name="Q4",
        brief="We cut cloud bills by 30% for data teams.",
        shape="email-sequence",
        leads=[lead("ann")],
        email_identity=MAILBOX,
    )
    kit.service.approve(WS, report.campaign.id)
    event = InboundEvent(kind="reply", lead_id="ann", at=kit.clock.now())
    (changed,) = kit.service.report_event(WS, event)
    assert changed.status is EnrolmentStatus.REPLIED


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("connection_timeout_days", 10**9),
        ("connection_timeout_days", 0),
        ("out_of_office_days", 261),
        ("max_attempts", 21),
        ("max_attempts", True),
    ],
)
def test_campaign_settings_refuse_counts_outside_their_documented_range(
    field: str, value: object
) -> None:
    with pytest.raises(InvalidSettings, match=field):
        CampaignSettings(**{field: value})  # type: ignore[arg-type]
