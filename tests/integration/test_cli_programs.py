"""The ``starlight`` command as a user runs it: a real process (``python -m
starlight_sequences``), its exit code, stdout and stderr — ``--version``, ``--json`` on every
listing and reporting subcommand, ``run`` over real SMTP (an aiosmtpd server on 127.0.0.1),
and the demo on a stdout that cannot encode its symbols."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import email.utils
import json
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import starlight_sequences
from tests.integration.test_cli import GOOD_CSV

pytest.importorskip("aiosmtpd.controller")

from tests.integration.test_smtp_sender import (
    Server,
    _authenticate,
    _serve,
    _server_context,
    certificate,
)

__all__ = ["certificate"]  # a fixture, imported to be used here

MONDAY = dt.datetime(2026, 11, 30, 6, 0, tzinfo=dt.UTC)
PROGRAM = [sys.executable, "-m", "starlight_sequences"]
# The same program with a fixed clock, for runs that must find sends due at a known moment
# (the real clock would find the recipients' business hours open or closed by chance).
AT_CLOCK = (
    "import sys, datetime as dt\n"
    "from starlight_sequences.cli import main\n"
    "from starlight_sequences.adapters.clock import SettableClock\n"
    "sys.exit(main(sys.argv[2:], clock=SettableClock(dt.datetime.fromisoformat(sys.argv[1]))))"
)


def _environment(db: Path, **extra: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("STARLIGHT_") or key == "STARLIGHT_PG_DSN"
    }
    env["STARLIGHT_DB"] = str(db)
    env["STARLIGHT_UNSUBSCRIBE_MAILTO"] = "unsubscribe@acme.example.com"
    env.update(extra)
    return env


def starlight(
    db: Path, *argv: str, at: dt.datetime | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    """Run the program (with the clock at ``at``, when given) and return what it did."""
    command = [*PROGRAM] if at is None else [sys.executable, "-c", AT_CLOCK, at.isoformat()]
    return subprocess.run(
        [*command, *argv],
        env=_environment(db, **env),
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return result.stdout


def one_line_error(result: subprocess.CompletedProcess[str], code: int, *words: str) -> str:
    assert result.returncode == code, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for word in words:
        assert word in lines[0], (word, lines[0])
    return lines[0]


@pytest.fixture
def approved(tmp_path: Path) -> Path:
    """A database with campaign q1 (4 leads, email → LinkedIn) created and approved on
    Monday 2026-11-30; returns the database's path."""
    db = tmp_path / "data" / "starlight.sqlite3"
    leads = tmp_path / "leads.csv"
    leads.write_text(GOOD_CSV, encoding="utf-8")
    ok(starlight(db, "credits", "top-up", "500", at=MONDAY))
    create = [
        *("create", "--name", "Q1", "--brief", "We cut cloud bills by 30%."),
        *("--shape", "email-linkedin", "--leads", str(leads), "--campaign-id", "q1"),
        *("--mailbox", "ada@nimbus.example.com", "--linkedin-account", "ada-li"),
    ]
    ok(starlight(db, *create, at=MONDAY))
    ok(starlight(db, "approve", "q1", at=MONDAY))
    return db


# --------------------------------------------------------------------------- the program


def test_version_prints_the_package_version_and_exits_zero(tmp_path: Path) -> None:
    result = starlight(tmp_path / "none.sqlite3", "--version")
    assert ok(result) == f"starlight {starlight_sequences.__version__}\n"
    assert re.fullmatch(r"\d+\.\d+\.\d+", starlight_sequences.__version__)


def test_python_dash_m_starlight_sequences_is_the_starlight_command(tmp_path: Path) -> None:
    db = tmp_path / "s.sqlite3"
    assert "usage: starlight" in ok(starlight(db, "--help"))
    assert "30 available" in ok(starlight(db, "credits", "top-up", "30"))
    one_line_error(starlight(db, "status", "nope"), 1, "starlight status: error:", "'nope'")


