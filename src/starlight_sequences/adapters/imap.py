"""Reading a mailbox over IMAP (standard library :mod:`imaplib`): the inbound side of email.

:class:`IMAPInbox` polls one folder by UID and hands each new message's raw bytes to a
callable, in production ``lambda raw: service.ingest_email(workspace_id, raw)``. Where it
stopped (the folder's UIDVALIDITY and the last UID it is done with) is a cursor kept through
the storage port (:meth:`~starlight_sequences.ports.Storage.save_cursor`), saved after every
message, so a restarted poller hands over nothing twice. Messages are fetched with
``BODY.PEEK[]``: the poller never marks anything read. See ``docs/inbound.md`` ("Reading a
mailbox") for set-up and the rules in full.
"""

from __future__ import annotations

import base64
import contextlib
import enum
import hashlib
import imaplib
import json
import logging
import re
import ssl
import threading
from collections.abc import Callable
from typing import Any, Final, Self

import attrs

from starlight_sequences.errors import (
    AdapterError,
    ConcurrentUpdate,
    InvalidInput,
    MailboxUnavailable,
)
from starlight_sequences.ids import WorkspaceId
from starlight_sequences.ports.storage import MAX_CURSOR_NAME, Storage

__all__ = ["IMAPInbox", "IMAPSecurity", "PollReport"]

log = logging.getLogger("starlight_sequences.adapters.imap")


class IMAPSecurity(enum.StrEnum):
    """How the connection to the IMAP server is protected."""

    TLS = "tls"
    """TLS from the first byte ("IMAPS", usually port 993). The default."""
    STARTTLS = "starttls"
    """Connect in plain text, then upgrade with STARTTLS before logging in (usually port 143)."""
    PLAIN = "plain"
    """No TLS: the password crosses the network readable. Needs ``allow_plaintext_login``."""


_DEFAULT_PORTS: Final = {IMAPSecurity.TLS: 993, IMAPSecurity.STARTTLS: 143, IMAPSecurity.PLAIN: 143}
_CURSOR_VERSION: Final = 1
_UNSAFE: Final = re.compile(r"[\x00-\x1f\x7f]")
"""Characters that would end or corrupt an IMAP command line (CR, LF, NUL, other controls)."""
_FETCH_UID: Final = re.compile(rb"\bUID (\d+)")


@attrs.frozen(kw_only=True)
class PollReport:
    """What one :meth:`IMAPInbox.poll` did. UIDs are those of the folder's current UIDVALIDITY.

    Attributes:
        mailbox: ``user@host/folder``, as in the log.
        uidvalidity: the folder's UIDVALIDITY.
        handled: the messages handed over whose handler returned, in UID order.
        moved: of those, the ones moved to ``move_to``.
        failed: the message whose handler raised in this poll; it stays in the folder, the
            cursor stays before it, and the next poll hands it over again. The poll stopped
            there: the messages after it wait for the next poll.
        failures: how many polls in a row the handler raised on ``failed``.
        skipped: messages given up on after ``max_failures`` failures (logged at ERROR);
            they stay in the folder and the cursor is past them.
        restarted: the folder's UIDVALIDITY was not the cursor's: the poll started again from
            the beginning of the folder (see :class:`IMAPInbox`).
        more: ``limit`` was reached and more new messages are waiting.
        reconnects: how many times the connection was opened again during this poll.
    """

    mailbox: str
    uidvalidity: int
    handled: tuple[int, ...] = ()
    moved: tuple[int, ...] = ()
    failed: int | None = None
    failures: int = 0
    skipped: tuple[int, ...] = ()
    restarted: bool = False
    more: bool = False
    reconnects: int = 0


