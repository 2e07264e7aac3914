"""Rows ↔ objects mapping and encodings the SQL adapters share (SQLite, PostgreSQL).

One mapping between rows and objects (the ``*_COLUMNS`` lists, ``*_row`` and ``*_from_row``),
parameterised by a :class:`RowCodec` for what the two databases store differently: SQLite keeps
instants as integer microseconds since the Unix epoch and booleans as 0/1 integers, PostgreSQL
as ``timestamptz`` and ``boolean``. Each adapter defines its own codec. Also here: enum look-up
tables, and the JSON form of the values the adapters keep in JSON columns because no query
filters on them (a campaign's settings and identities, an enrolment's lead and cadence).
Private to the adapters.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any, Final, TypeVar

import attrs

from starlight_sequences.bounce_breaker import BounceBreaker, SenderHold
from starlight_sequences.cadence import CadenceStep
from starlight_sequences.calendar import BusinessHours, WarmUp
from starlight_sequences.campaigns import (
    Campaign,
    CampaignSettings,
    CampaignStatus,
    EmailIdentity,
    Enrolment,
    EnrolmentStatus,
    Excluded,
    LinkedInIdentity,
    ScheduledSend,
    SendStatus,
    StopScope,
)
from starlight_sequences.channels import Action
from starlight_sequences.credits import CreditMovement, MovementKind, PriceTable
from starlight_sequences.drafts import Draft, DraftStatus
from starlight_sequences.errors import InvalidInput
from starlight_sequences.events import Activity, ActivityKind
from starlight_sequences.ids import CampaignId, LeadId, SenderId, SendId, WorkspaceId
from starlight_sequences.leads import Lead
from starlight_sequences.shapes import SendShape, WaitAnchor

__all__ = [
    "ACTIONS",
    "ACTIVITY_COLUMNS",
    "CAMPAIGN_COLUMNS",
    "DRAFT_COLUMNS",
    "DRAFT_STATUSES",
    "ENROLMENT_COLUMNS",
    "ENROLMENT_STATUSES",
    "MOVEMENT_COLUMNS",
    "SENDER_HOLD_COLUMNS",
    "SEND_COLUMNS",
    "SEND_STATUSES",
    "RowCodec",
    "activity_from_row",
    "activity_row",
    "campaign_from_row",
    "campaign_row",
    "draft_from_row",
    "draft_row",
    "email_identity_from_json",
    "email_identity_to_json",
    "enrolment_from_row",
    "enrolment_row",
    "instant",
    "json_text",
    "lead_email_domain",
    "lead_from_json",
    "lead_to_json",
    "linkedin_identity_from_json",
    "linkedin_identity_to_json",
    "movement_from_row",
    "movement_row",
    "optional_instant",
    "optional_utc",
    "send_from_row",
    "send_row",
    "sender_hold_from_row",
    "sender_hold_row",
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
            **_warm_up_fields(identity.warm_up),
            "bounce_breaker": attrs.asdict(identity.bounce_breaker),
        }
    )


def _warm_up_fields(warm_up: WarmUp | None) -> dict[str, object]:
    # Absent, not null, when there is no ramp: rows written before ramps existed look the same.
    if warm_up is None:
        return {}
    return {
        "warm_up": {
            "start": warm_up.start,
            "step": warm_up.step,
            "ceiling": warm_up.ceiling,
            "since": warm_up.since.isoformat(),
            "country": warm_up.country,
            "subdivision": warm_up.subdivision,
        }
    }


def _warm_up_from(data: dict[str, Any] | None) -> WarmUp | None:
    if data is None:
        return None
    return WarmUp(
        start=data["start"],
        step=data["step"],
        ceiling=data["ceiling"],
        since=dt.date.fromisoformat(data["since"]),
        country=data["country"],
        subdivision=data["subdivision"],
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
        warm_up=_warm_up_from(data.get("warm_up")),
        # Absent from rows written before the breaker existed: the defaults then.
        bounce_breaker=BounceBreaker(**data.get("bounce_breaker", {})),
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


_NO_FIELDS: Final[Mapping[str, str]] = MappingProxyType({})
"""The fields of every stored lead without any (immutable, so shared)."""


def lead_to_json(lead: Lead) -> dict[str, Any]:
    data: dict[str, Any] = {name: getattr(lead, name) for name in _LEAD_FIELDS}
    data["fields"] = dict(lead.fields)
    if lead.timezone_reason:
        # Only when set: most leads give their timezone, and rows from before it stay valid.
        data["timezone_reason"] = lead.timezone_reason
    return data


def lead_from_json(data: Mapping[str, Any]) -> Lead:
    # A stored lead was checked and normalised when it was built; checking it again costs
    # ~100 µs a lead (10,000 leads: a second per read). So rebuild it field by field, the way
    # attrs documents for frozen classes, without re-running Lead.__attrs_post_init__.
    lead: Lead = object.__new__(Lead)
    for name in _LEAD_FIELDS:
        object.__setattr__(lead, name, data[name])
    object.__setattr__(lead, "id", LeadId(data["id"]))
    fields = data["fields"]
    object.__setattr__(lead, "fields", MappingProxyType(dict(fields)) if fields else _NO_FIELDS)
    object.__setattr__(lead, "timezone_reason", data.get("timezone_reason", ""))
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
        # Optional tail, so rows of steps without them keep their old form: new_thread, then
        # the A/B variant key.
        *([step.new_thread, step.variant] if step.variant else [True] if step.new_thread else []),
    ]


def _step_from_json(data: Sequence[Any]) -> CadenceStep:
    # Rows written before threading have seven fields (no new_thread); before A/B variants,
    # at most eight (no variant).
    number, action, wait_days, counts_from, guidance, with_note, gated, *rest = data
    return CadenceStep(
        number=number,
        action=ACTIONS[action],
        wait_days=wait_days,
        counts_from=_ANCHORS[counts_from],
        guidance=guidance,
        with_note=with_note,
        gated_on_acceptance=gated,
        new_thread=bool(rest and rest[0]),
        variant=rest[1] if len(rest) > 1 else "",
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


# --- rows ↔ objects --------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class RowCodec:
    """How one SQL adapter encodes the values its columns do not hold alike: instants and flags.

    Everything else is mapped the same way by every adapter: text columns hold strings and enum
    values, and JSON columns hold :func:`json_text` strings (PostgreSQL casts them to ``json``
    in SQL and reads them back as text).

    Attributes:
        instant_out: An aware datetime to its column value; the ``str`` names the field for
            the error on a naive one.
        optional_instant_out: The same for an optional instant (``None`` stays ``None``).
        instant_in: A column value back to a UTC-aware datetime.
        optional_instant_in: The same for a nullable column.
        flag_in: A boolean column's value back to a ``bool``.
    """

    instant_out: Callable[[dt.datetime, str], object]
    optional_instant_out: Callable[[dt.datetime | None, str], object]
    instant_in: Callable[[Any], dt.datetime]
    optional_instant_in: Callable[[Any], dt.datetime | None]
    flag_in: Callable[[Any], bool]


CAMPAIGN_COLUMNS: Final = (
    "workspace_id, id, status, revision, name, brief, created_at, approved_at, paused_at, "
    "finished_at, shape, settings, email_identity, linkedin_identity, excluded"
)


def campaign_row(codec: RowCodec, campaign: Campaign) -> tuple[object, ...]:
    what = f"campaign {campaign.id!r}"
    return (
        campaign.workspace_id,
        campaign.id,
        campaign.status.value,
        campaign.revision,
        campaign.name,
        campaign.brief,
        codec.instant_out(campaign.created_at, f"{what}: created_at"),
        codec.optional_instant_out(campaign.approved_at, f"{what}: approved_at"),
        codec.optional_instant_out(campaign.paused_at, f"{what}: paused_at"),
        codec.optional_instant_out(campaign.finished_at, f"{what}: finished_at"),
        json_text(campaign.shape.to_dict()),
        json_text(
            {
                **settings_to_json(campaign.settings, campaign.id),
                # Kept beside the settings (same column, so no migration); absent in rows
                # written before prices were kept with the campaign.
                "prices": None if campaign.prices is None else attrs.asdict(campaign.prices),
                # Likewise the A/B winners picked so far (absent: none).
                **(
                    {"variant_winners": [list(pair) for pair in campaign.variant_winners]}
                    if campaign.variant_winners
                    else {}
                ),
                # Likewise the sender pools (absent: the single identities alone).
                **_pools_to_json(campaign),
            }
        ),
        email_identity_to_json(campaign.email_identity),
        linkedin_identity_to_json(campaign.linkedin_identity),
        json_text([[x.lead_id, x.reason, x.message] for x in campaign.excluded]),
    )


def campaign_from_row(codec: RowCodec, row: Sequence[Any]) -> Campaign:
    return Campaign(
        workspace_id=WorkspaceId(row[0]),
        id=CampaignId(row[1]),
        status=CampaignStatus(row[2]),
        revision=row[3],
        name=row[4],
        brief=row[5],
        created_at=codec.instant_in(row[6]),
        approved_at=codec.optional_instant_in(row[7]),
        paused_at=codec.optional_instant_in(row[8]),
        finished_at=codec.optional_instant_in(row[9]),
        shape=SendShape.from_dict(json.loads(row[10])),
        settings=settings_from_json(settings := json.loads(row[11])),
        prices=None if settings.get("prices") is None else PriceTable(**settings["prices"]),
        variant_winners=tuple(
            (int(step), str(key)) for step, key in settings.get("variant_winners", ())
        ),
        email_identity=email_identity_from_json(row[12]),
        linkedin_identity=linkedin_identity_from_json(row[13]),
        email_identities=tuple(
            _some(email_identity_from_json(json_text(d))) for d in settings.get("email_pool", ())
        ),
        linkedin_identities=tuple(
            _some(linkedin_identity_from_json(json_text(d)))
            for d in settings.get("linkedin_pool", ())
        ),
        retired_senders=tuple(SenderId(x) for x in settings.get("retired_senders", ())),
        excluded=tuple(
            Excluded(lead_id=LeadId(lead_id), reason=reason, message=message)
            for lead_id, reason, message in json.loads(row[14])
        ),
    )


def _pools_to_json(campaign: Campaign) -> dict[str, object]:
    """The sender pools, when they hold more than the single identities (or retired ones)."""
    data: dict[str, object] = {}
    if len(campaign.email_identities) > 1:
        data["email_pool"] = [
            json.loads(_some(email_identity_to_json(i))) for i in campaign.email_identities
        ]
    if len(campaign.linkedin_identities) > 1:
        data["linkedin_pool"] = [
            json.loads(_some(linkedin_identity_to_json(i))) for i in campaign.linkedin_identities
        ]
    if campaign.retired_senders:
        data["retired_senders"] = list(campaign.retired_senders)
    return data


_Some = TypeVar("_Some")


def _some(value: _Some | None) -> _Some:
    assert value is not None
    return value


ENROLMENT_COLUMNS: Final = (
    "workspace_id, campaign_id, lead_id, email_domain, status, approved, reason, resume_at, "
    "accepted_at, connect_sent_at, revision, lead, steps, senders"
)
"""``senders`` (the lead's assigned pool senders as a JSON list; "" for none) came with the
sender pools' migration."""


def enrolment_row(
    codec: RowCodec, enrolment: Enrolment, cache: dict[tuple[CadenceStep, ...], str]
) -> tuple[object, ...]:
    what = f"enrolment {enrolment.campaign_id}/{enrolment.lead_id}"
    return (
        enrolment.workspace_id,
        enrolment.campaign_id,
        enrolment.lead_id,
        lead_email_domain(enrolment.lead),
        enrolment.status.value,
        enrolment.approved,
        enrolment.reason,
        codec.optional_instant_out(enrolment.resume_at, f"{what}: resume_at"),
        codec.optional_instant_out(enrolment.accepted_at, f"{what}: accepted_at"),
        codec.optional_instant_out(enrolment.connect_sent_at, f"{what}: connect_sent_at"),
        enrolment.revision,
        json_text(lead_to_json(enrolment.lead)),
        steps_json(enrolment.steps, cache),
        json_text(list(enrolment.senders)) if enrolment.senders else "",
    )


def enrolment_from_row(
    codec: RowCodec, row: Sequence[Any], cache: dict[str, tuple[CadenceStep, ...]]
) -> Enrolment:
    return Enrolment(
        workspace_id=WorkspaceId(row[0]),
        campaign_id=CampaignId(row[1]),
        status=ENROLMENT_STATUSES[row[4]],
        approved=codec.flag_in(row[5]),
        reason=row[6],
        resume_at=codec.optional_instant_in(row[7]),
        accepted_at=codec.optional_instant_in(row[8]),
        connect_sent_at=codec.optional_instant_in(row[9]),
        revision=row[10],
        lead=lead_from_json(json.loads(row[11])),
        steps=steps_from_json(row[12], cache),
        senders=tuple(SenderId(x) for x in (json.loads(row[13]) if row[13] else ())),
    )


DRAFT_COLUMNS: Final = (
    "workspace_id, campaign_id, lead_id, step, action, subject, body, status, problem, "
    "version, edited"
)


def draft_row(workspace_id: WorkspaceId, draft: Draft) -> tuple[object, ...]:
    return (
        workspace_id,
        draft.campaign_id,
        draft.lead_id,
        draft.step,
        draft.action.value,
        draft.subject,
        draft.body,
        draft.status.value,
        draft.problem,
        draft.version,
        draft.edited,
    )


def draft_from_row(codec: RowCodec, row: Sequence[Any]) -> Draft:
    return Draft(
        campaign_id=CampaignId(row[1]),
        lead_id=LeadId(row[2]),
        step=row[3],
        action=ACTIONS[row[4]],
        subject=row[5],
        body=row[6],
        status=DRAFT_STATUSES[row[7]],
        problem=row[8],
        version=row[9],
        edited=codec.flag_in(row[10]),
    )


SEND_COLUMNS: Final = (
    "workspace_id, id, campaign_id, lead_id, step, action, sender_id, due_at, forecast_at, "
    "status, attempts, lease_owner, lease_expires_at, sent_at, receipt, reason, with_note, "
    "revision"
)


def send_row(codec: RowCodec, send: ScheduledSend) -> tuple[object, ...]:
    what = f"send {send.id!r}"
    return (
        send.workspace_id,
        send.id,
        send.campaign_id,
        send.lead_id,
        send.step,
        send.action.value,
        send.sender_id,
        codec.instant_out(send.due_at, f"{what}: due_at"),
        codec.instant_out(send.forecast_at, f"{what}: forecast_at"),
        send.status.value,
        send.attempts,
        send.lease_owner,
        codec.optional_instant_out(send.lease_expires_at, f"{what}: lease_expires_at"),
        codec.optional_instant_out(send.sent_at, f"{what}: sent_at"),
        send.receipt,
        send.reason,
        send.with_note,
        send.revision,
    )


def send_from_row(codec: RowCodec, row: Sequence[Any]) -> ScheduledSend:
    return ScheduledSend(
        workspace_id=WorkspaceId(row[0]),
        id=SendId(row[1]),
        campaign_id=CampaignId(row[2]),
        lead_id=LeadId(row[3]),
        step=row[4],
        action=ACTIONS[row[5]],
        sender_id=SenderId(row[6]),
        due_at=codec.instant_in(row[7]),
        forecast_at=codec.instant_in(row[8]),
        status=SEND_STATUSES[row[9]],
        attempts=row[10],
        lease_owner=row[11],
        lease_expires_at=codec.optional_instant_in(row[12]),
        sent_at=codec.optional_instant_in(row[13]),
        receipt=row[14],
        reason=row[15],
        with_note=codec.flag_in(row[16]),
        revision=row[17],
    )


ACTIVITY_COLUMNS: Final = "workspace_id, kind, at, campaign_id, lead_id, step, detail, key, reason"


def activity_row(
    codec: RowCodec, workspace_id: WorkspaceId, activity: Activity
) -> tuple[object, ...]:
    return (
        workspace_id,
        activity.kind.value,
        codec.instant_out(activity.at, f"activity {activity.kind.value}: at"),
        activity.campaign_id,
        activity.lead_id,
        activity.step,
        activity.detail,
        activity.key,
        activity.reason,
    )


def activity_from_row(codec: RowCodec, row: Sequence[Any]) -> Activity:
    return Activity(
        kind=ActivityKind(row[1]),
        at=codec.instant_in(row[2]),
        campaign_id=None if row[3] is None else CampaignId(row[3]),
        lead_id=None if row[4] is None else LeadId(row[4]),
        step=row[5],
        detail=row[6],
        key=row[7],
        reason=row[8],
    )


MOVEMENT_COLUMNS: Final = "workspace_id, kind, amount, campaign_id, lead_id, key, note"


def movement_row(workspace_id: WorkspaceId, movement: CreditMovement) -> tuple[object, ...]:
    return (
        workspace_id,
        movement.kind.value,
        movement.amount,
        movement.campaign_id,
        movement.lead_id,
        movement.key,
        movement.note,
    )


def movement_from_row(row: Sequence[Any]) -> CreditMovement:
    return CreditMovement(
        kind=MovementKind(row[1]),
        amount=row[2],
        campaign_id=None if row[3] is None else CampaignId(row[3]),
        lead_id=None if row[4] is None else LeadId(row[4]),
        key=row[5],
        note=row[6],
    )


SENDER_HOLD_COLUMNS: Final = (
    "workspace_id, sender_id, held_at, sends, hard_bounces, threshold, resumed_at, revision"
)


def sender_hold_row(codec: RowCodec, hold: SenderHold) -> tuple[object, ...]:
    what = f"sender hold {hold.sender_id!r}"
    return (
        hold.workspace_id,
        hold.sender_id,
        codec.instant_out(hold.held_at, f"{what}: held_at"),
        hold.sends,
        hold.hard_bounces,
        # As text: the exact decimal the settings gave, whatever the column's float type.
        repr(float(hold.threshold)),
        codec.optional_instant_out(hold.resumed_at, f"{what}: resumed_at"),
        hold.revision,
    )


def sender_hold_from_row(codec: RowCodec, row: Sequence[Any]) -> SenderHold:
    return SenderHold(
        workspace_id=WorkspaceId(row[0]),
        sender_id=SenderId(row[1]),
        held_at=codec.instant_in(row[2]),
        sends=row[3],
        hard_bounces=row[4],
        threshold=float(row[5]),
        resumed_at=codec.optional_instant_in(row[6]),
        revision=row[7],
    )