# --------------------------------------------------------------------------- --json


def _json(result: subprocess.CompletedProcess[str]) -> Any:
    text = ok(result)
    assert text.isascii()
    return json.loads(text)


CAMPAIGN_KEYS = {"id", "name", "status", "shape", "created_utc", "approved_utc"}


def test_campaigns_json_lists_every_campaign_with_its_status(approved: Path) -> None:
    document = _json(starlight(approved, "campaigns", "--json"))
    assert document["workspace"] == "default"
    (campaign,) = document["campaigns"]
    assert set(campaign) == CAMPAIGN_KEYS
    assert campaign["id"] == "q1"
    assert campaign["status"] == "active"
    assert campaign["approved_utc"] == "2026-11-30T06:00:00Z"


def test_status_json_gives_each_contact_its_next_send_in_utc_and_local_time(
    approved: Path,
) -> None:
    document = _json(starlight(approved, "status", "q1", "--json"))
    assert set(document) == {
        *("campaign", "contacts", "counts", "waiting_on_connections", "variants", "held_senders"),
    }
    assert document["variants"] == []  # no A/B step in this shape
    assert document["held_senders"] == []
    contacts = {c["lead_id"]: c for c in document["contacts"]}
    assert set(contacts) == {"maya", "james", "lukas"}
    james = contacts["james"]
    assert set(james) == {
        *("lead_id", "name", "step", "action", "status", "send_status", "timezone"),
        *("next_send_utc", "next_send_local", "reason"),
    }
    assert james["next_send_utc"] == "2026-11-30T14:00:00Z"
    assert james["next_send_local"] == "2026-11-30T09:00:00-05:00"
    assert james["timezone"] == "America/New_York"
    assert {"step": 1, "status": "scheduled", "count": 2} in document["counts"]
    assert document["waiting_on_connections"] == 0


def test_preview_json_has_every_step_with_its_draft_and_the_timezone_source(
    approved: Path,
) -> None:
    document = _json(starlight(approved, "preview", "q1", "--lead", "maya", "--json"))
    (maya,) = document["recipients"]
    assert maya["lead"]["id"] == "maya"
    assert maya["timezone"] == "Asia/Jerusalem"
    assert maya["assumed_timezone"] is None
    assert maya["timezone_reason"] == ""
    first = maya["steps"][0]
    assert set(first) == {"step", "action", "due_utc", "due_local", "status", "gated"} | {
        "reason",
        "draft",
        "variant",
        "sender_id",
    }
    assert first["variant"] is None
    assert first["sender_id"] == "ada@nimbus.example.com"
    assert first["due_local"] == "2026-11-30T09:00:00+02:00"
    assert set(first["draft"]) == {"subject", "body", "version", "edited", "needs_attention"} | {
        "problem"
    }
    assert {e["lead_id"] for e in document["excluded"]} == {"sam"}
    assert document["needs_attention"] == []


def test_credits_json_gives_the_balance_and_the_journal(approved: Path) -> None:
    document = _json(starlight(approved, "credits", "--json"))
    assert set(document) == {"workspace", "available", "reserved", "movements"}
    assert document["available"] + document["reserved"] < 500
    kinds = {m["kind"] for m in document["movements"]}
    assert {"top_up", "reserve"} <= kinds
    assert set(document["movements"][0]) == {"kind", "amount", "campaign_id", "lead_id", "note"}


def test_estimate_json_without_a_database_has_no_balance(tmp_path: Path) -> None:
    leads = tmp_path / "leads.csv"
    leads.write_text(GOOD_CSV, encoding="utf-8")
    document = _json(
        starlight(
            tmp_path / "none.sqlite3",
            *("estimate", "--shape", "email-sequence", "--leads", str(leads), "--json"),
        )
    )
    assert document["shape"] == "email-sequence"
    assert document["leads"] == 4
    assert document["reachable"] == 2
    assert document["total"] == sum(e["total"] for e in document["per_lead"])
    assert document["available"] is None
    assert {e["lead_id"] for e in document["excluded"]} == {"lukas", "sam"}


