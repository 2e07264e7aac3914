"""Fixtures of the adapter contract suites: every storage and ledger adapter, and test data.

To run the suites against another adapter, add one factory to ``STORAGE_FACTORIES`` (and
``LEDGER_FACTORIES``): a context manager that yields a fresh, empty adapter and cleans up after.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

from starlight_sequences import shapes
from starlight_sequences.adapters.memory import InMemoryCreditLedger, InMemoryStorage
from starlight_sequences.adapters.postgres import PostgresCreditLedger, PostgresStorage
from starlight_sequences.adapters.sqlite import SQLiteCreditLedger, SQLiteStorage
from starlight_sequences.cadence import Cadence, resolve_cadence
from starlight_sequences.campaigns import (
    Campaign,
    CampaignSettings,
    CampaignStatus,
    EmailIdentity,
    Enrolment,
    EnrolmentStatus,
    LinkedInIdentity,
    ScheduledSend,
    SendStatus,
    send_id_for,
)
from starlight_sequences.channels import Action
from starlight_sequences.drafts import Draft, DraftStatus
from starlight_sequences.events import Activity, ActivityKind
from starlight_sequences.ids import CampaignId, LeadId, SenderId, WorkspaceId
from starlight_sequences.leads import Lead
from starlight_sequences.ports.credits import CreditLedger
from starlight_sequences.ports.storage import Storage
from tests import pg

WS = WorkspaceId("ws-acme")
OTHER_WS = WorkspaceId("ws-globex")
EMAIL_SENDER = SenderId("mailbox-1")
LINKEDIN_SENDER = SenderId("linkedin-1")
T0 = dt.datetime(2026, 11, 30, 14, 0, tzinfo=dt.UTC)
"""A Monday afternoon, UTC: the tests' "now"."""


# --- adapters --------------------------------------------------------------------------------


@contextlib.contextmanager
def _memory_storage(tmp_path: Path) -> Iterator[Storage]:
    yield InMemoryStorage()


@contextlib.contextmanager
def _sqlite_storage(tmp_path: Path) -> Iterator[Storage]:
    with SQLiteStorage(tmp_path / "contract.sqlite3") as storage:
        yield storage


@contextlib.contextmanager
def _memory_ledger(tmp_path: Path) -> Iterator[CreditLedger]:
    yield InMemoryCreditLedger()


@contextlib.contextmanager
def _sqlite_ledger(tmp_path: Path) -> Iterator[CreditLedger]:
    with SQLiteCreditLedger(tmp_path / "contract.sqlite3") as ledger:
        yield ledger


@contextlib.contextmanager
def _postgres_storage(tmp_path: Path) -> Iterator[Storage]:
    # A schema of its own per test (skips without STARLIGHT_PG_DSN; see tests/pg.py).
    with PostgresStorage(pg.fresh_dsn(), max_size=8) as storage:
        yield storage


@contextlib.contextmanager
def _postgres_ledger(tmp_path: Path) -> Iterator[CreditLedger]:
    with PostgresCreditLedger(pg.fresh_dsn(), max_size=8) as ledger:
        yield ledger


StorageFactory = Callable[[Path], contextlib.AbstractContextManager[Storage]]
LedgerFactory = Callable[[Path], contextlib.AbstractContextManager[CreditLedger]]

STORAGE_FACTORIES: dict[str, StorageFactory] = {
    "memory": _memory_storage,
    "postgres": _postgres_storage,
    "sqlite": _sqlite_storage,
}
LEDGER_FACTORIES: dict[str, LedgerFactory] = {
    "memory": _memory_ledger,
    "postgres": _postgres_ledger,
    "sqlite": _sqlite_ledger,
}


@pytest.fixture(params=sorted(STORAGE_FACTORIES))
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Storage]:
    """A fresh, empty storage adapter of each kind."""
    with STORAGE_FACTORIES[request.param](tmp_path) as adapter:
        yield adapter