@attrs.frozen(kw_only=True)
class _Cursor:
    """Where a poller stands in one folder: stored as JSON through the storage port."""

    uidvalidity: int
    last_uid: int = 0
    failing_uid: int = 0
    failures: int = 0

    def past(self, uid: int) -> _Cursor:
        """Done with ``uid``: the next message is the one after it."""
        return _Cursor(uidvalidity=self.uidvalidity, last_uid=uid)

    def to_json(self) -> str:
        return json.dumps(
            {
                "v": _CURSOR_VERSION,
                "uidvalidity": self.uidvalidity,
                "last_uid": self.last_uid,
                "failing_uid": self.failing_uid,
                "failures": self.failures,
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str) -> _Cursor | None:
        """The cursor, or None when ``text`` is not one this version wrote."""
        try:
            data = json.loads(text)
            if not isinstance(data, dict) or data.get("v") != _CURSOR_VERSION:
                return None
            fields = {
                name: data[name] for name in ("uidvalidity", "last_uid", "failing_uid", "failures")
            }
        except (ValueError, KeyError):
            return None
        if not all(type(value) is int and value >= 0 for value in fields.values()):
            return None
        return cls(**fields)


class _Lost(Exception):
    """The connection broke under a command (raised inside a poll; the poll reconnects once)."""


@attrs.define
class _Run:
    """What one poll has done so far (kept across a reconnect)."""

    limit: int
    uidvalidity: int = 0
    handled: list[int] = attrs.Factory(list)
    moved: list[int] = attrs.Factory(list)
    skipped: list[int] = attrs.Factory(list)
    failed: int | None = None
    failures: int = 0
    restarted: bool = False
    more: bool = False
    reconnects: int = 0

    @property
    def remaining(self) -> int:
        return self.limit - len(self.handled) - len(self.skipped)

    def report(self, mailbox: str) -> PollReport:
        return PollReport(
            mailbox=mailbox,
            uidvalidity=self.uidvalidity,
            handled=tuple(self.handled),
            moved=tuple(self.moved),
            failed=self.failed,
            failures=self.failures,
            skipped=tuple(self.skipped),
            restarted=self.restarted,
            more=self.more,
            reconnects=self.reconnects,
        )


def _mailbox_name(name: str) -> str:
    """``name`` as an IMAP quoted string, in modified UTF-7 (RFC 3501 section 5.1.3)."""
    out: list[str] = []
    run: list[str] = []

    def flush() -> None:
        if run:
            encoded = base64.b64encode("".join(run).encode("utf-16-be")).decode("ascii")
            out.append("&" + encoded.rstrip("=").replace("/", ",") + "-")
            run.clear()

    for char in name:
        if " " <= char <= "~":
            flush()
            out.append("&-" if char == "&" else char)
        else:
            run.append(char)
    flush()
    text = "".join(out).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


def _said(data: list[Any]) -> str:
    """The server's text of a response, for messages (never a message's content)."""
    parts = [
        item.decode("utf-8", "replace") if isinstance(item, bytes) else str(item) for item in data
    ]
    return " ".join(part for part in parts if part and part != "None")[:300]


def _check_text(field: str, value: object, *, secret: bool = False) -> str:
    if not isinstance(value, str) or not value:
        raise AdapterError(f"IMAP inbox: {field} must be a non-empty str")
    if _UNSAFE.search(value):
        shown = "" if secret else f" {value!r}"
        raise AdapterError(f"IMAP inbox: {field}{shown} holds a line break or control character")
    return value


def _cursor_name(username: str, host: str, folder: str) -> str:
    name = f"imap:{username}@{host}/{folder}"
    if len(name) <= MAX_CURSOR_NAME:
        return name
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{name[: MAX_CURSOR_NAME - 73]}…sha256:{digest}"


def _shut(conn: imaplib.IMAP4) -> None:
    """Close a connection without a word to the server (it may be gone already)."""
    with contextlib.suppress(OSError):
        conn.shutdown()


class _Unreadable(Exception):
    """The server would not give a message's content (FETCH answered NO)."""


@attrs.frozen(kw_only=True)
class _Login:
    """How to reach and log in to the server (the password is kept out of ``repr``)."""

    host: str
    port: int
    security: IMAPSecurity
    username: str
    password: str = attrs.field(repr=False)
    timeout: float
    ssl_context: ssl.SSLContext | None
    mailbox: str

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"


class _Session:
    """One logged-in connection and its capabilities, with errors translated: a connection
    that breaks under a command is :class:`_Lost`; a refusal that needs a change of
    configuration is :class:`AdapterError`."""

    def __init__(self, conn: imaplib.IMAP4, label: str, capabilities: frozenset[str]) -> None:
        self._conn = conn
        self._label = label
        self.capabilities = capabilities

    @classmethod
    def open(cls, login: _Login) -> _Session:
        """Connect, upgrade to TLS if asked, log in and read the capabilities.

        Raises:
            MailboxUnavailable: the server cannot be reached or hung up.
            AdapterError: TLS, its certificate, STARTTLS or the credentials failed.
        """
        try:
            if login.security is IMAPSecurity.TLS:
                conn: imaplib.IMAP4 = imaplib.IMAP4_SSL(
                    login.host, login.port, ssl_context=login.ssl_context, timeout=login.timeout
                )
            else:
                conn = imaplib.IMAP4(login.host, login.port, timeout=login.timeout)
        except ssl.SSLError as exc:  # before OSError: it is one
            raise AdapterError(f"IMAP {login.where}: TLS failed: {exc}") from exc
        except (OSError, imaplib.IMAP4.error) as exc:
            raise MailboxUnavailable(f"IMAP {login.where}: cannot connect: {exc}") from exc
        try:
            return cls(conn, login.mailbox, _start(conn, login))
        except ssl.SSLError as exc:
            _shut(conn)
            raise AdapterError(f"IMAP {login.where}: TLS failed: {exc}") from exc
        except (OSError, imaplib.IMAP4.abort) as exc:
            _shut(conn)
            raise MailboxUnavailable(f"IMAP {login.where}: the server hung up: {exc}") from exc
        except BaseException:
            _shut(conn)
            raise

    def _run(self, what: str, call: Callable[[], tuple[str, list[Any]]]) -> tuple[str, list[Any]]:
        try:
            return call()
        except imaplib.IMAP4.readonly as exc:  # before abort: it is one
            raise AdapterError(f"IMAP {self._label}: the folder is read-only: {exc}") from exc
        except imaplib.IMAP4.abort as exc:
            raise _Lost(f"{what}: {exc}") from exc
        except imaplib.IMAP4.error as exc:
            raise AdapterError(f"IMAP {self._label}: {what} failed: {exc}") from exc
        except OSError as exc:
            raise _Lost(f"{what}: {exc}") from exc

    def select(self, folder: str, *, readonly: bool) -> tuple[int, int | None]:
        """Open ``folder`` (``EXAMINE`` when ``readonly``); its UIDVALIDITY and UIDNEXT."""
        conn = self._conn
        typ, data = self._run("SELECT", lambda: conn.select(_mailbox_name(folder), readonly))
        if typ != "OK":
            raise AdapterError(f"IMAP {self._label}: cannot open folder {folder!r}: {_said(data)}")
        codes = {code: conn.response(code)[1][-1] for code in ("UIDVALIDITY", "UIDNEXT")}
        values = {
            code: int(v) if isinstance(v, bytes) and v.isdigit() else None
            for code, v in codes.items()
        }
        uidvalidity = values["UIDVALIDITY"]
        if uidvalidity is None:
            raise AdapterError(f"IMAP {self._label}: the server sent no UIDVALIDITY for {folder!r}")
        return uidvalidity, values["UIDNEXT"]

    def uids_after(self, uid: int) -> list[int]:
        """The UIDs above ``uid`` in the selected folder, ascending."""
        conn = self._conn
        typ, data = self._run("UID SEARCH", lambda: conn.uid("SEARCH", f"UID {uid + 1}:*"))
        if typ != "OK":
            raise AdapterError(f"IMAP {self._label}: UID SEARCH failed: {_said(data)}")
        found = {int(n) for chunk in data if isinstance(chunk, bytes) for n in chunk.split()}
        # "n:*" also matches the last message when every UID is below n.
        return sorted(n for n in found if n > uid)

    def fetch(self, uid: int) -> bytes | None:
        """The raw message (``BODY.PEEK[]``: ``\\Seen`` is not set); None if it is gone.

        Raises:
            _Unreadable: the server refused to hand it out.
        """
        conn = self._conn
        typ, data = self._run("UID FETCH", lambda: conn.uid("FETCH", str(uid), "(BODY.PEEK[])"))
        if typ != "OK":
            raise _Unreadable(f"the server refused to hand out message {uid}: {_said(data)}")
        for index, item in enumerate(data):
            if not (isinstance(item, tuple) and len(item) == 2 and b"BODY[]" in item[0]):
                continue
            after = data[index + 1] if index + 1 < len(data) else b""
            found = _FETCH_UID.search(item[0]) or _FETCH_UID.search(
                after if isinstance(after, bytes) else b""
            )
            # Unsolicited FETCH responses of other messages may come along; ours has our UID.
            if found is None or int(found.group(1)) == uid:
                return bytes(item[1])
        return None

    def move(self, uid: int, folder: str) -> tuple[bool, str]:
        """Move message ``uid`` to ``folder`` (creating it when the server asks for that);
        whether it moved, and what the server said when it did not."""
        target = _mailbox_name(folder)
        typ, data = self._transfer(uid, target)
        if typ != "OK" and "TRYCREATE" in _said(data).upper():
            conn = self._conn
            self._run("CREATE", lambda: conn.create(target))
            typ, data = self._transfer(uid, target)
        return typ == "OK", "" if typ == "OK" else _said(data)

    def _transfer(self, uid: int, target: str) -> tuple[str, list[Any]]:
        conn, key = self._conn, str(uid)
        if "MOVE" in self.capabilities:
            return self._run("UID MOVE", lambda: conn.uid("MOVE", key, target))
        typ, data = self._run("UID COPY", lambda: conn.uid("COPY", key, target))
        if typ != "OK":
            return typ, data
        typ, data = self._run(
            "UID STORE", lambda: conn.uid("STORE", key, "+FLAGS.SILENT", "(\\Deleted)")
        )
        if typ != "OK":
            return typ, data
        if "UIDPLUS" in self.capabilities:
            return self._run("UID EXPUNGE", lambda: conn.uid("EXPUNGE", key))
        return self._run("EXPUNGE", conn.expunge)

    def logout(self) -> None:
        """Say goodbye and close; errors do not matter (the connection may be gone)."""
        try:
            self._conn.logout()
        except (imaplib.IMAP4.error, OSError):
            _shut(self._conn)

    def shut(self) -> None:
        """Close without a word to the server."""
        _shut(self._conn)


def _start(conn: imaplib.IMAP4, login: _Login) -> frozenset[str]:
    """STARTTLS if asked, log in; the capabilities the server has after login."""
    if login.security is IMAPSecurity.STARTTLS:
        if "STARTTLS" not in conn.capabilities:
            raise AdapterError(
                f"IMAP {login.where} does not offer STARTTLS; use security='tls' or (on a "
                "network you trust only) 'plain'"
            )
        conn.starttls(login.ssl_context)
    if "LOGINDISABLED" in conn.capabilities:
        raise AdapterError(
            f"IMAP {login.where} refuses logins on this connection (LOGINDISABLED); use "
            "security='tls' or 'starttls'"
        )
    try:
        if login.username.isascii() and login.password.isascii():
            conn.login(login.username, login.password)
        elif "AUTH=PLAIN" in conn.capabilities:
            secret = f"\0{login.username}\0{login.password}".encode()
            conn.authenticate("PLAIN", lambda _challenge: secret)
        else:
            raise AdapterError(
                f"IMAP {login.where}: non-ASCII credentials need AUTH=PLAIN, which the "
                "server does not offer"
            )
    except imaplib.IMAP4.abort:
        raise
    except imaplib.IMAP4.error as exc:
        raise AdapterError(
            f"IMAP {login.where} rejected the credentials of {login.username!r}: {exc}"
        ) from exc
    typ, data = conn.capability()
    if typ != "OK":
        raise AdapterError(f"IMAP {login.where}: CAPABILITY failed after login: {_said(data)}")
    return frozenset(_said(data).upper().split())


class IMAPInbox:
    """Polls one IMAP folder and hands every new message's raw bytes to a callable, once.

    **How a poll goes.** :meth:`poll` opens (or reuses) the connection, selects the folder
    (read-only with ``EXAMINE`` unless ``move_to`` is set), and asks for the messages after the
    cursor's last UID (``UID SEARCH UID n:*``), oldest first, at most ``limit`` of them. Each is
    fetched with ``BODY.PEEK[]`` (so the poller never sets ``\\Seen``) and given to ``handle``;
    when ``handle`` returns, the cursor moves past the message and is saved at once
    (``storage.save_cursor``, name :attr:`cursor_name`), and only then, with ``move_to`` set,
    the message is moved there. A new poller object on the same storage (a restart) goes on
    where the last one stopped: nothing is handed over twice and nothing is skipped. The one
    exception is a crash (or a cursor save that fails) after ``handle`` returned and before
    the cursor was saved: that message is handed over again, which is why the handler must be
    idempotent per message (``ingest_email`` is, by Message-ID).

    **When the handler raises.** The message stays in the folder, the cursor stays before it,
    the failure is logged (WARNING) and counted in the cursor, and the poll stops there (the
    messages after it wait for the next poll, which hands the same message over again). After
    ``max_failures`` failures in a row of one message (in as many polls), the poller gives up
    on it: it is logged at ERROR, left in the folder, and the cursor moves past it (a "poison"
    message never blocks the mailbox for good). Two kinds of exception are not the message's
    fault and never count: :class:`~starlight_sequences.errors.AdapterError` (a storage
    backend that is down is a ``StorageError``) and
    :class:`~starlight_sequences.errors.ConcurrentUpdate`. For those the poll stops, the
    message stays, and the exception propagates to the caller, who waits and polls again. A
    message the server will not hand out (FETCH answered NO) counts as a failure too.

    **UIDVALIDITY.** UIDs mean something only under the folder's UIDVALIDITY. When the folder
    has another one than the cursor (it was deleted and made again, restored, or moved to
    another server), the old UIDs tell nothing about which messages were handled, so the
    poller starts again from the first message of the folder and hands every one over again
    (logged at WARNING): a handler that is idempotent per message, as ``ingest_email`` is by
    Message-ID, then changes nothing for the ones it saw before, and no message that arrived
    around the change is lost. With ``skip_existing=True`` it starts after the messages in the
    folder at that moment instead, as on a first poll.

    **First poll.** With no cursor yet, every message in the folder is handed over; with
    ``skip_existing=True``, only those that arrive later (for a mailbox with years of mail
    that should not be read as replies).

    **Connections.** One connection, kept between polls. A kept connection found dead, or a
    connection that drops during a poll, is replaced once per poll and the poll goes on from
    the saved cursor; if that fails too, or a new connection cannot be opened at all, the poll
    raises :class:`~starlight_sequences.errors.MailboxUnavailable` (poll again later: nothing is
    lost). A message the connection dropped under is fetched again, never handed over twice.
    :meth:`close` (or leaving a ``with`` block) logs out; a later poll reconnects.

    **Moving.** With ``move_to``, each handled message is moved there right after its cursor
    is saved: ``UID MOVE`` when the server offers MOVE (RFC 6851), else ``UID COPY``, flag
    ``\\Deleted`` and ``UID EXPUNGE`` (``EXPUNGE`` of the whole folder when the server lacks
    UIDPLUS, which also removes other messages someone flagged ``\\Deleted``). A missing
    ``move_to`` folder is created when the server says so (``TRYCREATE``). A move that fails
    is logged at WARNING and the message stays where it is; it is not handed over again.
    Messages the poller gave up on are never moved.

    **Threads and processes.** Calls on one object take turns (a lock). Run one poller per
    mailbox and workspace: two pollers sharing a cursor would each hand over the same
    messages.

    **Logging** (logger ``starlight_sequences.adapters.imap``): what happened to which message,
    with ``extra`` fields ``mailbox``, ``uid`` and ``uidvalidity``; never the password, never
    a message's content (the handler's own exception and traceback are logged when it raises).

    Args:
        host: the IMAP server.
        port: its port; None: 993 for tls, 143 for starttls and plain.
        username, password: the mailbox's login (LOGIN, or AUTHENTICATE PLAIN for non-ASCII
            credentials).
        security: tls (default), starttls, or plain.
        allow_plaintext_login: with ``security="plain"``, log in without encryption anyway
            (a server on a network you trust only); without it that is refused when the
            inbox is made.
        folder: the folder to read, as the server names it (``INBOX``, ``INBOX.Replies``...).
        move_to: where handled messages go; None: they stay.
        skip_existing: see "First poll" above.
        max_failures: failures of one message before it is skipped (at least 1).
        timeout: seconds for connecting and for each command.
        ssl_context: for tls and starttls; None: the system's default, which verifies the
            server's certificate and name.

    Raises:
        AdapterError: an unknown security mode, plain security without
            ``allow_plaintext_login=True``, an empty or multi-line host, username, password or
            folder, ``move_to`` equal to ``folder``, a port out of range, a timeout that is not
            positive, or ``max_failures`` below 1.
    """

    def __init__(
        self,
        host: str,
        port: int | None = None,
        *,
        username: str,
        password: str,
        security: IMAPSecurity | str = IMAPSecurity.TLS,
        allow_plaintext_login: bool = False,
        folder: str = "INBOX",
        move_to: str | None = None,
        skip_existing: bool = False,
        max_failures: int = 5,
        timeout: float = 30.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        try:
            self._security = IMAPSecurity(security)
        except ValueError:
            raise AdapterError(
                f"IMAP inbox: security {security!r} is not one of tls, starttls, plain"
            ) from None
        _check_text("host", host)
        _check_text("username", username)
        _check_text("password", password, secret=True)
        self._folder = _check_text("folder", folder)
        if move_to is not None and _check_text("move_to", move_to) == folder:
            raise AdapterError(f"IMAP inbox: move_to is the folder it reads ({folder!r})")
        if port is not None and (type(port) is not int or not 0 < port < 65536):
            raise AdapterError(f"IMAP inbox: port {port!r} is not a TCP port")
        if not timeout > 0:
            raise AdapterError(f"IMAP inbox: timeout must be positive, not {timeout!r}")
        if type(max_failures) is not int or max_failures < 1:
            raise AdapterError(f"IMAP inbox: max_failures must be 1 or more, not {max_failures!r}")
        if self._security is IMAPSecurity.PLAIN and not allow_plaintext_login:
            raise AdapterError(
                f"IMAP inbox: security='plain' would send the password of {username!r} to "
                f"{host} unencrypted; use security='tls' or 'starttls', or pass "
                "allow_plaintext_login=True (a server on a network you trust only)"
            )
        self._move_to = move_to
        self._skip_existing = skip_existing
        self._max_failures = max_failures
        self._mailbox = f"{username}@{host.lower()}/{folder}"
        self._cursor_name = _cursor_name(username, host.lower(), folder)
        self._login = _Login(
            host=host,
            port=port if port is not None else _DEFAULT_PORTS[self._security],
            security=self._security,
            username=username,
            password=password,
            timeout=timeout,
            # Loading the system's CA store takes tens of milliseconds: once per inbox.
            ssl_context=(
                None
                if self._security is IMAPSecurity.PLAIN
                else ssl_context or ssl.create_default_context()
            ),
            mailbox=self._mailbox,
        )
        self._lock = threading.Lock()
        self._session: _Session | None = None

    @property
    def mailbox(self) -> str:
        """``user@host/folder``: how the log and the reports name this mailbox."""
        return self._mailbox

    @property
    def cursor_name(self) -> str:
        """The storage cursor this poller keeps: ``imap:user@host/folder`` (shortened with a
        digest when longer than the storage port allows)."""
        return self._cursor_name

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Log out and close the connection, if one is open. A later poll opens a new one."""
        with self._lock:
            session, self._session = self._session, None
            if session is not None:
                session.logout()

    def poll(
        self,
        handle: Callable[[bytes], object],
        *,
        storage: Storage,
        workspace_id: WorkspaceId,
        limit: int = 100,
    ) -> PollReport:
        """Hand the folder's new messages to ``handle``, oldest first, each once.

        Args:
            handle: called with each message's raw bytes (RFC 5322, as the server stores
                it); what it returns is ignored, an exception keeps the message for the next
                poll (see the class docstring).
            storage: where the cursor is kept (``load_cursor``/``save_cursor``).
            workspace_id: the workspace the cursor belongs to.
            limit: at most this many messages are handed over (or given up on) in this
                poll; :attr:`PollReport.more` says when more are waiting.

        Raises:
            InvalidInput: ``limit`` is not a positive int.
            MailboxUnavailable: the server cannot be reached, or the connection dropped
                again after one reconnect. Poll again later.
            AdapterError: credentials rejected, TLS or its certificate failed, STARTTLS not
                offered, the folder cannot be opened; or the handler raised one (the message
                stays, see the class docstring).
            ConcurrentUpdate: the handler raised it (the message stays).
            StorageError: the cursor could not be read or saved.
        """
        if type(limit) is not int or limit < 1:
            raise InvalidInput(f"IMAP poll: limit must be a positive int, not {limit!r}")
        with self._lock:
            run = _Run(limit=limit)
            while True:
                try:
                    self._poll(run, handle, storage, workspace_id)
                    break
                except _Lost as lost:
                    session, self._session = self._session, None
                    if session is not None:
                        session.shut()
                    if run.reconnects:
                        raise MailboxUnavailable(
                            f"IMAP {self._mailbox}: the connection dropped again after "
                            f"reconnecting ({lost}); poll again later"
                        ) from lost
                    run.reconnects += 1
                    log.info(
                        "IMAP %s: the connection dropped (%s); reconnecting",
                        self._mailbox,
                        lost,
                        extra={"mailbox": self._mailbox},
                    )
        if run.handled or run.skipped or run.failed is not None:
            log.info(
                "IMAP %s: %d message(s) handed over, %d failed, %d given up on%s",
                self._mailbox,
                len(run.handled),
                0 if run.failed is None else 1,
                len(run.skipped),
                "; more are waiting" if run.more else "",
                extra={"mailbox": self._mailbox, "uidvalidity": run.uidvalidity},
            )
        return run.report(self._mailbox)

    # -- one poll -------------------------------------------------------------------------

    def _poll(
        self,
        run: _Run,
        handle: Callable[[bytes], object],
        storage: Storage,
        workspace_id: WorkspaceId,
    ) -> None:
        if self._session is None:
            self._session = _Session.open(self._login)
        conn = self._session
        uidvalidity, uidnext = conn.select(self._folder, readonly=self._move_to is None)
        run.uidvalidity = uidvalidity
        cursor = self._cursor(conn, storage, workspace_id, uidvalidity, uidnext, run)
        uids = conn.uids_after(cursor.last_uid)
        batch = uids[: run.remaining]
        run.more = len(uids) > len(batch)
        for uid in batch:
            cursor = self._take(conn, uid, cursor, run, handle, storage, workspace_id)
            if run.failed is not None:
                return

    def _cursor(
        self,
        conn: _Session,
        storage: Storage,
        workspace_id: WorkspaceId,
        uidvalidity: int,
        uidnext: int | None,
        run: _Run,
    ) -> _Cursor:
        """The stored cursor, or a new one (first poll, UIDVALIDITY changed), saved."""
        stored = storage.load_cursor(workspace_id, self._cursor_name)
        cursor = None if stored is None else _Cursor.from_json(stored)
        fields = {"mailbox": self._mailbox, "uidvalidity": uidvalidity}
        if cursor is not None and cursor.uidvalidity == uidvalidity:
            return cursor
        if stored is not None and cursor is None:
            log.warning(
                "IMAP %s: the stored cursor %r is not one this version wrote; starting over",
                self._mailbox,
                self._cursor_name,
                extra=fields,
            )
        start = 0
        if self._skip_existing:
            start = uidnext - 1 if uidnext else max(conn.uids_after(0), default=0)
        if cursor is not None:
            run.restarted = True
            log.warning(
                "IMAP %s: UIDVALIDITY changed from %d to %d; starting again %s",
                self._mailbox,
                cursor.uidvalidity,
                uidvalidity,
                f"after UID {start}" if start else "from the first message",
                extra=fields,
            )
        return self._save(storage, workspace_id, _Cursor(uidvalidity=uidvalidity, last_uid=start))

    def _take(
        self,
        conn: _Session,
        uid: int,
        cursor: _Cursor,
        run: _Run,
        handle: Callable[[bytes], object],
        storage: Storage,
        workspace_id: WorkspaceId,
    ) -> _Cursor:
        """Fetch one message, hand it over, move the cursor (and the message); the new cursor."""
        fields = {"mailbox": self._mailbox, "uid": uid, "uidvalidity": cursor.uidvalidity}
        try:
            raw = conn.fetch(uid)
        except _Unreadable:
            return self._failed(uid, cursor, run, storage, workspace_id, fields)
        if raw is None:
            log.info(
                "IMAP %s: message %d was removed before it was read; going past it",
                self._mailbox,
                uid,
                extra=fields,
            )
            return self._save(storage, workspace_id, cursor.past(uid))
        try:
            handle(raw)
        except (AdapterError, ConcurrentUpdate):
            log.warning(
                "IMAP %s: the handler could not work on message %d; it stays, and this is "
                "not counted against it",
                self._mailbox,
                uid,
                exc_info=True,
                extra=fields,
            )
            raise
        except Exception:
            return self._failed(uid, cursor, run, storage, workspace_id, fields)
        cursor = self._save(storage, workspace_id, cursor.past(uid))
        run.handled.append(uid)
        log.debug(
            "IMAP %s: handed over message %d (%d bytes)",
            self._mailbox,
            uid,
            len(raw),
            extra=fields,
        )
        if self._move_to is not None:
            moved, said = conn.move(uid, self._move_to)
            if moved:
                run.moved.append(uid)
            else:
                log.warning(
                    "IMAP %s: message %d was handled but could not be moved to %r (%s); it "
                    "stays in the folder and is not handed over again",
                    self._mailbox,
                    uid,
                    self._move_to,
                    said,
                    extra=fields,
                )
        return cursor

    def _failed(
        self,
        uid: int,
        cursor: _Cursor,
        run: _Run,
        storage: Storage,
        workspace_id: WorkspaceId,
        fields: dict[str, object],
    ) -> _Cursor:
        """Count a failure of ``uid`` (called in an ``except`` block: logs the exception)."""
        failures = cursor.failures + 1 if cursor.failing_uid == uid else 1
        if failures >= self._max_failures:
            log.error(
                "IMAP %s: message %d failed %d time(s); giving up on it (it stays in the "
                "folder, the poller goes on past it)",
                self._mailbox,
                uid,
                failures,
                exc_info=True,
                extra=fields,
            )
            run.skipped.append(uid)
            return self._save(storage, workspace_id, cursor.past(uid))
        log.warning(
            "IMAP %s: message %d could not be handled (failure %d of %d); it stays and is "
            "tried again on the next poll",
            self._mailbox,
            uid,
            failures,
            self._max_failures,
            exc_info=True,
            extra=fields,
        )
        run.failed, run.failures = uid, failures
        return self._save(
            storage, workspace_id, attrs.evolve(cursor, failing_uid=uid, failures=failures)
        )

    def _save(self, storage: Storage, workspace_id: WorkspaceId, cursor: _Cursor) -> _Cursor:
        storage.save_cursor(workspace_id, self._cursor_name, cursor.to_json())
        return cursor