def test_timeline_json_has_numbered_nodes_and_the_waits_between_them(approved: Path) -> None:
    shape = _json(starlight(approved, "timeline", "q1", "--json"))
    assert [n["position"] for n in shape["nodes"]] == [1, 2, 3]
    assert [w["business_days"] for w in shape["waits"]] == [2, 1]
    assert shape["waits"][1]["counts_from"] == "connection_accepted"
    lead = _json(starlight(approved, "timeline", "q1", "--lead", "james", "--json"))
    assert lead["nodes"][0]["at_utc"] == "2026-11-30T14:00:00Z"
    assert lead["nodes"][0]["timezone"] == "America/New_York"


def test_tasks_json_lists_waiting_leads_and_pending_tasks(approved: Path) -> None:
    at = dt.datetime(2026, 11, 30, 14, 45, tzinfo=dt.UTC)
    ok(starlight(approved, "run", "--once", at=at))
    document = _json(starlight(approved, "tasks", "--json"))
    assert set(document) == {"waiting_on_connections", "task_file", "pending_tasks"}
    (task,) = document["pending_tasks"]
    assert task["lead_id"] == "lukas"
    assert task["action"] == "linkedin_connect"
    assert set(task) == {
        *("id", "action", "campaign_id", "lead_id", "step", "recipient_name"),
        *("profile_url", "text", "status"),
    }


def test_json_escapes_what_a_terminal_would_act_on(tmp_path: Path) -> None:
    db = tmp_path / "s.sqlite3"
    ok(starlight(db, "credits", "top-up", "5", "--note", "Zoë \x1b[2J"))
    text = ok(starlight(db, "credits", "--json"))
    assert "\x1b" not in text
    assert json.loads(text)["movements"][0]["note"] == "Zoë \x1b[2J"


# --------------------------------------------------------------------------- run over SMTP


@pytest.fixture
def tls_server(certificate: tuple[Path, Path]) -> Iterator[Server]:
    yield from _serve(
        tls_context=_server_context(certificate),
        require_starttls=True,
        authenticator=_authenticate,
        auth_require_tls=True,
    )


@pytest.fixture
def plain_server() -> Iterator[Server]:
    yield from _serve(authenticator=_authenticate, auth_require_tls=False)


RUN_AT = dt.datetime(2026, 11, 30, 14, 45, tzinfo=dt.UTC)


def test_run_sends_over_starttls_with_the_password_from_the_environment(
    approved: Path, tls_server: Server, certificate: tuple[Path, Path]
) -> None:
    url = f"smtp+starttls://sam@127.0.0.1:{tls_server.port}"
    options = ["--smtp", url, "--smtp-cafile", str(certificate[0]), "--smtp-timeout", "10"]
    for minute in (RUN_AT, RUN_AT + dt.timedelta(minutes=15)):
        out = ok(
            starlight(
                approved, "run", "--once", *options, at=minute, STARLIGHT_SMTP_PASSWORD="s3cret"
            )
        )
        assert " sent" in out
    received = tls_server.handler.messages
    assert sorted(str(m["To"]) for m in received) == [
        "James Porter <james@quarry.example.com>",
        "Maya Cohen <maya@tidal.example.com>",
    ]
    # The Date header is the clock's, not the wall clock's.
    dates = [email.utils.parsedate_to_datetime(str(m["Date"])) for m in received]
    assert dates == [RUN_AT, RUN_AT + dt.timedelta(minutes=15)]
    assert not (approved.parent / "outbox").exists()
    log = _json(starlight(approved, "status", "q1", "--json"))
    assert {"step": 1, "status": "sent", "count": 2} in log["counts"]


