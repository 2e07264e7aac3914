"""IMAPInbox against a real IMAP server: Dovecot on 127.0.0.1 (see ``tests/dovecot.py``).

Skips without Dovecot (package ``dovecot-imapd``) unless ``STARLIGHT_REQUIRE_IMAP=1``. Mail is
delivered with IMAP APPEND; the handler is a recording function (in production it is
``lambda raw: service.ingest_email(workspace_id, raw)``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from starlight_sequences.adapters import imap as imap_module
from starlight_sequences.adapters.imap import IMAPInbox, IMAPSecurity, PollReport
from starlight_sequences.adapters.memory import InMemoryStorage
from starlight_sequences.adapters.sqlite import SQLiteStorage
from starlight_sequences.errors import (
    AdapterError,
    ConcurrentUpdate,
    InvalidInput,
    MailboxUnavailable,
    StorageError,
)
from starlight_sequences.ids import WorkspaceId
from starlight_sequences.ports.storage import MAX_CURSOR_NAME
from tests import dovecot
from tests.dovecot import PASSWORD, Dovecot

WS = WorkspaceId("ws-acme")
OTHER_WS = WorkspaceId("ws-globex")
LOGGER = "starlight_sequences.adapters.imap"


@pytest.fixture(scope="module")
def server() -> Iterator[Dovecot]:
    with dovecot.running() as started:
        yield started


@pytest.fixture
def user(server: Dovecot) -> str:
    """A user of its own per test, with an empty INBOX."""
    return server.add_user()


_OPEN: list[IMAPInbox] = []


@pytest.fixture(autouse=True)
def _close_inboxes() -> Iterator[None]:
    yield
    while _OPEN:
        _OPEN.pop().close()


def make_inbox(server: Dovecot, user: str, **options: Any) -> IMAPInbox:
    """A poller over the plain port (opted in), unless ``options`` say otherwise."""
    settings: dict[str, Any] = {
        "port": server.plain_port,
        "security": "plain",
        "allow_plaintext_login": True,
        "timeout": 10.0,
    }
    settings.update(options)
    inbox = IMAPInbox("127.0.0.1", username=user, password=PASSWORD, **settings)
    _OPEN.append(inbox)
    return inbox


def message(n: int, *, marker: str = "") -> bytes:
    """A small RFC 5322 message with CRLF line ends, as a server stores it."""
    return (
        f"From: Lead {n} <lead{n}@acme.example>\r\n"
        f"To: sam@starlight.example\r\n"
        f"Subject: Re: An idea {n}\r\n"
        f"Message-ID: <reply-{n}@acme.example>\r\n"
        f"In-Reply-To: <stl-{n}@starlight.example>\r\n"
        f"\r\n"
        f"Sounds good, let's talk. {marker or f'body-{n}'}\r\n"
    ).encode()


def deliver(server: Dovecot, user: str, *raws: bytes, folder: str = "INBOX") -> None:
    with server.client(user) as conn:
        for raw in raws:
            typ, data = conn.append(folder, None, None, raw)
            assert typ == "OK", data


def uids_in(server: Dovecot, user: str, folder: str = "INBOX") -> list[int]:
    with server.client(user) as conn:
        typ, data = conn.select(folder, readonly=True)
        assert typ == "OK", data
        typ, data = conn.uid("SEARCH", "ALL")
        return sorted(int(n) for n in data[0].split())


def flags_of(server: Dovecot, user: str, uid: int) -> str:
    with server.client(user) as conn:
        conn.select("INBOX", readonly=True)
        _, data = conn.uid("FETCH", str(uid), "(FLAGS)")
        return str(data[0])


class Recorder:
    """The handler: keeps every raw message; raises for messages holding a marker in
    ``fail_on`` (a RuntimeError, or the exception given)."""

    def __init__(self) -> None:
        self.received: list[bytes] = []
        self.fail_on: dict[bytes, BaseException] = {}
        self.calls = 0

    def __call__(self, raw: bytes) -> object:
        self.calls += 1
        for marker, error in self.fail_on.items():
            if marker in raw:
                raise error
        self.received.append(raw)
        return {"kind": "reply"}

    def bodies(self) -> list[str]:
        return [re.findall(rb"body-\d+|marker-\w+", raw)[-1].decode() for raw in self.received]


def poll(
    inbox: IMAPInbox, handle: Callable[[bytes], object], storage: Any, **kw: Any
) -> PollReport:
    return inbox.poll(handle, storage=storage, workspace_id=WS, **kw)


# --- handing over ----------------------------------------------------------------------------


def test_new_messages_are_handed_over_once_in_uid_order_byte_for_byte(
    server: Dovecot, user: str
) -> None:
    raws = [message(n) for n in (1, 2, 3)]
    deliver(server, user, *raws)
    storage, handler = InMemoryStorage(), Recorder()
    inbox = make_inbox(server, user)

    first = poll(inbox, handler, storage)
    again = poll(inbox, handler, storage)
    deliver(server, user, message(4))
    later = poll(inbox, handler, storage)

    assert first.handled == (1, 2, 3)
    assert first.mailbox == f"{user}@127.0.0.1/INBOX"
    assert (first.more, first.restarted, first.failed, first.skipped) == (False, False, None, ())
    assert again.handled == ()
    assert later.handled == (4,)
    assert handler.received == [*raws, message(4)]
    assert uids_in(server, user) == [1, 2, 3, 4]  # nothing moved or deleted


def test_the_poller_never_marks_a_message_seen(server: Dovecot, user: str) -> None:
    deliver(server, user, message(1))
    poll(make_inbox(server, user), Recorder(), InMemoryStorage())
    assert "\\Seen" not in flags_of(server, user, 1)


def test_the_cursor_holds_the_uidvalidity_and_the_last_uid(server: Dovecot, user: str) -> None:
    deliver(server, user, message(1), message(2))
    storage = InMemoryStorage()
    inbox = make_inbox(server, user)
    report = poll(inbox, Recorder(), storage)
    assert inbox.cursor_name == f"imap:{user}@127.0.0.1/INBOX"
    stored = storage.load_cursor(WS, inbox.cursor_name)
    assert stored is not None
    assert f'"uidvalidity":{report.uidvalidity}' in stored
    assert '"last_uid":2' in stored
    assert storage.load_cursor(OTHER_WS, inbox.cursor_name) is None


def test_a_restarted_poller_on_the_same_database_hands_over_nothing_twice(
    server: Dovecot, user: str, tmp_path: Path
) -> None:
    deliver(server, user, message(1), message(2))
    handler = Recorder()
    with SQLiteStorage(tmp_path / "poller.sqlite3") as storage:
        assert poll(make_inbox(server, user), handler, storage).handled == (1, 2)
    deliver(server, user, message(3))
    with SQLiteStorage(tmp_path / "poller.sqlite3") as reopened:
        restarted = make_inbox(server, user)
        assert poll(restarted, handler, reopened).handled == (3,)
        assert poll(restarted, handler, reopened).handled == ()
    assert handler.bodies() == ["body-1", "body-2", "body-3"]


def test_the_limit_leaves_the_rest_for_the_next_poll(server: Dovecot, user: str) -> None:
    deliver(server, user, *(message(n) for n in range(1, 6)))
    storage, handler = InMemoryStorage(), Recorder()
    inbox = make_inbox(server, user)
    first = poll(inbox, handler, storage, limit=2)
    second = poll(inbox, handler, storage, limit=2)
    third = poll(inbox, handler, storage, limit=2)
    assert (first.handled, first.more) == ((1, 2), True)
    assert (second.handled, second.more) == ((3, 4), True)
    assert (third.handled, third.more) == ((5,), False)


@pytest.mark.parametrize("limit", [0, -1, 1.5, True])
def test_a_limit_that_is_not_a_positive_int_is_invalid_input(
    server: Dovecot, user: str, limit: Any
) -> None:
    with pytest.raises(InvalidInput, match="limit"):
        poll(make_inbox(server, user), Recorder(), InMemoryStorage(), limit=limit)


def test_skip_existing_hands_over_only_what_arrives_later(server: Dovecot, user: str) -> None:
    deliver(server, user, message(1), message(2))
    storage, handler = InMemoryStorage(), Recorder()
    inbox = make_inbox(server, user, skip_existing=True)
    assert poll(inbox, handler, storage).handled == ()
    deliver(server, user, message(3))
    assert poll(inbox, handler, storage).handled == (3,)
    assert handler.bodies() == ["body-3"]


def test_a_cursor_another_program_wrote_is_replaced_and_logged(
    server: Dovecot, user: str, caplog: pytest.LogCaptureFixture
) -> None:
    deliver(server, user, message(1))
    storage, handler = InMemoryStorage(), Recorder()
    inbox = make_inbox(server, user)
    storage.save_cursor(WS, inbox.cursor_name, "last processed: 7")
    with caplog.at_level(logging.WARNING, LOGGER):
        assert poll(inbox, handler, storage).handled == (1,)
    assert "starting over" in caplog.text


# --- when the handler raises -----------------------------------------------------------------


def test_a_handler_exception_leaves_the_message_and_the_cursor_before_it(
    server: Dovecot, user: str, caplog: pytest.LogCaptureFixture
) -> None:
    deliver(server, user, message(1), message(2), message(3))
    storage, handler = InMemoryStorage(), Recorder()
    handler.fail_on[b"body-2"] = RuntimeError("database said no")
    inbox = make_inbox(server, user)

    with caplog.at_level(logging.WARNING, LOGGER):
        failing = poll(inbox, handler, storage)
    assert failing.handled == (1,)
    assert (failing.failed, failing.failures) == (2, 1)
    assert uids_in(server, user) == [1, 2, 3]
    (record,) = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert (record.uid, record.mailbox) == (2, inbox.mailbox)  # type: ignore[attr-defined]
    assert "database said no" in caplog.text  # the handler's exception, with its traceback

    handler.fail_on.clear()
    fixed = poll(inbox, handler, storage)
    assert fixed.handled == (2, 3)
    assert fixed.failed is None
    assert handler.bodies() == ["body-1", "body-2", "body-3"]


def test_a_poison_message_is_given_up_on_after_max_failures_and_stays(
    server: Dovecot, user: str, caplog: pytest.LogCaptureFixture
) -> None:
    deliver(server, user, message(1), message(2), message(3))
    storage, handler = InMemoryStorage(), Recorder()
    handler.fail_on[b"body-2"] = ValueError("cannot parse this one")
    inbox = make_inbox(server, user, max_failures=3)

    reports = [poll(inbox, handler, storage) for _ in range(3)]

    assert [r.failures for r in reports[:2]] == [1, 2]
    assert [r.failed for r in reports[:2]] == [2, 2]
    assert reports[2].skipped == (2,)
    assert reports[2].handled == (3,)
    assert reports[2].failed is None
    assert handler.bodies() == ["body-1", "body-3"]
    assert uids_in(server, user) == [1, 2, 3]  # left in place
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert errors[0].uid == 2  # type: ignore[attr-defined]
    assert "giving up" in errors[0].getMessage()
    assert poll(inbox, handler, storage).handled == ()  # and it is not tried again


def test_the_failure_count_survives_a_restart(server: Dovecot, user: str, tmp_path: Path) -> None:
    deliver(server, user, message(1))
    handler = Recorder()
    handler.fail_on[b"body-1"] = RuntimeError("boom")
    path = tmp_path / "poison.sqlite3"
    for expected in (1, 2):
        with SQLiteStorage(path) as storage:
            report = poll(make_inbox(server, user, max_failures=3), handler, storage)
            assert report.failures == expected
    with SQLiteStorage(path) as storage:
        assert poll(make_inbox(server, user, max_failures=3), handler, storage).skipped == (1,)


@pytest.mark.parametrize(
    "error",
    [StorageError("database is down"), ConcurrentUpdate("raced"), AdapterError("no config")],
)
def test_a_handler_that_cannot_work_stops_the_poll_and_is_never_counted(
    server: Dovecot, user: str, error: Exception
) -> None:
    deliver(server, user, message(1), message(2))
    storage, handler = InMemoryStorage(), Recorder()
    handler.fail_on[b"body-2"] = error
    inbox = make_inbox(server, user, max_failures=1)
    for _ in range(3):
        with pytest.raises(type(error)):
            poll(inbox, handler, storage)
    handler.fail_on.clear()
    report = poll(inbox, handler, storage)
    assert report.handled == (2,)
    assert report.skipped == ()
    assert handler.bodies() == ["body-1", "body-2"]


# --- UIDVALIDITY -----------------------------------------------------------------------------


def _recreate(server: Dovecot, user: str, folder: str) -> None:
    with server.client(user) as conn:
        assert conn.delete(folder)[0] == "OK"
        assert conn.create(folder)[0] == "OK"


def test_a_new_uidvalidity_starts_again_from_the_first_message(
    server: Dovecot, user: str, caplog: pytest.LogCaptureFixture
) -> None:
    with server.client(user) as conn:
        conn.create("Replies")
    deliver(server, user, message(1), message(2), folder="Replies")
    storage, handler = InMemoryStorage(), Recorder()
    inbox = make_inbox(server, user, folder="Replies")
    before = poll(inbox, handler, storage)
    assert before.handled == (1, 2)

    _recreate(server, user, "Replies")
    # The folder comes back with one message seen before (restored) and a new one.
    deliver(server, user, message(2), message(3), folder="Replies")
    with caplog.at_level(logging.WARNING, LOGGER):
        after = poll(inbox, handler, storage)

    assert after.uidvalidity != before.uidvalidity
    assert after.restarted
    assert after.handled == (1, 2)
    assert handler.bodies() == ["body-1", "body-2", "body-2", "body-3"]
    assert "UIDVALIDITY changed" in caplog.text
    assert not poll(inbox, handler, storage).restarted


def test_a_new_uidvalidity_with_skip_existing_starts_after_the_messages_there(
    server: Dovecot, user: str
) -> None:
    with server.client(user) as conn:
        conn.create("Replies")
    deliver(server, user, message(1), folder="Replies")
    storage, handler = InMemoryStorage(), Recorder()
    inbox = make_inbox(server, user, folder="Replies", skip_existing=True)
    deliver(server, user, message(2), folder="Replies")
    assert poll(inbox, handler, storage).handled == ()
    _recreate(server, user, "Replies")
    deliver(server, user, message(3), folder="Replies")
    assert poll(inbox, handler, storage).restarted
    deliver(server, user, message(4), folder="Replies")
    assert poll(inbox, handler, storage).handled == (2,)
    assert handler.bodies() == ["body-4"]


# --- moving ----------------------------------------------------------------------------------


def test_move_to_moves_each_handled_message_and_creates_the_folder(
    server: Dovecot, user: str
) -> None:
    deliver(server, user, message(1), message(2), message(3))
    storage, handler = InMemoryStorage(), Recorder()
    handler.fail_on[b"body-3"] = RuntimeError("not yet")
    inbox = make_inbox(server, user, move_to="Processed")

    report = poll(inbox, handler, storage)

    assert report.handled == report.moved == (1, 2)
    assert report.failed == 3
    assert uids_in(server, user) == [3]  # the failing one stays
    assert len(uids_in(server, user, "Processed")) == 2
    handler.fail_on.clear()
    assert poll(inbox, handler, storage).moved == (3,)
    assert uids_in(server, user) == []


def test_a_poison_message_is_not_moved(server: Dovecot, user: str) -> None:
    deliver(server, user, message(1))
    handler = Recorder()
    handler.fail_on[b"body-1"] = RuntimeError("never")
    inbox = make_inbox(server, user, move_to="Processed", max_failures=1)
    report = poll(inbox, handler, InMemoryStorage())
    assert report.skipped == (1,)
    assert report.moved == ()
    assert uids_in(server, user) == [1]


def test_without_the_move_capability_it_copies_and_expunges_only_its_own_message() -> None:
    capabilities = "IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ UIDPLUS NAMESPACE"
    with dovecot.running(extra_config=f"imap_capability = {capabilities}") as no_move:
        user = no_move.add_user()
        deliver(no_move, user, message(1))
        storage, handler = InMemoryStorage(), Recorder()
        assert poll(make_inbox(no_move, user), handler, storage).handled == (1,)
        with no_move.client(user) as conn:  # someone flags the handled message \Deleted
            conn.select("INBOX")
            conn.uid("STORE", "1", "+FLAGS", "(\\Deleted)")
        deliver(no_move, user, message(2))

        inbox = make_inbox(no_move, user, move_to="Done")
        report = poll(inbox, handler, storage)
        with inbox._lock:  # the server did not offer MOVE to the poller
            assert inbox._session is not None
            assert "MOVE" not in inbox._session.capabilities
            assert "UIDPLUS" in inbox._session.capabilities

        assert report.moved == (2,)
        assert uids_in(no_move, user) == [1]  # UID EXPUNGE: the other \Deleted one stays
        assert len(uids_in(no_move, user, "Done")) == 1


def test_folder_names_beyond_ascii_round_trip(server: Dovecot, user: str) -> None:
    deliver(server, user, message(1))
    storage, handler = InMemoryStorage(), Recorder()
    folder = 'Réponses & "Erledigt" ✓'
    assert poll(make_inbox(server, user, move_to=folder), handler, storage).moved == (1,)
    reader = make_inbox(server, user, folder=folder)
    assert poll(reader, handler, storage).handled == (1,)
    assert handler.bodies() == ["body-1", "body-1"]


# --- security --------------------------------------------------------------------------------


def test_plaintext_login_is_refused_without_the_opt_in() -> None:
    with pytest.raises(AdapterError, match="allow_plaintext_login") as caught:
        IMAPInbox("mail.example", username="ann", password=PASSWORD, security="plain")
    assert PASSWORD not in str(caught.value)


def test_tls_is_the_default_on_port_993() -> None:
    inbox = IMAPInbox("mail.example", username="ann", password=PASSWORD)
    assert inbox._login.security is IMAPSecurity.TLS
    assert inbox._login.port == 993
    assert PASSWORD not in repr(inbox._login)


def test_tls_with_the_test_certificate_works(server: Dovecot, user: str) -> None:
    deliver(server, user, message(1))
    inbox = make_inbox(
        server,
        user,
        port=server.tls_port,
        security="tls",
        allow_plaintext_login=False,
        ssl_context=server.client_context(),
    )
    assert poll(inbox, Recorder(), InMemoryStorage()).handled == (1,)


def test_starttls_with_the_test_certificate_works(server: Dovecot, user: str) -> None:
    deliver(server, user, message(1))
    inbox = make_inbox(
        server,
        user,
        security=IMAPSecurity.STARTTLS,
        allow_plaintext_login=False,
        ssl_context=server.client_context(),
    )
    assert poll(inbox, Recorder(), InMemoryStorage()).handled == (1,)


@pytest.mark.parametrize("security", ["tls", "starttls"])
def test_a_certificate_that_does_not_verify_is_an_adapter_error(
    server: Dovecot, user: str, security: str
) -> None:
    port = server.tls_port if security == "tls" else server.plain_port
    inbox = make_inbox(server, user, port=port, security=security, ssl_context=None)
    with pytest.raises(AdapterError, match="certificate") as caught:
        poll(inbox, Recorder(), InMemoryStorage())
    assert not isinstance(caught.value, MailboxUnavailable)


def test_tls_against_the_plain_port_is_an_adapter_error(server: Dovecot, user: str) -> None:
    inbox = make_inbox(server, user, security="tls", ssl_context=server.client_context())
    with pytest.raises(AdapterError, match="TLS"):
        poll(inbox, Recorder(), InMemoryStorage())


def test_a_wrong_password_is_an_adapter_error_that_does_not_show_it() -> None:
    # A server of its own: Dovecot slows down later logins from an address that failed one.
    with dovecot.running(extra_config="auth_failure_delay = 0") as alone:
        inbox = IMAPInbox(
            "127.0.0.1",
            alone.plain_port,
            username=alone.add_user(),
            password="not-the-password",
            security="plain",
            allow_plaintext_login=True,
            timeout=10,
        )
        with pytest.raises(AdapterError, match="rejected the credentials") as caught:
            poll(inbox, Recorder(), InMemoryStorage())
    assert "not-the-password" not in str(caught.value)
    assert not isinstance(caught.value, MailboxUnavailable)


def test_a_missing_folder_is_an_adapter_error_naming_it(server: Dovecot, user: str) -> None:
    with pytest.raises(AdapterError, match="'Nowhere'"):
        poll(make_inbox(server, user, folder="Nowhere"), Recorder(), InMemoryStorage())


@pytest.mark.parametrize(
    ("options", "message_part"),
    [
        ({"security": "ssl"}, "not one of tls, starttls, plain"),
        ({"port": 0}, "not a TCP port"),
        ({"timeout": 0}, "timeout"),
        ({"max_failures": 0}, "max_failures"),
        ({"folder": "INBOX\r\nA1 DELETE INBOX"}, "folder"),
        ({"move_to": "INBOX"}, "move_to is the folder"),
        ({"username": ""}, "username"),
        ({"password": "pw\r\nA1 LOGOUT"}, "password holds"),
    ],
)
def test_settings_that_cannot_work_are_refused_when_the_inbox_is_made(
    options: dict[str, Any], message_part: str
) -> None:
    settings: dict[str, Any] = {"username": "ann", "password": PASSWORD}
    settings.update(options)
    with pytest.raises(AdapterError, match=re.escape(message_part)) as caught:
        IMAPInbox("mail.example", **settings)
    assert "A1 LOGOUT" not in str(caught.value)


def test_a_long_mailbox_name_gets_a_cursor_name_the_storage_takes() -> None:
    inbox = IMAPInbox("mail.example", username="u" * 300, password=PASSWORD)
    assert len(inbox.cursor_name) <= MAX_CURSOR_NAME
    other = IMAPInbox("mail.example", username="u" * 300, password=PASSWORD, folder="Other")
    assert other.cursor_name != inbox.cursor_name
    InMemoryStorage().save_cursor(WS, inbox.cursor_name, "{}")


# --- connections -----------------------------------------------------------------------------


def test_a_connection_dropped_between_polls_is_replaced(server: Dovecot, user: str) -> None:
    deliver(server, user, message(1))
    storage, handler = InMemoryStorage(), Recorder()
    inbox = make_inbox(server, user)
    assert poll(inbox, handler, storage).reconnects == 0
    server.kick(user)
    deliver(server, user, message(2))
    report = poll(inbox, handler, storage)
    assert report.handled == (2,)
    assert report.reconnects == 1


def test_a_connection_dropped_mid_poll_is_replaced_and_nothing_is_handed_twice(
    server: Dovecot, user: str
) -> None:
    deliver(server, user, message(1), message(2), message(3))
    storage = InMemoryStorage()

    class Kicking(Recorder):
        def __call__(self, raw: bytes) -> object:
            result = super().__call__(raw)
            if b"body-2" in raw:
                server.kick(user)  # the connection dies while message 2 is being handled
            return result

    handler = Kicking()
    report = poll(make_inbox(server, user, move_to="Done"), handler, storage)
    assert report.reconnects == 1
    assert report.handled == (1, 2, 3)
    assert handler.bodies() == ["body-1", "body-2", "body-3"]
    # Message 2's move was due on the dead connection: it stays, handled, and is not re-read.
    assert report.moved == (1, 3)
    assert uids_in(server, user) == [2]


def test_a_server_that_went_away_is_mailbox_unavailable_until_it_is_back(
    server: Dovecot, user: str
) -> None:
    deliver(server, user, message(1))
    storage, handler = InMemoryStorage(), Recorder()
    inbox = make_inbox(server, user)
    assert poll(inbox, handler, storage).handled == (1,)
    server.stop()
    try:
        with pytest.raises(MailboxUnavailable, match="cannot connect"):
            poll(inbox, handler, storage)
        with pytest.raises(MailboxUnavailable):
            poll(inbox, handler, storage)
    finally:
        server.start()
    deliver(server, user, message(2))
    assert poll(inbox, handler, storage).handled == (2,)
    assert handler.bodies() == ["body-1", "body-2"]


def test_a_server_that_is_not_there_is_mailbox_unavailable() -> None:
    inbox = IMAPInbox(
        "127.0.0.1",
        dovecot.free_port(),
        username="ann",
        password=PASSWORD,
        security="plain",
        allow_plaintext_login=True,
        timeout=2,
    )
    with pytest.raises(MailboxUnavailable, match="cannot connect"):
        inbox.poll(Recorder(), storage=InMemoryStorage(), workspace_id=WS)


def test_close_logs_out_and_a_later_poll_reconnects(server: Dovecot, user: str) -> None:
    deliver(server, user, message(1))
    storage, handler = InMemoryStorage(), Recorder()
    with make_inbox(server, user) as inbox:
        poll(inbox, handler, storage)
    inbox.close()  # twice is fine
    deliver(server, user, message(2))
    report = poll(inbox, handler, storage)
    assert report.handled == (2,)
    assert report.reconnects == 0


# --- logging ---------------------------------------------------------------------------------


def test_the_log_names_mailbox_and_uid_and_never_the_password_or_a_body(
    server: Dovecot, user: str, caplog: pytest.LogCaptureFixture
) -> None:
    deliver(server, user, message(1, marker="marker-secretbody"), message(2), message(3))
    storage, handler = InMemoryStorage(), Recorder()
    handler.fail_on[b"body-2"] = RuntimeError("boom")
    inbox = make_inbox(server, user, max_failures=2, move_to="Done")
    with caplog.at_level(logging.DEBUG, LOGGER):
        poll(inbox, handler, storage)
        server.kick(user)
        poll(inbox, handler, storage)
    text = caplog.text + "".join(str(vars(record)) for record in caplog.records)
    assert PASSWORD not in text
    assert "secretbody" not in text
    assert "Sounds good" not in text
    per_message = [r for r in caplog.records if hasattr(r, "uid")]
    assert {r.uid for r in per_message} >= {1, 2, 3}  # type: ignore[attr-defined]
    assert all(r.mailbox == inbox.mailbox for r in per_message)  # type: ignore[attr-defined]
    assert {r.levelname for r in caplog.records} >= {"DEBUG", "INFO", "WARNING", "ERROR"}


def test_the_module_surface_is_pinned() -> None:
    assert imap_module.__all__ == ["IMAPInbox", "IMAPSecurity", "PollReport"]


# --- the skip-or-fail rule -------------------------------------------------------------------


def test_without_dovecot_the_tests_skip_naming_the_package_or_fail_when_required(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(dovecot.shutil, "which", lambda name, path=None: None)
    monkeypatch.delenv(dovecot.REQUIRE_VARIABLE, raising=False)
    with pytest.raises(pytest.skip.Exception, match="dovecot-imapd"):
        dovecot.binaries()
    monkeypatch.setenv(dovecot.REQUIRE_VARIABLE, "1")
    with pytest.raises(pytest.fail.Exception, match=r"STARLIGHT_REQUIRE_IMAP=1 .*dovecot-imapd"):
        dovecot.binaries()
