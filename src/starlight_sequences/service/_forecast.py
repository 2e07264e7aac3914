"""When a campaign's last send is forecast to go out, under its senders' caps and warm-up ramps.

Before approval there are no sends yet, so the forecast places every first touch the way
approval will (staggered under each sender's spacing, caps and ramp, counting what the sender
already has booked in other campaigns) and forecasts the later steps by their waits. After
approval it reads the sends themselves.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from starlight_sequences.calendar import BusinessCalendar, SlotRequest
from starlight_sequences.campaigns import Campaign, Enrolment, ScheduledSend, SendStatus
from starlight_sequences.channels import Action
from starlight_sequences.ids import LeadId
from starlight_sequences.planning import forecast, step_moment
from starlight_sequences.service._shared import ServiceContext, allocate, lead_calendar

__all__ = ["forecast_last_send"]


def _last_planned(
    ctx: ServiceContext, campaign: Campaign, enrolments: Sequence[Enrolment], start: dt.datetime
) -> dt.datetime | None:
    by_action: dict[Action, list[SlotRequest]] = {}
    calendars: dict[LeadId, BusinessCalendar] = {}
    for enrolment in enrolments:
        calendar = lead_calendar(campaign, enrolment)
        calendars[enrolment.lead_id] = calendar
        by_action.setdefault(enrolment.steps[0].action, []).append(
            SlotRequest(
                key=enrolment.lead_id,
                earliest=step_moment(calendar, start, 0),
                calendar=calendar,
                follow_up=False,
            )
        )
    slots: dict[str, dt.datetime] = {}
    for action, requests in sorted(by_action.items()):
        slots.update(allocate(ctx, campaign, action, requests))
    last: dt.datetime | None = None
    for enrolment in enrolments:
        moments = forecast(calendars[enrolment.lead_id], enrolment.steps, slots[enrolment.lead_id])
        latest = max(moments)
        last = latest if last is None else max(last, latest)
    return last


def _last_scheduled(sends: Sequence[ScheduledSend]) -> dt.datetime | None:
    moments = [
        send.sent_at if send.status is SendStatus.SENT and send.sent_at else send.due_at
        for send in sends
        if send.status not in (SendStatus.SKIPPED, SendStatus.FAILED)
    ]
    return max(moments) if moments else None


def forecast_last_send(
    ctx: ServiceContext,
    campaign: Campaign,
    enrolments: Sequence[Enrolment],
    sends: Sequence[ScheduledSend],
    start: dt.datetime,
) -> dt.datetime | None:
    """The forecast instant (UTC) of the campaign's last send, or None when nothing will go.

    With ``sends`` (an approved campaign): the latest ``sent_at`` of its sent sends and
    ``due_at`` of the others that may still go (a step waiting on a connection counts at its
    acceptance deadline). Without: the plan approval would make from ``start`` for the
    enrolments that are not final.
    """
    if sends:
        return _last_scheduled(sends)
    live = [e for e in enrolments if not e.status.is_final and e.steps]
    return _last_planned(ctx, campaign, live, start) if live else None