@pytest.fixture(params=sorted(LEDGER_FACTORIES))
def ledger(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[CreditLedger]:
    """A fresh, empty credit ledger of each kind."""
    with LEDGER_FACTORIES[request.param](tmp_path) as adapter:
        yield adapter


def xfail_for(request: pytest.FixtureRequest, fixture: str, adapter: str, reason: str) -> None:
    """Mark the running test as a known failure when ``fixture`` is the ``adapter`` kind."""
    if request.node.callspec.params.get(fixture) == adapter:
        request.applymarker(pytest.mark.xfail(reason=reason, strict=True))


# --- test data -------------------------------------------------------------------------------


def make_lead(lead_id: str = "lead-ann", **overrides: Any) -> Lead:
    """A reachable lead (email and LinkedIn) in New York, with personalisation fields."""
    values: dict[str, Any] = {
        "id": LeadId(lead_id),
        "first_name": "Ann",
        "last_name": "Lee",
        "company": "Acme",
        "title": "CTO",
        "email": f"{lead_id}@acme.example.com",
        "linkedin_url": f"https://www.linkedin.com/in/{lead_id}",
        "country": "US",
        "subdivision": "NY",
        "timezone": "America/New_York",
        "fields": {"industry": "rockets", "city": "New York"},
    }
    values.update(overrides)
    return Lead(**values)


def make_campaign(
    campaign_id: str = "camp-1",
    *,
    workspace_id: WorkspaceId = WS,
    status: CampaignStatus = CampaignStatus.ACTIVE,
    shape_key: str = "email-sequence",
    **overrides: Any,
) -> Campaign:
    """A campaign of a stock shape with both identities, created (in Berlin time) before T0."""
    values: dict[str, Any] = {
        "workspace_id": workspace_id,
        "id": CampaignId(campaign_id),
        "name": f"Campaign {campaign_id}",
        "brief": "We make rockets cheaper. Ask for a 15-minute call.",
        "shape": shapes.get(shape_key),
        "settings": CampaignSettings(),
        "email_identity": EmailIdentity(id=EMAIL_SENDER, address="sales@acme.example.com"),
        "linkedin_identity": LinkedInIdentity(id=LINKEDIN_SENDER),
        "status": status,
        "created_at": dt.datetime(2026, 11, 20, 10, 30, tzinfo=dt.timezone(dt.timedelta(hours=1))),
    }
    values.update(overrides)
    return Campaign(**values)


def cadence_of(campaign: Campaign, lead: Lead) -> Cadence:
    """The lead's cadence in the campaign (the lead must be reachable)."""
    resolved = resolve_cadence(campaign.shape, lead)
    assert isinstance(resolved, Cadence), resolved
    return resolved


def make_enrolment(campaign: Campaign, lead: Lead, **overrides: Any) -> Enrolment:
    """The lead enrolled in the campaign with its resolved cadence."""
    values: dict[str, Any] = {
        "workspace_id": campaign.workspace_id,
        "campaign_id": campaign.id,
        "lead": lead,
        "steps": cadence_of(campaign, lead).steps,
        "status": EnrolmentStatus.ACTIVE,
        "approved": True,
    }
    values.update(overrides)
    return Enrolment(**values)


def make_send(
    campaign: Campaign,
    lead_id: str = "lead-ann",
    step: int = 1,
    *,
    due_at: dt.datetime = T0,
    status: SendStatus = SendStatus.SCHEDULED,
    action: Action = Action.EMAIL,
    sender_id: SenderId = EMAIL_SENDER,
    **overrides: Any,
) -> ScheduledSend:
    """A send of one step of the campaign to one lead."""
    values: dict[str, Any] = {
        "id": send_id_for(campaign.id, LeadId(lead_id), step),
        "workspace_id": campaign.workspace_id,
        "campaign_id": campaign.id,
        "lead_id": LeadId(lead_id),
        "step": step,
        "action": action,
        "sender_id": sender_id,
        "due_at": due_at,
        "forecast_at": due_at,
        "status": status,
    }
    values.update(overrides)
    return ScheduledSend(**values)


def make_draft(
    campaign: Campaign, lead_id: str = "lead-ann", step: int = 1, **overrides: Any
) -> Draft:
    """A ready email draft."""
    values: dict[str, Any] = {
        "campaign_id": campaign.id,
        "lead_id": LeadId(lead_id),
        "step": step,
        "action": Action.EMAIL,
        "subject": f"Step {step} for {lead_id}",
        "body": f"Hello {lead_id}, this is step {step}.",
        "status": DraftStatus.READY,
    }
    values.update(overrides)
    return Draft(**values)


def make_activity(
    kind: ActivityKind = ActivityKind.SENT,
    *,
    campaign_id: str | None = "camp-1",
    lead_id: str | None = "lead-ann",
    at: dt.datetime = T0,
    **overrides: Any,
) -> Activity:
    """A journal line."""
    values: dict[str, Any] = {
        "kind": kind,
        "at": at,
        "campaign_id": None if campaign_id is None else CampaignId(campaign_id),
        "lead_id": None if lead_id is None else LeadId(lead_id),
    }
    values.update(overrides)
    return Activity(**values)


def bumped(record: Any, **changes: Any) -> Any:
    """``record`` with its revision bumped and ``changes`` applied (what the service writes)."""
    return attrs.evolve(record, revision=record.revision + 1, **changes)