def test_run_reads_the_smtp_url_from_the_environment_and_relays_in_plain_text_if_told(
    approved: Path, plain_server: Server
) -> None:
    env = {
        "STARLIGHT_SMTP_URL": f"smtp://127.0.0.1:{plain_server.port}",
        "STARLIGHT_SMTP_PASSWORD": "s3cret",
    }
    refused = starlight(approved, "run", "--once", "--smtp-user", "sam", at=RUN_AT, **env)
    line = one_line_error(refused, 1, "unencrypted", "allow_plaintext_auth")
    assert "s3cret" not in line
    out = ok(
        starlight(
            approved,
            *("run", "--once", "--smtp-user", "sam", "--smtp-plaintext-auth"),
            at=RUN_AT,
            **env,
        )
    )
    assert " sent" in out
    assert len(plain_server.handler.messages) == 1


def test_a_password_in_the_smtp_url_is_refused_without_echoing_it(approved: Path) -> None:
    result = starlight(
        approved, "run", "--once", "--smtp", "smtps://sam:hunter2@127.0.0.1:1", at=RUN_AT
    )
    line = one_line_error(result, 2, "STARLIGHT_SMTP_PASSWORD", "***")
    assert "hunter2" not in result.stderr + result.stdout
    assert line.startswith("starlight run: error: --smtp:")


@pytest.mark.parametrize(
    ("url", "env", "words"),
    [
        ("smtp+starttls://sam@127.0.0.1:1", {}, ["set its password", "STARLIGHT_SMTP_PASSWORD"]),
        ("smtp+starttls://127.0.0.1:1", {"STARLIGHT_SMTP_PASSWORD": "x"}, ["names no user"]),
        ("http://127.0.0.1", {}, ["not an SMTP URL"]),
        ("smtps://127.0.0.1:99999", {}, ["port"]),
    ],
)
def test_smtp_settings_that_cannot_work_are_a_usage_error(
    approved: Path, url: str, env: dict[str, str], words: list[str]
) -> None:
    result = starlight(approved, "run", "--once", "--smtp", url, at=RUN_AT, **env)
    one_line_error(result, 2, *words)


# --------------------------------------------------------------------------- demo


def test_the_demo_degrades_on_an_ascii_stdout_and_says_how_to_look_at_its_result(
    tmp_path: Path,
) -> None:
    out = tmp_path / "demo"
    result = subprocess.run(
        [*PROGRAM, "demo", "--out", str(out)],
        env=_environment(tmp_path / "unused.sqlite3", PYTHONIOENCODING="ascii"),
        capture_output=True,
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr.decode("ascii", "replace")
    text = result.stdout.decode("ascii")  # nothing but ASCII came out
    assert "James replied" in text
    assert "email #1 to" in text
    # The closing lines name the demo's database and workspace; what they say works.
    command = next(line for line in text.splitlines() if "starlight campaigns" in line)
    argv = shlex.split(command)[1:]
    assert "--workspace" in argv
    listing = subprocess.run(
        [*PROGRAM, *argv],
        env=_environment(tmp_path / "unused.sqlite3"),
        capture_output=True,
        text=True,
        check=False,
    )
    assert "q1-cloud-costs" in ok(listing)
    # The outbox's Date headers follow the simulated clock (four weeks from 2026-11-30).
    dates = []
    for path in (out / "outbox").glob("*.eml"):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        dates.append(email.utils.parsedate_to_datetime(str(message["Date"])))
    assert dates
    assert all(MONDAY <= d <= MONDAY + dt.timedelta(days=28) for d in dates)


def test_a_command_on_an_ascii_stdout_escapes_what_it_cannot_encode(tmp_path: Path) -> None:
    db = tmp_path / "s.sqlite3"
    ok(starlight(db, "credits", "top-up", "5", "--note", "Zoë → 東京"))
    result = starlight(db, "credits", PYTHONIOENCODING="ascii")
    assert "Zo\\xeb \\u2192 \\u6771\\u4eac" in ok(result)
