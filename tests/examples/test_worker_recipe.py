"""The production worker recipe (examples/worker): the systemd unit's own command line runs.

The ``ExecStart`` line is read from ``starlight-worker.service``, its paths swapped for
temporary ones (the program, the database), and run as a process with the environment file's
variables, against the database ``starlight demo`` made plus one campaign that is due now: once
with ``--once``, and once as systemd runs it, stopped with the unit's ``KillSignal``.
``systemd-analyze verify`` checks the unit where it is installed.
"""

from __future__ import annotations

import configparser
import datetime as dt
import email
import email.policy
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import starlight_sequences
from starlight_sequences import CampaignService, CampaignSettings, EmailIdentity, Lead
from starlight_sequences.adapters import (
    SettableClock,
    SQLiteCreditLedger,
    SQLiteStorage,
    TemplateDrafter,
)
from starlight_sequences.calendar import BusinessCalendar, BusinessHours
from starlight_sequences.unsubscribe import UnsubscribeLinks

pytest.importorskip("aiosmtpd.controller")
aiosmtpd_smtp = pytest.importorskip("aiosmtpd.smtp")

from tests.integration.test_smtp_sender import (  # noqa: E402
    Server,
    _serve,
    _server_context,
    certificate,
)

__all__ = ["certificate"]  # a fixture, imported to be used here

RECIPE = Path(__file__).resolve().parents[2] / "examples" / "worker"
UNIT = RECIPE / "starlight-worker.service"
ENV_FILE = RECIPE / "starlight.env.example"
# The production paths the unit names, and what the tests put in their place.
PROGRAM = "/opt/starlight/venv/bin/starlight"
DATABASE = "/var/lib/starlight/starlight.sqlite3"
ENVIRONMENT_FILE = "/etc/starlight/worker.env"
SOURCE = Path(starlight_sequences.__file__).resolve().parents[1]
SECRET = "0123456789abcdef0123456789abcdef"
ALL_DAY = BusinessHours(open=dt.time(0), close=dt.time(23, 59))
# Between them, one of these is on a business day at any moment (Mon–Fri, Sun–Thu, Sat–Thu).
CANDIDATES = (("US", "America/New_York"), ("IL", "Asia/Jerusalem"), ("IR", "Asia/Tehran"))


def unit() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.optionxform = str  # keys keep their case
    parser.read(UNIT, encoding="utf-8")
    return parser


def environment_file() -> dict[str, str]:
    lines = ENV_FILE.read_text(encoding="utf-8").splitlines()
    pairs = [line.split("=", 1) for line in lines if line.strip() and not line.startswith("#")]
    return {key.strip(): value.strip() for key, value in pairs}


def exec_start(program: Path, database: Path) -> list[str]:
    """The unit's ExecStart, word by word, with the production paths swapped."""
    argv = shlex.split(unit()["Service"]["ExecStart"])
    assert argv[0] == PROGRAM
    assert DATABASE in argv
    swap = {PROGRAM: str(program), DATABASE: str(database)}
    return [swap.get(word, word) for word in argv]


def worker_environment(outbox_instead_of_smtp: bool = True) -> dict[str, str]:
    """The process environment: the environment file's variables with test values (no mail
    server here: without ``STARLIGHT_SMTP_URL`` the worker writes to the outbox folder)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STARLIGHT_")}
    env.update(environment_file())
    env["STARLIGHT_UNSUBSCRIBE_SECRET"] = SECRET
    if outbox_instead_of_smtp:
        del env["STARLIGHT_SMTP_URL"], env["STARLIGHT_SMTP_PASSWORD"]
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SOURCE), env.get("PYTHONPATH")]))
    return env


@pytest.fixture(scope="module")
def demo_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("demo") / "demo"
    env = {k: v for k, v in os.environ.items() if not k.startswith("STARLIGHT_")}
    env["PYTHONPATH"] = str(SOURCE)
    made = subprocess.run(
        [sys.executable, "-m", "starlight_sequences", "demo", "--out", str(folder)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert made.returncode == 0, made.stderr
    return folder


@pytest.fixture
def program(tmp_path: Path) -> Path:
    """An executable standing in for the venv's ``starlight`` script."""
    path = tmp_path / "bin" / "starlight"
    path.parent.mkdir()
    path.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -m starlight_sequences "$@"\n')
    path.chmod(0o755)
    return path


