"""The fallback branch in the pure core: the shape rule, the cadence per lead, the estimate of
the dearer path, and the forked timeline."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest
from hypothesis import given

from starlight_sequences.cadence import Cadence, fallback_dropped, resolve_cadence
from starlight_sequences.channels import Action
from starlight_sequences.credits import (
    PriceTable,
    estimate_credits,
    fallback_borrow,
    send_reservations,
)
from starlight_sequences.errors import InvalidShape
from starlight_sequences.ids import LeadId
from starlight_sequences.leads import Lead
from starlight_sequences.shapes import SendShape, Step, WaitAnchor
from starlight_sequences.timeline import render_svg, render_text, timeline_of_shape
from tests.unit._shape_strategies import leads

EMAIL, CONNECT, MESSAGE = Action.EMAIL, Action.LINKEDIN_CONNECT, Action.LINKEDIN_MESSAGE
NOT_ACCEPTED = WaitAnchor.CONNECTION_NOT_ACCEPTED


def step(number: int, action: Action, **fields: object) -> Step:
    return Step(number=number, action=action, **fields)  # type: ignore[arg-type]


def fallback(number: int, action: Action = EMAIL, wait_days: int = 2) -> Step:
    return step(number, action, wait_days=wait_days, counts_from=NOT_ACCEPTED, guidance="g")


def shape(*steps: Step) -> SendShape:
    return SendShape(key="fb", name="Fallback", description="", steps=steps)


BASE = (
    step(1, EMAIL),
    step(2, CONNECT, wait_days=2),
    step(3, MESSAGE, wait_days=1, counts_from=WaitAnchor.CONNECTION_ACCEPTED),
)
SHAPE = shape(*BASE, fallback(4))


def rejected(*steps: Step) -> InvalidShape:
    with pytest.raises(InvalidShape) as caught:
        shape(*steps)
    return caught.value


def test_a_fallback_email_after_the_request_and_its_messages_is_a_valid_last_step() -> None:
    assert SHAPE.steps[-1].is_fallback
    assert not any(s.is_fallback for s in BASE)


def test_a_fallback_that_is_not_an_email_is_rejected_naming_the_step() -> None:
    error = rejected(*BASE, fallback(4, MESSAGE))
    assert error.step == 4
    assert "must be an email" in error.reason


def test_a_fallback_without_a_connection_request_is_rejected() -> None:
    error = rejected(step(1, EMAIL), fallback(2))
    assert error.step == 2
    assert "linkedin_connect before it" in error.reason


def test_a_fallback_that_is_not_the_last_step_is_rejected() -> None:
    error = rejected(*BASE, fallback(4), step(5, EMAIL))
    assert error.step == 4
    assert "must be the last step" in error.reason


def test_a_fallback_right_after_the_request_with_no_message_is_rejected() -> None:
    error = rejected(step(1, EMAIL), step(2, CONNECT), fallback(3))
    assert error.step == 3
    assert "at least one" in error.reason


def test_a_fallback_with_an_email_between_it_and_the_request_is_rejected() -> None:
    error = rejected(*BASE, step(4, EMAIL), fallback(5))
    assert error.step == 5


def test_a_fallback_survives_the_dict_and_json_round_trip() -> None:
    data = json.loads(json.dumps(SHAPE.to_dict()))
    assert data["steps"][3]["counts_from"] == "connection_not_accepted"
    assert SendShape.from_dict(data) == SHAPE


def person(lead_id: str, *, email: bool, linkedin: bool, connected: bool = False) -> Lead:
    return Lead(
        id=LeadId(lead_id),
        email=f"{lead_id}@example.com" if email else None,
        linkedin_url=f"https://www.linkedin.com/in/{lead_id}-doe" if linkedin else None,
        linkedin_connected=connected,
    )


def test_the_fallback_is_kept_only_for_a_lead_with_an_email_that_gets_the_request() -> None:
    both = resolve_cadence(SHAPE, person("ann", email=True, linkedin=True))
    assert isinstance(both, Cadence)
    assert [s.number for s in both.steps] == [1, 2, 3, 4]
    assert both.steps[-1].is_fallback
    assert not both.steps[-1].gated_on_acceptance
    assert fallback_dropped(SHAPE, person("ann", email=True, linkedin=True)) == ""
    cases = {
        "no email address": person("bob", email=False, linkedin=True),
        "no LinkedIn profile": person("cyd", email=True, linkedin=False),
        "already connected": person("dan", email=True, linkedin=True, connected=True),
    }
    for why, who in cases.items():
        resolved = resolve_cadence(SHAPE, who)
        assert isinstance(resolved, Cadence)
        assert not any(s.is_fallback for s in resolved.steps)
        assert why in fallback_dropped(SHAPE, who)
        assert "step 4" in fallback_dropped(SHAPE, who)


@given(leads())
def test_no_lead_without_an_email_address_keeps_the_fallback(lead: Lead) -> None:
    resolved = resolve_cadence(SHAPE, lead)
    if isinstance(resolved, Cadence) and any(s.is_fallback for s in resolved.steps):
        assert lead.email
        assert lead.linkedin_url
        assert not lead.linkedin_connected
    else:
        assert fallback_dropped(SHAPE, lead) != ""


def test_the_estimate_reserves_the_dearer_path_and_counts_every_draft() -> None:
    ann = person("ann", email=True, linkedin=True)
    cheap = PriceTable(draft=4, email=1, linkedin_connect=2, linkedin_message=3)
    dear = PriceTable(draft=4, email=9, linkedin_connect=2, linkedin_message=3)
    # accepted path: email + connect + message; fallback path: email + connect + email.
    assert estimate_credits(SHAPE, [ann], cheap).max_send_cost == 1 + 2 + max(3, 1)
    assert estimate_credits(SHAPE, [ann], dear).max_send_cost == 9 + 2 + max(3, 9)
    line = estimate_credits(SHAPE, [ann], dear).leads[0]
    assert line.drafts == 3  # both emails and the message; the request has no note
    assert line.sends == 3
    cadence = resolve_cadence(SHAPE, ann)
    assert isinstance(cadence, Cadence)
    assert send_reservations(cadence.steps, dear) == {1: 9, 2: 2, 3: 3, 4: 6}
    assert fallback_borrow(cadence.steps, dear) == {3: 3}
    assert send_reservations(cadence.steps, cheap)[4] == 0
    assert fallback_borrow(cadence.steps, cheap) == {3: 1}


def test_the_shape_timeline_forks_to_the_fallback_from_the_request() -> None:
    timeline = timeline_of_shape(SHAPE)
    assert timeline.connectors[-1].fork_from == 2
    assert timeline.connectors[-1].label == "if not accepted, then 2 business days"
    text = render_text(timeline, width=200)
    lines = text.splitlines()
    assert lines[1].endswith("3 LinkedIn message")
    assert "4 Email" not in lines[1]
    assert lines[2] == "from 2 \\-- if not accepted, then 2 business days --> 4 Email"
    unicode = render_text(timeline, unicode=True, width=200).splitlines()
    assert unicode[2] == "from 2 └─ if not accepted, then 2 business days ──▶ 4 Email"
    svg = render_svg(timeline)
    root = ET.fromstring(svg)
    texts = [t.text for t in root.iter("{http://www.w3.org/2000/svg}text")]
    assert "if not accepted, then 2 business days" in texts
    assert "branch taken only if the connection request is not accepted" in texts
    dotted = [
        p
        for p in root.iter("{http://www.w3.org/2000/svg}path")
        if p.get("stroke-dasharray") == "2 4"
    ]
    assert len(dotted) == 1


def test_a_timeline_without_a_fallback_draws_no_fork() -> None:
    timeline = timeline_of_shape(shape(*BASE))
    assert all(c.fork_from is None for c in timeline.connectors)
    assert "if not accepted" not in render_text(timeline) + render_svg(timeline)


def test_the_fallback_is_forecast_from_the_request_as_if_declined_at_once() -> None:
    import datetime as dt

    from starlight_sequences.calendar import BusinessHours
    from starlight_sequences.planning import calendar_for, forecast, step_moment

    ann = Lead(
        id=LeadId("ann"),
        email="ann@example.com",
        linkedin_url="https://www.linkedin.com/in/ann-doe",
        country="US",
        timezone="America/New_York",
    )
    cadence = resolve_cadence(shape(*BASE, fallback(4, wait_days=3)), ann)
    assert isinstance(cadence, Cadence)
    calendar = calendar_for(ann, BusinessHours())
    first = dt.datetime(2026, 11, 30, 15, 0, tzinfo=dt.UTC)  # Monday 10:00 in New York
    moments = forecast(calendar, cadence.steps, first)
    assert moments[3] == step_moment(calendar, moments[1], 3)
    assert moments[2] == step_moment(calendar, moments[1], 1)
