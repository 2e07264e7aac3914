"""`starlight inbox` against a real Dovecot: a reply to a sent email, delivered to the IMAP
folder, stops that lead; polling again reads nothing twice. Skipped without Dovecot unless
``STARLIGHT_REQUIRE_IMAP`` (CI) makes it fail."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
from collections.abc import Iterator

import pytest

from tests import dovecot
from tests.dovecot import PASSWORD, Dovecot
from tests.integration.test_cli import CLI
from tests.integration.test_cli import approved as approved
from tests.integration.test_cli import cli as cli
from tests.integration.test_cli import created as created
from tests.integration.test_cli import funded as funded
from tests.integration.test_imap_inbox import deliver


@pytest.fixture(scope="module")
def server() -> Iterator[Dovecot]:
    with dovecot.running() as started:
        yield started


def test_inbox_reads_a_reply_from_imap_and_stops_the_lead_once(
    approved: CLI, server: Dovecot, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = server.add_user()
    approved.clock.set(dt.datetime(2026, 11, 30, 14, 45, tzinfo=dt.UTC))
    assert approved("run", "--once") == 0
    sent = sorted((approved.db.parent / "outbox").glob("*.eml"))[0]
    original = email.message_from_bytes(sent.read_bytes(), policy=email.policy.default)
    reply = (
        f"From: {original['To']}\r\nTo: {original['From']}\r\nSubject: Re: {original['Subject']}"
        f"\r\nMessage-ID: <imap-reply-1@client.example>\r\nIn-Reply-To: {original['Message-ID']}"
        "\r\nDate: Mon, 30 Nov 2026 15:00:00 +0000\r\n\r\nYes, let's talk.\r\n"
    ).encode()
    deliver(server, user, reply)
    monkeypatch.setenv("STARLIGHT_IMAP_PASSWORD", PASSWORD)
    options = [
        "--imap-host", "127.0.0.1", "--imap-port", str(server.plain_port), "--imap-user", user,
        "--imap-security", "plain", "--imap-plaintext-login", "--once",
    ]  # fmt: skip
    assert approved("inbox", *options) == 0, approved.err
    assert "reply applied" in approved.out
    assert "1 message(s) read" in approved.out
    assert approved("inbox", *options) == 0
    assert "0 message(s) read" in approved.out, "the cursor keeps what was read"
    assert approved("status", "q1") == 0
    assert "replied" in approved.out


def test_inbox_refuses_a_plaintext_login_and_wants_the_password_from_the_environment(
    approved: CLI, server: Dovecot, monkeypatch: pytest.MonkeyPatch
) -> None:
    options = ["--imap-host", "127.0.0.1", "--imap-user", "x", "--once"]
    monkeypatch.delenv("STARLIGHT_IMAP_PASSWORD", raising=False)
    assert approved("inbox", *options) != 0
    assert "STARLIGHT_IMAP_PASSWORD" in approved.err
    monkeypatch.setenv("STARLIGHT_IMAP_PASSWORD", "secret-password")
    assert approved("inbox", *options, "--imap-security", "plain") != 0
    assert "allow_plaintext_login" in approved.err or "plaintext" in approved.err
    assert "secret-password" not in approved.err
