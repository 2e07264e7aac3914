"""The FastAPI example (examples/fastapi_app) driven through FastAPI's TestClient.

The app runs whole: its lifespan starts the dispatcher worker (``run_worker_async``), the ESP
sender posts to an ``httpx.MockTransport`` that plays the provider, the storage is a SQLite
file, and the clock is a ``SettableClock`` the test moves to each send's due time.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from examples.fastapi_app.app import Settings, app_from_environment, create_app, status_for
from examples.fastapi_app.esp_sender import ESPEmailSender
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from starlight_sequences import EmailIdentity, errors
from starlight_sequences.adapters import SettableClock, SQLiteStorage
from starlight_sequences.campaigns import SendStatus
from starlight_sequences.ids import CampaignId, LeadId, SenderId, WorkspaceId
from starlight_sequences.ports.senders import OutgoingEmail, SendFailure, SendReceipt
from starlight_sequences.service import DispatchReport

MONDAY_EARLY = dt.datetime(2026, 11, 30, 6, 0, tzinfo=dt.UTC)  # before anyone's business hours
TOKEN = "webhook-token-for-tests"
WORKSPACE = "acme"
WAIT = 30.0  # seconds to wait for the worker before failing (it takes milliseconds)

ANN = {
    "id": "ann",
    "first_name": "Ann",
    "company": "Initech",
    "email": "ann@initech.example.com",
    "country": "US",
    "timezone": "America/New_York",
}
DOV = {
    "id": "dov",
    "first_name": "Dov",
    "company": "Tidal",
    "email": "dov@tidal.example.com",
    "country": "IL",
}
BAD_ROW = {"id": "bad", "first_name": "Bad", "email": "not-an-email", "country": "US"}


class FakeESP:
    """The provider's HTTP API: records what it was posted, and when by the app's clock."""

    def __init__(self, clock: SettableClock) -> None:
        self.clock = clock
        self.posted: list[tuple[dt.datetime, dict[str, Any], str]] = []
        self.answer = httpx.Response(202, json={"id": "esp-1"})
        self._lock = threading.Lock()

    def handle(self, request: Any) -> Any:
        with self._lock:
            self.posted.append(
                (self.clock.now(), json.loads(request.content), request.headers["Idempotency-Key"])
            )
        return self.answer

    def sent(self, lead: str) -> list[int]:
        """The steps the ESP received for ``lead``, in order."""
        with self._lock:
            return [step for _, p, _ in self.posted for step in _step_of(p, lead)]

    def payload(self, lead: str, step: int) -> tuple[dt.datetime, dict[str, Any]]:
        with self._lock:
            return next((at, p) for at, p, _ in self.posted if _step_of(p, lead) == [step])


def _step_of(payload: dict[str, Any], lead: str) -> list[int]:
    metadata = payload["metadata"]
    return [metadata["step"]] if metadata["lead_id"] == lead else []


class Passes:
    """Counts the worker's passes (``on_pass`` runs in the app's event loop thread)."""

    def __init__(self) -> None:
        self.count = 0
        self._changed = threading.Condition()

    def __call__(self, report: DispatchReport) -> None:
        with self._changed:
            self.count += 1
            self._changed.notify_all()

    def wait(self, passes: int = 2) -> None:
        """Wait until ``passes`` more passes ended: at least one began after the call."""
        with self._changed:
            target = self.count + passes
            if not self._changed.wait_for(lambda: self.count >= target, timeout=WAIT):
                pytest.fail(f"the worker made no {passes} passes in {WAIT} s")


class Host:
    """The app under test with its fakes."""

    def __init__(self, tmp_path: Path) -> None:
        self.clock = SettableClock(MONDAY_EARLY)
        self.esp = FakeESP(self.clock)
        self.passes = Passes()
        self.sender = ESPEmailSender(
            base_url="https://api.esp.example",
            api_key="test-key",
            transport=httpx.MockTransport(self.esp.handle),
        )
        self.settings = Settings(
            database=tmp_path / "app.sqlite3",
            workspace_id=WORKSPACE,
            mailbox=EmailIdentity(id="ada", address="ada@nimbus.example.com", display_name="Ada"),
            unsubscribe_url="https://app.nimbus.example.com/unsubscribe",
            unsubscribe_secret=secrets.token_bytes(32),
            webhook_token=TOKEN,
            poll_interval=0.01,
            max_request_bytes=200_000,
            max_email_bytes=100_000,
        )
        self.app = create_app(
            self.settings,
            email_sender=self.sender,
            clock=self.clock,
            on_pass=self.passes,
            on_shutdown=[self.sender.close],
        )

    def top_up(self, amount: int) -> None:
        self.app.state.starlight.service.top_up(WORKSPACE, amount)


@pytest.fixture
def host(tmp_path: Path) -> Host:
    return Host(tmp_path)


@pytest.fixture
def client(host: Host) -> Iterator[TestClient]:
    with TestClient(host.app) as client:  # runs the lifespan: the worker starts and stops
        yield client


def create_campaign(client: TestClient, *leads: dict[str, Any], campaign_id: str = "q1") -> Any:
    return client.post(
        "/campaigns",
        json={
            "name": "Q1",
            "brief": "We cut cloud bills by 30% for data teams.",
            "shape": "email-sequence",
            "leads": list(leads),
            "campaign_id": campaign_id,
        },
    )


def advance_to_next_send(host: Host, client: TestClient, campaign: str) -> bool:
    """Move the clock to the next scheduled send and let the worker pass; False when none."""
    contacts = client.get(f"/campaigns/{campaign}/status").json()["contacts"]
    due = [dt.datetime.fromisoformat(c["next_send_utc"]) for c in contacts if c["next_send_utc"]]
    if not due:
        return False
    host.clock.set(max(host.clock.now(), min(due)))
    host.passes.wait()
    return True


def run_until_nothing_is_scheduled(host: Host, client: TestClient, campaign: str) -> None:
    for _ in range(40):
        if not advance_to_next_send(host, client, campaign):
            return
    pytest.fail("sends still scheduled after 40 rounds")


def reply_email(payload: dict[str, Any], text: str) -> bytes:
    message_id = payload["headers"]["Message-ID"]
    return (
        f"From: Ann <{payload['to'][0]['email']}>\r\n"
        f"To: {payload['from']['email']}\r\n"
        f"Subject: Re: {payload['subject']}\r\n"
        "Message-ID: <reply-1@initech.example.com>\r\n"
        f"In-Reply-To: {message_id}\r\nReferences: {message_id}\r\n"
        "Date: Mon, 30 Nov 2026 15:30:00 +0000\r\n\r\n"
        f"{text}\r\n"
    ).encode()


def post_email(client: TestClient, raw: bytes, token: str = TOKEN) -> Any:
    return client.post(
        "/webhooks/inbound-email",
        content=raw,
        headers={"X-Webhook-Token": token, "Content-Type": "message/rfc822"},
    )


# --------------------------------------------------------------------------- the whole journey


def test_created_previewed_approved_campaign_is_sent_on_time_and_a_reply_stops_the_rest(
    host: Host, client: TestClient
) -> None:
    host.top_up(500)
    estimate = client.post("/estimate", json={"shape": "email-sequence", "leads": [ANN, DOV]})
    assert estimate.json()["total"] == 36  # 6 drafts of 4 credits, 6 sends of 2
    created = create_campaign(client, ANN, DOV, BAD_ROW)
    assert created.status_code == 201, created.text
    body = created.json()
    assert (body["enrolled"], body["status"]) == (2, "draft")
    assert {(r["lead"], r["field"]) for r in body["rejected"]} == {("bad", "email")}

    preview = client.get("/campaigns/q1/preview").json()
    assert [r["lead_id"] for r in preview["recipients"]] == ["ann", "dov"]
    dov = preview["recipients"][1]
    assert dov["timezone"] == "Asia/Jerusalem"  # derived from IL, with its reason
    assert dov["timezone_reason"]
    assert [s["step"] for s in dov["steps"]] == [1, 2, 3]
    assert all(s["body"] and s["due_local"] for s in dov["steps"])

    host.passes.wait()
    assert host.esp.posted == []  # nothing goes out before approval
    approved = client.post("/campaigns/q1/approve")
    assert approved.json() == {"campaign_id": "q1", "status": "active"}
    planned = {
        (r["lead_id"], s["step"]): dt.datetime.fromisoformat(s["due_utc"])
        for r in client.get("/campaigns/q1/preview").json()["recipients"]
        for s in r["steps"]
    }
    host.passes.wait()
    assert host.esp.posted == []  # approved at 06:00 UTC: before anyone's business hours

    # The worker sends each first email once the clock reaches its due time, not before.
    for _ in range(10):
        if host.esp.sent("ann") and host.esp.sent("dov"):
            break
        assert advance_to_next_send(host, client, "q1")
    for lead in ("ann", "dov"):
        sent_at, _ = host.esp.payload(lead, 1)
        assert sent_at >= planned[(lead, 1)]
    _, first_to_ann = host.esp.payload("ann", 1)
    assert first_to_ann["headers"]["List-Unsubscribe"].startswith(
        "<https://app.nimbus.example.com/unsubscribe?t="
    )

    # Ann replies to her first email: the ESP posts the raw message to the webhook.
    raw = reply_email(first_to_ann, "Happy to talk next week.")
    answer = post_email(client, raw)
    assert answer.status_code == 200
    assert answer.json() | {"reason": ""} == {
        "kind": "reply",
        "event": "reply",
        "applied": True,
        "lead_id": "ann",
        "campaign_id": "q1",
        "matched_by": "message_id",
        "reason": "",
    }
    assert post_email(client, raw).json()["applied"] is False  # the ESP retried: no change

    run_until_nothing_is_scheduled(host, client, "q1")

    assert host.esp.sent("ann") == [1]  # her follow-ups stopped
    assert host.esp.sent("dov") == [1, 2, 3]
    _, follow_up = host.esp.payload("dov", 2)
    _, first_to_dov = host.esp.payload("dov", 1)
    assert follow_up["headers"]["In-Reply-To"] == first_to_dov["headers"]["Message-ID"]
    contacts = {c["lead_id"]: c for c in client.get("/campaigns/q1/status").json()["contacts"]}
    assert contacts["ann"]["status"] == "replied"
    assert contacts["dov"]["status"] == "completed"


def test_the_unsubscribe_link_of_a_sent_email_stops_its_contact(
    host: Host, client: TestClient
) -> None:
    host.top_up(500)
    assert create_campaign(client, DOV).status_code == 201
    assert client.post("/campaigns/q1/approve").status_code == 200
    for _ in range(10):
        if host.esp.sent("dov"):
            break
        assert advance_to_next_send(host, client, "q1")
    _, payload = host.esp.payload("dov", 1)
    link = payload["headers"]["List-Unsubscribe"].strip("<>")

    answer = client.post(link.removeprefix("https://app.nimbus.example.com"))

    assert answer.status_code == 200, answer.text
    assert answer.json()["unsubscribed"] == "dov"
    contacts = client.get("/campaigns/q1/status").json()["contacts"]
    assert contacts[0]["status"] == "unsubscribed"
    forged = client.post("/unsubscribe", params={"t": link.rpartition("=")[2][:-2] + "xx"})
    assert forged.status_code == 400
    assert "unsubscribe token" in forged.json()["detail"]


def test_stopping_the_app_stops_the_worker_and_leaves_no_send_claimed(host: Host) -> None:
    host.top_up(500)
    with TestClient(host.app) as client:
        assert create_campaign(client, ANN, DOV).status_code == 201
        assert client.post("/campaigns/q1/approve").status_code == 200
        host.clock.set(dt.datetime(2026, 11, 30, 14, 30, tzinfo=dt.UTC))
        host.passes.wait()
    passes = host.passes.count

    storage = SQLiteStorage(host.settings.database)
    try:
        sends = storage.list_sends(WorkspaceId(WORKSPACE), CampaignId("q1"))
    finally:
        storage.close()
    assert sends
    assert not [s for s in sends if s.status is SendStatus.CLAIMED]
    assert host.passes.count == passes  # no pass after the lifespan ended


def test_the_app_starts_from_its_environment_as_uvicorn_would(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    environment = {
        "APP_DATABASE": str(tmp_path / "env.sqlite3"),
        "APP_WORKSPACE": "acme",
        "APP_MAILBOX": "ada@nimbus.example.com",
        "APP_UNSUBSCRIBE_URL": "https://app.nimbus.example.com/unsubscribe",
        "APP_UNSUBSCRIBE_SECRET": secrets.token_hex(32),
        "APP_WEBHOOK_TOKEN": TOKEN,
        "ESP_API_URL": "https://api.esp.example",
        "ESP_API_KEY": "key",
    }
    for key, value in environment.items():
        monkeypatch.setenv(key, value)

    with TestClient(app_from_environment()) as client:
        assert client.get("/campaigns/q1/status").status_code == 404
        assert post_email(client, b"From: x@y.example\r\n\r\nhi").status_code == 200

    assert (tmp_path / "env.sqlite3").exists()


# --------------------------------------------------------------------------- hostile input


def test_an_unknown_campaign_is_404_naming_it(client: TestClient) -> None:
    for answer in (
        client.get("/campaigns/nope/preview"),
        client.post("/campaigns/nope/approve"),
        client.get("/campaigns/nope/status"),
    ):
        assert answer.status_code == 404
        assert answer.json()["error"] == "CampaignNotFound"
        assert "'nope'" in answer.json()["detail"]


def test_too_few_credits_is_402_and_nothing_is_created(host: Host, client: TestClient) -> None:
    answer = create_campaign(client, ANN)
    assert answer.status_code == 402
    assert "credits needed" in answer.json()["detail"]
    assert client.get("/campaigns/q1/preview").status_code == 404


def test_bad_lead_rows_are_422_listing_every_problem(host: Host, client: TestClient) -> None:
    host.top_up(500)
    hostile: list[dict[str, Any]] = [
        BAD_ROW,
        {"id": "x", "email": ["a list"], "country": {"nested": 1}, "timezone": "Mars/Base"},
        {"id": 7, "linkedin_url": "https://example.com/not-a-profile", "fields": [1, 2]},
        {"\x00": "\x00" * 1000},
        {},
    ]
    answer = create_campaign(client, *hostile)
    assert answer.status_code == 422, answer.text
    rejected = answer.json()["detail"]["rejected"]
    assert {r["row"] for r in rejected} == {1, 2, 3, 4, 5}
    assert all(r["reason"] for r in rejected)


KNOWN_KEYS = ["id", "email", "first_name", "company", "country", "timezone", "subdivision"]
LEAD_KEYS = st.sampled_from([*KNOWN_KEYS, "linkedin_url", "linkedin_connected", "fields", "tz"])
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
    | st.sampled_from(["US", "IL", "x@y.example", "Europe/Paris"])
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)

ROWS = st.dictionaries(LEAD_KEYS | st.text(max_size=8), JSON_VALUES, max_size=6)


def test_lead_rows_of_any_json_are_answered_without_a_server_error(
    host: Host, client: TestClient
) -> None:
    host.top_up(100_000)

    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
    @given(
        st.lists(
            st.dictionaries(LEAD_KEYS | st.text(max_size=8), JSON_VALUES, max_size=6),
            min_size=1,
            max_size=4,
        )
    )
    def check(rows: list[dict[str, Any]]) -> None:
        answer = client.post(
            "/campaigns", json={"name": "n", "brief": "b", "shape": "cold-email", "leads": rows}
        )
        assert answer.status_code in (201, 400, 422), answer.text

    check()


def test_malformed_requests_are_4xx_never_500(host: Host, client: TestClient) -> None:
    host.top_up(500)
    assert client.post("/campaigns", content=b"{not json").status_code == 422
    assert client.post("/campaigns", json={"leads": "everyone"}).status_code == 422
    assert client.post("/campaigns", json=[1, 2, 3]).status_code == 422
    unknown_shape = client.post(
        "/campaigns", json={"name": "x", "brief": "y", "shape": "spam-blast", "leads": [ANN]}
    )
    assert unknown_shape.status_code == 400
    assert "spam-blast" in unknown_shape.json()["detail"]
    estimate = client.post("/estimate", json={"shape": "spam-blast", "leads": [ANN]})
    assert estimate.status_code == 400
    assert (
        client.post("/estimate", json={"shape": "cold-email", "leads": [BAD_ROW]}).status_code
        == 422
    )
    assert create_campaign(client, ANN).status_code == 201
    duplicate = create_campaign(client, DOV)
    assert duplicate.status_code == 400
    assert "q1" in duplicate.json()["detail"]
    assert client.get("/campaigns/" + "x" * 500 + "/preview").status_code == 422


def test_bodies_over_the_limit_are_413_before_they_are_read(client: TestClient) -> None:
    huge = b'{"leads": [' + b'{"id": "a"},' * 50_000 + b"{}]}"
    answer = client.post("/campaigns", content=huge, headers={"Content-Type": "application/json"})
    assert answer.status_code == 413

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        yield b'{"leads": ['
        for _ in range(50_000):
            yield b'{"id": "a"},'
        yield b"{}]}"

    json_type = {"Content-Type": "application/json"}
    streamed = client.post("/campaigns", content=chunks(), headers=json_type)
    assert streamed.status_code == 413
    assert post_email(client, b"x" * 200_000).status_code == 413
    assert post_email(client, (b"x" * 1000 for _ in range(200))).status_code == 413


def test_the_inbound_webhook_needs_its_token_and_takes_any_bytes(client: TestClient) -> None:
    assert post_email(client, b"From: a@b.example\r\n\r\nhi", token="wrong").status_code == 401
    assert client.post("/webhooks/inbound-email", content=b"x").status_code == 401
    for raw in (b"", b"\x00\xff binary", b"From: nobody@else.example\r\n\r\nhello", b"\r\n" * 5000):
        answer = post_email(client, raw)
        assert answer.status_code == 200
        assert answer.json()["applied"] is False
        assert answer.json()["kind"] == "unmatched" or answer.json()["lead_id"] is None


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (errors.InvalidLead("ann", "email", "not an address"), 400),
        (errors.UnknownShape("x", ["cold-email"]), 400),
        (errors.CampaignNotFound("campaign 'q9' not found"), 404),
        (errors.InsufficientCredits("acme", 10, 2), 402),
        (errors.DraftsNeedAttention("q1", ["ann step 1: empty body"]), 409),
        (errors.IllegalTransition("campaign 'q1' is cancelled"), 409),
        (errors.ConcurrentUpdate("changed"), 409),
        (errors.StorageError("database is locked"), 503),
        (errors.StarlightError("something new"), 500),
    ],
)
def test_each_kind_of_library_error_has_its_http_status(
    error: errors.StarlightError, status: int
) -> None:
    assert status_for(error) == status


# --------------------------------------------------------------------------- the ESP sender


def outgoing(key: str = "q1.ann.1") -> OutgoingEmail:
    return OutgoingEmail(
        idempotency_key=key,
        sender_id=SenderId("ada"),
        from_address="ada@nimbus.example.com",
        from_name="Ada",
        to_address="ann@initech.example.com",
        to_name="Ann",
        subject="Hi",
        body="Hello",
        campaign_id=CampaignId("q1"),
        lead_id=LeadId("ann"),
        step=1,
    )


def sender_answering(*answers: Any) -> tuple[ESPEmailSender, list[Any]]:
    requests: list[Any] = []
    replies = iter(answers)

    def handle(request: Any) -> Any:
        requests.append(request)
        answer = next(replies)
        if isinstance(answer, Exception):
            raise answer
        return answer

    transport = httpx.MockTransport(handle)
    sender = ESPEmailSender(base_url="https://api.esp.example", api_key="k", transport=transport)
    return sender, requests


def test_the_esp_sender_posts_a_key_once_and_returns_the_same_message_id() -> None:
    sender, requests = sender_answering(httpx.Response(202))
    first = sender.send_email(outgoing())
    again = sender.send_email(outgoing())
    assert isinstance(first, SendReceipt)
    assert again == first
    assert len(requests) == 1
    assert requests[0].headers["Idempotency-Key"] == "q1.ann.1"
    assert requests[0].headers["Authorization"] == "Bearer k"
    assert first.message_id.endswith("@nimbus.example.com>")


def test_the_esp_sender_maps_refusals_to_permanent_and_outages_to_transient_failures() -> None:
    sender, _ = sender_answering(
        httpx.Response(422, text="invalid recipient"),
        httpx.Response(429, headers={"Retry-After": "120"}),
        httpx.ConnectError("refused"),
    )
    refused = sender.send_email(outgoing("a"))
    limited = sender.send_email(outgoing("b"))
    unreachable = sender.send_email(outgoing("c"))
    assert refused == SendFailure(permanent=True, reason="ESP answered 422: invalid recipient")
    assert isinstance(limited, SendFailure)
    assert (limited.permanent, limited.retry_after) == (False, dt.timedelta(minutes=2))
    assert isinstance(unreachable, SendFailure)
    assert not unreachable.permanent