def lead_in_business_hours(now: dt.datetime) -> Lead:
    """A lead whose country is on a business day from two hours ago to a few minutes ahead."""
    for country, zone in CANDIDATES:
        calendar = BusinessCalendar(country=country, timezone=zone, hours=ALL_DAY)
        moments = (now - dt.timedelta(hours=2), now, now + dt.timedelta(minutes=10))
        if all(calendar.next_business_moment(m) == m for m in moments):
            return Lead(
                id="due-now",
                first_name="Noa",
                company="Kite",
                email="noa@kite.example.com",
                country=country,
                timezone=zone,
            )
    pytest.skip(f"no candidate country is on a business day at {now:%Y-%m-%d %H:%M} UTC")


@pytest.fixture
def database(demo_folder: Path, tmp_path: Path) -> Path:
    """The demo's database, plus a campaign approved two hours ago whose first email is due."""
    folder = shutil.copytree(demo_folder, tmp_path / "state")
    path = folder / "starlight.sqlite3"
    now = dt.datetime.now(dt.UTC)
    lead = lead_in_business_hours(now)
    storage, ledger = SQLiteStorage(path), SQLiteCreditLedger(path)
    try:
        service = CampaignService(
            storage=storage,
            ledger=ledger,
            drafter=TemplateDrafter(),
            clock=SettableClock(now - dt.timedelta(hours=2)),
            unsubscribe_url=UnsubscribeLinks(
                base_url=environment_file()["STARLIGHT_UNSUBSCRIBE_URL"], secret=SECRET.encode()
            ),
        )
        service.top_up("demo", 100)
        service.create_campaign(
            "demo",
            name="Due now",
            brief="We cut cloud bills by 30% for data teams.",
            shape="cold-email",
            leads=[lead],
            email_identity=EmailIdentity(id="ada", address="ada@nimbus.example.com"),
            settings=CampaignSettings(business_hours=ALL_DAY),
            campaign_id="due-now",
        )
        service.approve("demo", "due-now")
    finally:
        storage.close()
        ledger.close()
    return path


