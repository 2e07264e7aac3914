"""A FastAPI app that embeds starlight_sequences: copy it and change what is yours.

What it shows (``docs/embedding.md`` walks through it):

- ``POST /estimate`` — what a campaign would cost (drafts plus the most its sends cost).
- ``POST /campaigns`` — create a campaign from lead rows, a brief and a shape key; bad rows
  are reported and left out, the good ones are enrolled and drafted.
- ``GET /campaigns/{id}/preview`` — every recipient's steps, drafts and local dates.
- ``POST /campaigns/{id}/approve`` — schedule it (nothing is sent before).
- ``GET /campaigns/{id}/status`` — where each contact stands.
- ``POST /webhooks/inbound-email`` — the raw RFC 5322 message an ESP's inbound-parse webhook
  posts; a reply stops the contact's remaining steps.
- ``POST /unsubscribe?t=TOKEN`` — the one-click unsubscribe link every email carries.
- A dispatcher worker (``run_worker_async``) started and stopped with the app's lifespan.
- Every ``StarlightError`` answered with a 4xx status and its message; oversized bodies get
  413 before they are read.

Run it (``uvicorn`` is yours to install; the settings come from the environment, see
:meth:`Settings.from_environment`)::

    uvicorn --factory examples.fastapi_app.app:app_from_environment
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hmac
import os
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, Header, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from starlight_sequences import (
    AsyncCampaignService,
    EmailIdentity,
    LeadImport,
    StarlightError,
    UnsubscribeLinks,
    import_leads,
    run_worker_async,
)
from starlight_sequences import errors as sl_errors
from starlight_sequences.adapters import (
    SQLiteCreditLedger,
    SQLiteStorage,
    SystemClock,
    TemplateDrafter,
)
from starlight_sequences.inbound import MAX_MESSAGE_BYTES
from starlight_sequences.ports.clock import Clock
from starlight_sequences.ports.drafter import Drafter
from starlight_sequences.ports.senders import EmailSender
from starlight_sequences.service import DispatchReport

from .body_limit import BodyLimit, read_body
from .esp_sender import ESPEmailSender
from .views import (
    creation_view,
    estimate_view,
    ingest_view,
    preview_view,
    problems_view,
    status_view,
)

__all__ = [
    "CampaignIn",
    "EstimateIn",
    "Settings",
    "app_from_environment",
    "create_app",
    "status_for",
]

MAX_LEADS = 1_000
"""Lead rows one request may carry; larger lists go through a background import."""

CampaignIdParam = Annotated[str, PathParam(min_length=1, max_length=128)]

# First match wins: subclasses come before their parents.
_STATUS: tuple[tuple[type[StarlightError], int], ...] = (
    (sl_errors.UnknownShape, 400),  # a bad value in the request, not a missing resource
    (sl_errors.InvalidInput, 400),  # bad leads, shapes, settings, drafts, tokens
    (sl_errors.NotFound, 404),  # campaign, enrolment or draft not in this workspace
    (sl_errors.InsufficientCredits, 402),
    (sl_errors.IllegalTransition, 409),  # incl. DraftsNeedAttention: fix the drafts first
    (sl_errors.ConcurrentUpdate, 409),  # changed meanwhile: read again and retry
    (sl_errors.LeaseLost, 409),
    (sl_errors.AdapterError, 503),  # the database or a provider is away: retry later
)


def status_for(error: StarlightError) -> int:
    """The HTTP status a library error is answered with (500 for none of the known kinds)."""
    return next((status for kind, status in _STATUS if isinstance(error, kind)), 500)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Settings:
    """What the app needs to know; secrets come from the environment, never from code.

    Attributes:
        database: the SQLite file (storage and credit ledger).
        workspace_id: the tenant this app serves (a multi-tenant host derives it per request
            from its own authentication).
        mailbox: the mailbox campaigns send from.
        unsubscribe_url: this app's public ``/unsubscribe`` URL (https).
        unsubscribe_secret: signs the unsubscribe links; keep it for as long as emails are read.
        webhook_token: the shared secret the ESP sends with each inbound webhook.
        worker_id: the dispatcher's name; unique per process.
        poll_interval: seconds between the worker's passes when it finds little to do.
        max_request_bytes: the largest JSON body accepted.
        max_email_bytes: the largest inbound email accepted.
    """

    database: Path
    workspace_id: str
    mailbox: EmailIdentity
    unsubscribe_url: str
    unsubscribe_secret: bytes
    webhook_token: str
    worker_id: str = "api-1"
    poll_interval: float = 5.0
    max_request_bytes: int = 2_000_000
    max_email_bytes: int = MAX_MESSAGE_BYTES

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ) -> Settings:
        """Read ``APP_DATABASE``, ``APP_WORKSPACE``, ``APP_MAILBOX``, ``APP_MAILBOX_NAME``,
        ``APP_UNSUBSCRIBE_URL``, ``APP_UNSUBSCRIBE_SECRET`` (hex), ``APP_WEBHOOK_TOKEN`` and
        ``APP_WORKER_ID`` (optional)."""
        return cls(
            database=Path(environ["APP_DATABASE"]),
            workspace_id=environ.get("APP_WORKSPACE", "default"),
            mailbox=EmailIdentity(
                id="main",
                address=environ["APP_MAILBOX"],
                display_name=environ.get("APP_MAILBOX_NAME", ""),
            ),
            unsubscribe_url=environ["APP_UNSUBSCRIBE_URL"],
            unsubscribe_secret=bytes.fromhex(environ["APP_UNSUBSCRIBE_SECRET"]),
            webhook_token=environ["APP_WEBHOOK_TOKEN"],
            worker_id=environ.get("APP_WORKER_ID", f"api-{os.getpid()}"),
        )


class EstimateIn(BaseModel):
    """The body of ``POST /estimate``: a shape key and lead rows (JSON objects)."""

    shape: str = Field(min_length=1, max_length=64, examples=["email-sequence"])
    leads: list[dict[str, Any]] = Field(min_length=1, max_length=MAX_LEADS)


class CampaignIn(EstimateIn):
    """The body of ``POST /campaigns``."""

    name: str = Field(min_length=1, max_length=200)
    brief: str = Field(min_length=1, max_length=20_000)
    campaign_id: str | None = Field(default=None, min_length=1, max_length=128)


def create_app(
    settings: Settings,
    *,
    email_sender: EmailSender,
    clock: Clock | None = None,
    drafter: Drafter | None = None,
    on_pass: Callable[[DispatchReport], None] | None = None,
    on_shutdown: Sequence[Callable[[], None]] = (),
) -> FastAPI:
    """The app over a SQLite file, with a dispatcher worker that runs with its lifespan.

    Args:
        settings: see :class:`Settings`.
        email_sender: the host's sender (:class:`ESPEmailSender` in production).
        clock: the time source (``SystemClock`` unless a test passes a settable one).
        drafter: writes the drafts (the offline ``TemplateDrafter`` unless given; an
            ``OpenAICompatibleDrafter`` in production).
        on_pass: called in the event loop after each dispatcher pass (metrics).
        on_shutdown: called after the worker stopped and the adapters closed.
    """
    storage = SQLiteStorage(settings.database)
    ledger = SQLiteCreditLedger(settings.database)
    links = UnsubscribeLinks(base_url=settings.unsubscribe_url, secret=settings.unsubscribe_secret)
    service = AsyncCampaignService.from_ports(
        storage=storage,
        ledger=ledger,
        drafter=drafter or TemplateDrafter(),
        clock=clock or SystemClock(),
        email_sender=email_sender,
        unsubscribe_url=links,
    )
    # The worker gets a thread of its own, so a long pass never holds the requests' threads.
    worker_service = AsyncCampaignService(service.service, max_threads=1)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        worker = asyncio.create_task(
            run_worker_async(
                worker_service,
                worker_id=settings.worker_id,
                poll_interval=settings.poll_interval,
                on_pass=on_pass,
            )
        )
        try:
            yield
        finally:
            worker.cancel()  # finishes the send in hand, hands the rest of the pass back
            with contextlib.suppress(asyncio.CancelledError):
                await worker
            await worker_service.aclose()
            await service.aclose()  # waits for the requests' calls in flight
            storage.close()
            ledger.close()
            for close in on_shutdown:
                close()

    app = FastAPI(title="Outreach (starlight_sequences example)", lifespan=lifespan)
    # For the host's other code (billing tops up credits, admin pages): the same service.
    app.state.starlight = service
    app.add_middleware(
        BodyLimit,
        limit_for=lambda path: (
            settings.max_email_bytes
            if path == "/webhooks/inbound-email"
            else settings.max_request_bytes
        ),
    )
    app.add_exception_handler(StarlightError, _starlight_error)
    _campaign_routes(app, service, settings)
    _inbound_routes(app, service, settings, links)
    return app


def _campaign_routes(app: FastAPI, service: AsyncCampaignService, settings: Settings) -> None:
    workspace = settings.workspace_id

    @app.post("/estimate")
    async def estimate(body: EstimateIn) -> dict[str, object]:
        imported = _usable_leads(body.leads)
        return estimate_view(await service.estimate(body.shape, imported.leads), imported)

    @app.post("/campaigns", status_code=201)
    async def create_campaign(body: CampaignIn) -> dict[str, object]:
        imported = _usable_leads(body.leads)
        report = await service.create_campaign(
            workspace,
            name=body.name,
            brief=body.brief,
            shape=body.shape,
            leads=imported.leads,
            email_identity=settings.mailbox,
            campaign_id=body.campaign_id,
        )
        return creation_view(report, imported)

    @app.get("/campaigns/{campaign_id}/preview")
    async def preview(campaign_id: CampaignIdParam) -> dict[str, object]:
        return preview_view(await service.preview(workspace, campaign_id))

    @app.post("/campaigns/{campaign_id}/approve")
    async def approve(campaign_id: CampaignIdParam) -> dict[str, object]:
        campaign = await service.approve(workspace, campaign_id)
        return {"campaign_id": campaign.id, "status": campaign.status.value}

    @app.get("/campaigns/{campaign_id}/status")
    async def status(campaign_id: CampaignIdParam) -> dict[str, object]:
        return status_view(await service.status(workspace, campaign_id))


def _usable_leads(rows: list[dict[str, Any]]) -> LeadImport:
    """The good rows as leads (bad ones listed in the answer); 422 when none is usable."""
    imported = import_leads(rows)
    if not imported.leads:
        raise HTTPException(
            422, {"message": "no lead row is usable", "rejected": problems_view(imported)}
        )
    return imported


def _inbound_routes(
    app: FastAPI, service: AsyncCampaignService, settings: Settings, links: UnsubscribeLinks
) -> None:
    workspace = settings.workspace_id
    expected_token = settings.webhook_token.encode("utf-8")

    @app.post("/webhooks/inbound-email")
    async def inbound_email(
        request: Request, x_webhook_token: Annotated[str, Header()] = ""
    ) -> dict[str, object]:
        if not hmac.compare_digest(x_webhook_token.encode("utf-8"), expected_token):
            raise HTTPException(401, "missing or wrong X-Webhook-Token")
        raw = await read_body(request, limit=settings.max_email_bytes)
        # Any bytes at all are answered 200: a message that is not mail, or concerns nobody,
        # is "unmatched" with a reason. A non-2xx answer would only make the ESP post it again.
        return ingest_view(await service.ingest_email(workspace, raw))

    @app.post("/unsubscribe")
    async def unsubscribe(t: Annotated[str, Query(max_length=4096)]) -> dict[str, object]:
        token_workspace, event = links.event(t, at=service.service.clock.now())
        changed = await service.report_event(token_workspace, event)
        return {"unsubscribed": event.lead_id, "changed": len(changed)}


async def _starlight_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, StarlightError)
    status = status_for(error)
    headers = {"Retry-After": "30"} if status == 503 else None
    return JSONResponse(
        {"error": type(error).__name__, "detail": str(error)}, status_code=status, headers=headers
    )


def app_from_environment() -> FastAPI:
    """The app as ``uvicorn --factory`` starts it: settings and the ESP's key
    (``ESP_API_URL``, ``ESP_API_KEY``) from the environment."""
    settings = Settings.from_environment()
    sender = ESPEmailSender(base_url=os.environ["ESP_API_URL"], api_key=os.environ["ESP_API_KEY"])
    return create_app(settings, email_sender=sender, on_shutdown=[sender.close])
