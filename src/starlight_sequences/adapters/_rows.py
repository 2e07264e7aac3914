"""Rows ↔ objects encodings the SQL adapters share (SQLite, PostgreSQL).

Instants as integer microseconds since the Unix epoch, enum look-up tables, and the JSON form
of the values the adapters keep in JSON columns because no query filters on them (a campaign's
settings and identities, an enrolment's lead and cadence). Private to the adapters.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any, Final

from starlight_sequences.cadence import CadenceStep
from starlight_sequences.calendar import BusinessHours
from starlight_sequences.campaigns import (
    CampaignSettings,
    EmailIdentity,
    EnrolmentStatus,
    LinkedInIdentity,
    SendStatus,
    StopScope,
)
from starlight_sequences.channels import Action
from starlight_sequences.drafts import DraftStatus
from starlight_sequences.errors import InvalidInput
from starlight_sequences.ids import LeadId, SenderId
from starlight_sequences.leads import Lead
from starlight_sequences.shapes import WaitAnchor

__all__ = [
    "ACTIONS",
    "DRAFT_STATUSES",
    "ENROLMENT_STATUSES",
    "SEND_STATUSES",
    "email_identity_from_json",
    "email_identity_to_json",
    "instant",
    "json_text",
    "lead_email_domain",
    "lead_from_json",
    "lead_to_json",
    "linkedin_identity_from_json",
    "linkedin_identity_to_json",
    "optional_instant",
    "optional_utc",
    "settings_from_json",
    "settings_to_json",
    "steps_from_json",
    "steps_json",
    "utc",
]

# --- instants --------------------------------------------------------------------------------

_EPOCH: Final = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MICROSECOND: Final = dt.timedelta(microseconds=1)


def instant(value: dt.datetime, what: str) -> int:
    """Microseconds since the epoch, UTC: unambiguous and sortable as an integer column."""
    if value.utcoffset() is None:
        raise InvalidInput(f"{what}: {value!r} is naive; storage keeps timezone-aware instants")
    return (value - _EPOCH) // _MICROSECOND


def optional_instant(value: dt.datetime | None, what: str) -> int | None:
    return None if value is None else instant(value, what)


def utc(micros: int) -> dt.datetime:
    return _EPOCH + dt.timedelta(microseconds=micros)


def optional_utc(micros: int | None) -> dt.datetime | None:
    return None if micros is None else utc(micros)


def _micros(value: dt.timedelta) -> int:
    return value // _MICROSECOND


# Enum(value) costs microseconds; reading 30,000 sends calls it 90,000 times.
ACTIONS: Final = {a.value: a for a in Action}
_ANCHORS: Final = {a.value: a for a in WaitAnchor}
SEND_STATUSES: Final = {s.value: s for s in SendStatus}
ENROLMENT_STATUSES: Final = {s.value: s for s in EnrolmentStatus}
DRAFT_STATUSES: Final = {s.value: s for s in DraftStatus}


# json.dumps with options builds a new encoder per call; one shared encoder is much cheaper.
_ENCODER: Final = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def json_text(value: object) -> str:
    return _ENCODER.encode(value)


def _hours_to_json(hours: BusinessHours) -> dict[str, Any]:
    return {
        "open": hours.open.isoformat(),
        "close": hours.close.isoformat(),
        "weekdays": [[day, o.isoformat(), c.isoformat()] for day, o, c in hours.weekdays],
    }


def _hours_from_json(data: Mapping[str, Any]) -> BusinessHours:
    return BusinessHours(
        open=dt.time.fromisoformat(data["open"]),
        close=dt.time.fromisoformat(data["close"]),
        weekdays=tuple(
            (int(day), dt.time.fromisoformat(o), dt.time.fromisoformat(c))
            for day, o, c in data["weekdays"]
        ),
    )


def settings_to_json(settings: CampaignSettings, campaign: str) -> dict[str, Any]:
    return {
        "business_hours": _hours_to_json(settings.business_hours),
        "start": optional_instant(settings.start, f"campaign {campaign!r}: settings.start"),
        "default_country": settings.default_country,
        "default_timezone": settings.default_timezone,
        "default_subdivision": settings.default_subdivision,
        "closures": sorted(day.isoformat() for day in settings.closures),
        "connection_timeout_days": settings.connection_timeout_days,
        "stop_scope": settings.stop_scope.value,
        "stop_company_on_reply": settings.stop_company_on_reply,
        "allow_overlap": settings.allow_overlap,
        "out_of_office_days": settings.out_of_office_days,
        "max_attempts": settings.max_attempts,
        "seed": settings.seed,
    }


def settings_from_json(data: Mapping[str, Any]) -> CampaignSettings:
    return CampaignSettings(
        business_hours=_hours_from_json(data["business_hours"]),
        start=optional_utc(data["start"]),
        default_country=data["default_country"],
        default_timezone=data["default_timezone"],
        default_subdivision=data["default_subdivision"],
        closures=frozenset(dt.date.fromisoformat(day) for day in data["closures"]),
        connection_timeout_days=data["connection_timeout_days"],
        stop_scope=StopScope(data["stop_scope"]),
        stop_company_on_reply=data["stop_company_on_reply"],
        allow_overlap=data["allow_overlap"],
        out_of_office_days=data["out_of_office_days"],
        max_attempts=data["max_attempts"],
        seed=data["seed"],
    )


def email_identity_to_json(identity: EmailIdentity | None) -> str | None:
    if identity is None:
        return None
    return json_text(
        {
            "id": identity.id,
            "address": identity.address,
            "display_name": identity.display_name,
            "timezone": identity.timezone,
            "min_spacing_us": _micros(identity.min_spacing),
            "daily_cap": identity.daily_cap,
        }
    )


def email_identity_from_json(text: str | None) -> EmailIdentity | None:
    if text is None:
        return None
    data = json.loads(text)
    return EmailIdentity(
        id=SenderId(data["id"]),
        address=data["address"],
        display_name=data["display_name"],
        timezone=data["timezone"],
        min_spacing=dt.timedelta(microseconds=data["min_spacing_us"]),
        daily_cap=data["daily_cap"],
    )


def linkedin_identity_to_json(identity: LinkedInIdentity | None) -> str | None:
    if identity is None:
        return None
    return json_text(
        {
            "id": identity.id,
            "profile_url": identity.profile_url,
            "premium": identity.premium,
            "notes_exhausted": identity.notes_exhausted,
            "send_without_note_when_exhausted": identity.send_without_note_when_exhausted,
            "timezone": identity.timezone,
            "min_spacing_us": _micros(identity.min_spacing),
            "weekly_connect_cap": identity.weekly_connect_cap,
            "daily_message_cap": identity.daily_message_cap,
        }
    )


def linkedin_identity_from_json(text: str | None) -> LinkedInIdentity | None:
    if text is None:
        return None
    data = json.loads(text)
    return LinkedInIdentity(
        id=SenderId(data["id"]),
        profile_url=data["profile_url"],
        premium=data["premium"],
        notes_exhausted=data["notes_exhausted"],
        send_without_note_when_exhausted=data["send_without_note_when_exhausted"],
        timezone=data["timezone"],
        min_spacing=dt.timedelta(microseconds=data["min_spacing_us"]),
        weekly_connect_cap=data["weekly_connect_cap"],
        daily_message_cap=data["daily_message_cap"],
    )


_LEAD_FIELDS: Final = (
    "id",
    "first_name",
    "last_name",
    "company",
    "title",
    "email",
    "linkedin_url",
    "country",
    "subdivision",
    "timezone",
    "linkedin_connected",
)


def lead_to_json(lead: Lead) -> dict[str, Any]:
    data: dict[str, Any] = {name: getattr(lead, name) for name in _LEAD_FIELDS}
    data["fields"] = dict(lead.fields)
    return data


def lead_from_json(data: Mapping[str, Any]) -> Lead:
    # A stored lead was checked and normalised when it was built; checking it again costs
    # ~100 µs a lead (10,000 leads: a second per read). So rebuild it field by field, the way
    # attrs documents for frozen classes, without re-running Lead.__attrs_post_init__.
    lead: Lead = object.__new__(Lead)
    for name in _LEAD_FIELDS:
        object.__setattr__(lead, name, data[name])
    object.__setattr__(lead, "id", LeadId(data["id"]))
    object.__setattr__(lead, "fields", MappingProxyType(dict(data["fields"])))
    return lead


def _step_to_json(step: CadenceStep) -> list[Any]:
    return [
        step.number,
        step.action.value,
        step.wait_days,
        step.counts_from.value,
        step.guidance,
        step.with_note,
        step.gated_on_acceptance,
    ]


def _step_from_json(data: Sequence[Any]) -> CadenceStep:
    number, action, wait_days, counts_from, guidance, with_note, gated = data
    return CadenceStep(
        number=number,
        action=ACTIONS[action],
        wait_days=wait_days,
        counts_from=_ANCHORS[counts_from],
        guidance=guidance,
        with_note=with_note,
        gated_on_acceptance=gated,
    )


def lead_email_domain(lead: Lead) -> str | None:
    return lead.email.rsplit("@", 1)[1].lower() if lead.email else None


def steps_json(steps: tuple[CadenceStep, ...], cache: dict[tuple[CadenceStep, ...], str]) -> str:
    # Most leads of a campaign share one cadence: encode each distinct one once per write.
    text = cache.get(steps)
    if text is None:
        text = cache[steps] = json_text([_step_to_json(step) for step in steps])
    return text


def steps_from_json(
    text: str, cache: dict[str, tuple[CadenceStep, ...]]
) -> tuple[CadenceStep, ...]:
    # ...and decode each distinct one once per read (the steps are immutable, so shared).
    steps = cache.get(text)
    if steps is None:
        steps = cache[text] = tuple(_step_from_json(step) for step in json.loads(text))
    return steps
