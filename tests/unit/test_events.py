"""Inbound events check themselves when built: typed errors naming the field, never an
``AttributeError`` later in the service."""

from __future__ import annotations

import datetime as dt
import textwrap
from pathlib import Path
from typing import Any

import pytest

import starlight_sequences
from starlight_sequences.errors import InvalidEvent, InvalidInput
from starlight_sequences.events import EventKind, InboundEvent
from starlight_sequences.ids import CampaignId, LeadId

AT = dt.datetime(2026, 12, 1, 9, 30, tzinfo=dt.UTC)


def event(**changes: Any) -> InboundEvent:
    fields: dict[str, Any] = {"kind": EventKind.REPLY, "lead_id": "ann", "at": AT}
    fields.update(changes)
    return InboundEvent(**fields)


def rejected(**changes: Any) -> InvalidEvent:
    with pytest.raises(InvalidEvent) as caught:
        event(**changes)
    assert isinstance(caught.value, InvalidInput)
    assert isinstance(caught.value, ValueError)
    return caught.value


@pytest.mark.parametrize("kind", list(EventKind))
def test_a_kind_given_as_its_value_becomes_the_event_kind(kind: EventKind) -> None:
    built = event(kind=kind.value)
    assert built.kind is kind
    assert built == event(kind=kind)


@pytest.mark.parametrize("kind", ["Reply", "replied", "", None, 1, b"reply"])
def test_an_unknown_kind_is_an_invalid_event_naming_the_field(kind: object) -> None:
    error = rejected(kind=kind)
    assert "kind must be one of reply, connection_accepted" in str(error)


def test_ids_given_as_plain_strings_are_kept() -> None:
    built = event(lead_id="ann", campaign_id="q1")
    assert built.lead_id == LeadId("ann")
    assert built.campaign_id == CampaignId("q1")
    assert event(campaign_id=None).campaign_id is None
    assert built.dedupe_key == "reply:ann:q1:2026-12-01T09:30:00+00:00"


@pytest.mark.parametrize("lead_id", [None, 42, "", b"ann", ["ann"]])
def test_a_lead_id_that_is_not_a_non_empty_string_is_an_invalid_event(lead_id: object) -> None:
    assert "lead_id must be a non-empty string" in str(rejected(lead_id=lead_id))


@pytest.mark.parametrize("campaign_id", [7, "", object()])
def test_a_campaign_id_that_is_not_a_non_empty_string_is_an_invalid_event(
    campaign_id: object,
) -> None:
    assert "campaign_id must be a non-empty string or None" in str(
        rejected(campaign_id=campaign_id)
    )


@pytest.mark.parametrize("at", [None, "2026-12-01T09:30:00Z", 1_764_581_400, dt.date(2026, 12, 1)])
def test_an_at_that_is_not_a_datetime_is_an_invalid_event(at: object) -> None:
    assert "at must be a datetime" in str(rejected(at=at))


def test_a_naive_at_is_an_invalid_event() -> None:
    error = rejected(at=dt.datetime(2026, 12, 1, 9, 30))
    assert "at must be timezone-aware, not the naive 2026-12-01T09:30:00" in str(error)


def test_return_date_is_a_date_or_none() -> None:
    back = dt.date(2026, 12, 7)
    assert event(kind="out_of_office", return_date=back).return_date == back
    for bad in (dt.datetime(2026, 12, 7, tzinfo=dt.UTC), "2026-12-07", 20261207):
        error = rejected(kind="out_of_office", return_date=bad)
        assert "return_date must be a date (not a datetime)" in str(error)


@pytest.mark.parametrize("field", ["key", "detail"])
def test_key_and_detail_are_text(field: str) -> None:
    assert f"{field} must be a string, not a int" in str(rejected(**{field: 3}))


def test_a_long_bad_value_is_cut_short_in_the_message() -> None:
    error = rejected(kind="x" * 10_000)
    assert len(str(error)) < 300


@pytest.mark.slow
def test_mypy_strict_accepts_plain_strings_for_ids_and_kind_and_refuses_other_types(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mypy import api

    source = tmp_path / "host_app.py"
    source.write_text(
        textwrap.dedent(
            """\
            from __future__ import annotations

            import datetime as dt

            from starlight_sequences import EventKind, InboundEvent
            from starlight_sequences.ids import LeadId

            AT = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
            first = InboundEvent(kind=EventKind.REPLY, lead_id="ann", at=AT, campaign_id="q1")
            second = InboundEvent(kind="reply", lead_id="ann", at=AT)
            lead: LeadId = first.lead_id
            wrong = InboundEvent(kind=EventKind.REPLY, lead_id=3, at=AT)
            """
        ),
        encoding="utf-8",
    )
    # the source under test, not whatever copy is installed
    monkeypatch.setenv("MYPYPATH", str(Path(starlight_sequences.__file__).resolve().parents[1]))
    out, _, _ = api.run(
        [
            "--strict",
            "--config-file=",
            "--no-error-summary",
            "--cache-dir",
            str(tmp_path / "cache"),
            str(source),
        ]
    )
    errors = [line for line in out.splitlines() if ": error:" in line]
    assert len(errors) == 1, out
    assert "host_app.py:12:" in errors[0]
    assert 'Argument "lead_id"' in errors[0]