def emails_to_the_lead(database: Path) -> list[email.message.EmailMessage]:
    """The emails the worker wrote to the outbox folder for the campaign's lead."""
    found = []
    for path in sorted((database.parent / "outbox").glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        if str(message["To"]).endswith("<noa@kite.example.com>"):
            found.append(message)
    return found


def test_the_units_command_with_once_exits_0_and_sends_what_is_due(
    database: Path, program: Path
) -> None:
    assert not emails_to_the_lead(database)

    result = subprocess.run(
        [*exec_start(program, database), "--once"],
        env=worker_environment(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert " sent" in result.stdout
    (sent,) = emails_to_the_lead(database)
    unsubscribe = str(sent["List-Unsubscribe"])
    assert unsubscribe.startswith("<https://app.nimbus.example.com/unsubscribe?t=")


SMTP_PASSWORD = "pw-from-the-environment-file"


def _authenticate(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> Any:
    # The environment file's user name, percent-decoded, and the password from the file.
    ok = (auth_data.login, auth_data.password) == (
        b"outreach@nimbus.example.com",
        SMTP_PASSWORD.encode(),
    )
    return aiosmtpd_smtp.AuthResult(success=ok, handled=False)


@pytest.fixture
def mail_server(certificate: tuple[Path, Path]) -> Iterator[Server]:
    """A STARTTLS server that wants a login, like the one the environment file names."""
    yield from _serve(
        tls_context=_server_context(certificate),
        require_starttls=True,
        authenticator=_authenticate,
        auth_require_tls=True,
        auth_required=True,
    )


def test_the_units_command_sends_through_the_environment_files_mail_server(
    database: Path, program: Path, mail_server: Server, certificate: tuple[Path, Path]
) -> None:
    env = worker_environment(outbox_instead_of_smtp=False)
    host_and_port = env["STARLIGHT_SMTP_URL"].rpartition("@")[2]
    env["STARLIGHT_SMTP_URL"] = env["STARLIGHT_SMTP_URL"].replace(
        host_and_port, f"127.0.0.1:{mail_server.port}"
    )
    env["STARLIGHT_SMTP_PASSWORD"] = SMTP_PASSWORD
    env["SSL_CERT_FILE"] = str(certificate[0])  # trust the test server's certificate

    result = subprocess.run(
        [*exec_start(program, database), "--once"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert " sent" in result.stdout
    assert [str(m["To"]) for m in mail_server.handler.messages] == ["Noa <noa@kite.example.com>"]
    assert not emails_to_the_lead(database)  # nothing went to the outbox folder


def test_the_units_command_stops_gracefully_on_its_kill_signal(
    database: Path, program: Path
) -> None:
    service = unit()["Service"]
    stop_signal = getattr(signal, service["KillSignal"])
    with subprocess.Popen(
        [*exec_start(program, database), "--poll", "0.1"],  # a later --poll wins
        env=worker_environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as worker:
        try:
            assert worker.stdout is not None
            first = worker.stdout.readline()
            deadline = time.monotonic() + 60
            while worker.poll() is None and not emails_to_the_lead(database):
                if time.monotonic() > deadline:
                    break
                time.sleep(0.05)
            worker.send_signal(stop_signal)
            out, err = worker.communicate(timeout=int(service["TimeoutStopSec"]))
        finally:
            if worker.poll() is None:
                worker.kill()
    assert first.startswith("Worker "), err
    assert worker.returncode == 0, err
    assert "Traceback" not in err
    assert len(emails_to_the_lead(database)) == 1
    assert "Stopped after" in out


def test_the_unit_keeps_secrets_off_the_command_line_and_stops_slower_than_a_send() -> None:
    service = unit()["Service"]
    command = service["ExecStart"]
    assert service["EnvironmentFile"] == ENVIRONMENT_FILE
    for key, value in environment_file().items():
        assert value not in command, key
    assert "--smtp " not in command  # the server (and its user) come from the file too
    argv = shlex.split(command)
    smtp_timeout = int(argv[argv.index("--smtp-timeout") + 1])
    # A send is a few SMTP commands of at most --smtp-timeout seconds each.
    assert int(service["TimeoutStopSec"]) >= 4 * smtp_timeout
    assert service["KillSignal"] == "SIGTERM"
    assert service["Restart"] == "on-failure"
    assert service["RestartPreventExitStatus"] == "2"  # a usage error is not retried


def test_the_container_runs_the_units_command() -> None:
    dockerfile = (RECIPE / "Dockerfile").read_text(encoding="utf-8")
    words: dict[str, list[str]] = {}
    for line in dockerfile.splitlines():
        instruction, _, rest = line.partition(" ")
        if instruction in ("ENTRYPOINT", "CMD"):
            words[instruction] = [w.strip('" ') for w in rest.strip("[] ").split(",")]
    assert words["ENTRYPOINT"][-2:] == ["starlight", "run"]
    assert shlex.split(unit()["Service"]["ExecStart"])[2:] == words["CMD"]
    assert "STOPSIGNAL SIGTERM" in dockerfile


def test_systemd_analyze_accepts_the_unit(tmp_path: Path, program: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (Debian: the systemd package)")
    env_file = tmp_path / "worker.env"
    env_file.write_text(ENV_FILE.read_text(encoding="utf-8"), encoding="utf-8")
    text = (
        UNIT.read_text(encoding="utf-8")
        .replace(PROGRAM, str(program))
        .replace(DATABASE, str(tmp_path / "starlight.sqlite3"))
        .replace(ENVIRONMENT_FILE, str(env_file))
    )
    copy = tmp_path / UNIT.name
    copy.write_text(text, encoding="utf-8")

    result = subprocess.run(
        [analyze, "verify", str(copy)], capture_output=True, text=True, timeout=60, check=False
    )

    # verify exits 0 even for unknown keys and bad values ("..., ignoring"): any output fails.
    assert (result.returncode, result.stdout + result.stderr) == (0, "")
