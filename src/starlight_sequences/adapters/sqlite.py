"""SQLite adapters: the embedded default storage and credit ledger, in one database file.

Standard-library :mod:`sqlite3` only. The file is opened in WAL mode (readers never block the
writer) with a busy timeout, and the schema is migrated on open (``PRAGMA user_version``
counts the migrations applied; the list is :data:`MIGRATIONS`). Every port operation is one
transaction; writes start with ``BEGIN IMMEDIATE``, so writers in several threads or processes
on one host take turns instead of failing half-way, and ``claim_due`` selects and updates in
that one transaction, so two workers never receive the same send.

Each thread (and each process, also after ``fork``) gets its own connection: a connection is
never used by two threads (a dispatcher with several sends in flight keeps its send threads, so
their connections are opened once; ``close`` closes every thread's). Instants are stored as
integer microseconds since the Unix epoch (UTC: unambiguous and sortable) and come back as
UTC-aware datetimes. Values that are never queried (a campaign's shape and settings, an
enrolment's lead and steps) are JSON columns; the fields queries filter on are real, indexed
columns. The mapping between rows and objects is the one the PostgreSQL adapter uses too
(:mod:`starlight_sequences.adapters._rows`), with this adapter's
:class:`~starlight_sequences.adapters._rows.RowCodec` for instants and flags.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import sqlite3
import threading
import time
from collections.abc import Collection, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Final, Self, TypeVar

import attrs

from starlight_sequences.adapters._rows import (
    ACTIVITY_COLUMNS,
    CAMPAIGN_COLUMNS,
    DRAFT_COLUMNS,
    ENROLMENT_COLUMNS,
    MOVEMENT_COLUMNS,
    SEND_COLUMNS,
    SENDER_HOLD_COLUMNS,
    RowCodec,
    activity_from_row,
    activity_row,
    campaign_from_row,
    campaign_row,
    draft_from_row,
    draft_row,
    enrolment_from_row,
    enrolment_row,
    instant,
    movement_from_row,
    movement_row,
    optional_instant,
    optional_utc,
    send_from_row,
    send_row,
    sender_hold_from_row,
    sender_hold_row,
    utc,
)
from starlight_sequences.bounce_breaker import SenderHold
from starlight_sequences.cadence import CadenceStep
from starlight_sequences.campaigns import (
    Campaign,
    Enrolment,
    EnrolmentStatus,
    ScheduledSend,
    SendStatus,
)
from starlight_sequences.channels import Action
from starlight_sequences.credits import CreditAccount, CreditMovement
from starlight_sequences.drafts import Draft
from starlight_sequences.errors import (
    CampaignNotFound,
    EnrolmentNotFound,
    InsufficientCredits,
    InvalidInput,
    StorageError,
)
from starlight_sequences.events import Activity, ActivityPage, JournalEntry
from starlight_sequences.ids import CampaignId, LeadId, SenderId, WorkspaceId
from starlight_sequences.ports.storage import (
    Changes,
    check_cursor,
    check_lead_filter,
    check_lease,
    check_one_filter,
    check_page_limit,
    check_revision,
    check_workspace,
    finish_changes,
    position_text,
    read_position,
)

__all__ = ["MIGRATIONS", "SQLiteCreditLedger", "SQLiteStorage"]

_T = TypeVar("_T")

_POSITION_TAG: Final = "sqlite"
"""How this adapter's journal positions begin."""

MIGRATIONS: Final[tuple[tuple[str, ...], ...]] = (
    # 1: the first schema.
    (
        """CREATE TABLE campaigns (
            seq INTEGER PRIMARY KEY,
            workspace_id TEXT NOT NULL,
            id TEXT NOT NULL,
            status TEXT NOT NULL,
            revision INTEGER NOT NULL,
            name TEXT NOT NULL,
            brief TEXT NOT NULL,
            created_at INTEGER NOT NULL,
            approved_at INTEGER,
            paused_at INTEGER,
            finished_at INTEGER,
            shape TEXT NOT NULL,
            settings TEXT NOT NULL,
            email_identity TEXT,
            linkedin_identity TEXT,
            excluded TEXT NOT NULL,
            UNIQUE (workspace_id, id)
        )""",
        """CREATE TABLE enrolments (
            seq INTEGER PRIMARY KEY,
            workspace_id TEXT NOT NULL,
            campaign_id TEXT NOT NULL,
            lead_id TEXT NOT NULL,
            email_domain TEXT,
            status TEXT NOT NULL,
            approved INTEGER NOT NULL,
            reason TEXT NOT NULL,
            resume_at INTEGER,
            accepted_at INTEGER,
            connect_sent_at INTEGER,
            revision INTEGER NOT NULL,
            lead TEXT NOT NULL,
            steps TEXT NOT NULL,
            UNIQUE (workspace_id, campaign_id, lead_id)
        )""",
        "CREATE INDEX enrolments_by_lead ON enrolments (workspace_id, lead_id)",
        "CREATE INDEX enrolments_by_domain ON enrolments (workspace_id, email_domain)",
        "CREATE INDEX enrolments_by_status ON enrolments (workspace_id, campaign_id, status)",
        """CREATE TABLE drafts (
            workspace_id TEXT NOT NULL,
            campaign_id TEXT NOT NULL,
            lead_id TEXT NOT NULL,
            step INTEGER NOT NULL,
            action TEXT NOT NULL,
            subject TEXT,
            body TEXT NOT NULL,
            status TEXT NOT NULL,
            problem TEXT NOT NULL,
            version INTEGER NOT NULL,
            edited INTEGER NOT NULL,
            PRIMARY KEY (workspace_id, campaign_id, lead_id, step)
        ) WITHOUT ROWID""",
        """CREATE TABLE sends (
            workspace_id TEXT NOT NULL,
            id TEXT NOT NULL,
            campaign_id TEXT NOT NULL,
            lead_id TEXT NOT NULL,
            step INTEGER NOT NULL,
            action TEXT NOT NULL,
            sender_id TEXT NOT NULL,
            due_at INTEGER NOT NULL,
            forecast_at INTEGER NOT NULL,
            status TEXT NOT NULL,
            attempts INTEGER NOT NULL,
            lease_owner TEXT,
            lease_expires_at INTEGER,
            sent_at INTEGER,
            receipt TEXT NOT NULL,
            reason TEXT NOT NULL,
            with_note INTEGER NOT NULL,
            revision INTEGER NOT NULL,
            PRIMARY KEY (workspace_id, id)
        ) WITHOUT ROWID""",
        "CREATE INDEX sends_by_lead ON sends (workspace_id, campaign_id, lead_id, step)",
        # The claim query walks these two in due_at order; partial, so they hold only the
        # sends a dispatcher may claim.
        """CREATE INDEX sends_due ON sends (due_at, id)
            WHERE status IN ('scheduled', 'waiting')""",
        "CREATE INDEX sends_leased ON sends (lease_expires_at) WHERE status = 'claimed'",
        # sender_bookings reads planned instants of scheduled/claimed sends, sent_at of sent ones.
        """CREATE INDEX sends_by_sender_due ON sends (workspace_id, sender_id, due_at)
            WHERE status IN ('scheduled', 'claimed')""",
        """CREATE INDEX sends_by_sender_sent ON sends (workspace_id, sender_id, sent_at)
            WHERE status = 'sent'""",
        """CREATE TABLE activities (
            seq INTEGER PRIMARY KEY,
            workspace_id TEXT NOT NULL,
            kind TEXT NOT NULL,
            at INTEGER NOT NULL,
            campaign_id TEXT,
            lead_id TEXT,
            step INTEGER,
            detail TEXT NOT NULL,
            key TEXT NOT NULL
        )""",
        "CREATE INDEX activities_by_campaign ON activities (workspace_id, campaign_id)",
        "CREATE INDEX activities_by_lead ON activities (workspace_id, lead_id)",
        "CREATE INDEX activities_by_key ON activities (workspace_id, key) WHERE key <> ''",
        """CREATE TABLE suppression (
            workspace_id TEXT NOT NULL,
            key TEXT NOT NULL,
            PRIMARY KEY (workspace_id, key)
        ) WITHOUT ROWID""",
        """CREATE TABLE credit_accounts (
            workspace_id TEXT PRIMARY KEY,
            available INTEGER NOT NULL,
            reserved INTEGER NOT NULL
        )""",
        """CREATE TABLE credit_movements (
            seq INTEGER PRIMARY KEY,
            workspace_id TEXT NOT NULL,
            kind TEXT NOT NULL,
            amount INTEGER NOT NULL,
            campaign_id TEXT,
            lead_id TEXT,
            key TEXT NOT NULL,
            note TEXT NOT NULL
        )""",
        "CREATE INDEX credit_movements_by_campaign ON credit_movements (workspace_id, campaign_id)",
        "CREATE INDEX credit_movements_by_key ON credit_movements (workspace_id, key)"
        " WHERE key <> ''",
    ),
    # 2: sends found by the Message-ID of what was sent (replies and bounces name it).
    ("CREATE INDEX sends_by_receipt ON sends (workspace_id, receipt) WHERE receipt <> ''",),
    # 3: named cursors of pollers (the IMAP poller's last message per mailbox).
    (
        """CREATE TABLE cursors (
            workspace_id TEXT NOT NULL,
            name TEXT NOT NULL,
            value TEXT NOT NULL,
            PRIMARY KEY (workspace_id, name)
        ) WITHOUT ROWID""",
    ),
    # 4: the journal handed out by position (activities_since), with a machine-readable reason.
    # Rows already there keep their seq, which is their position.
    (
        "ALTER TABLE activities ADD COLUMN reason TEXT NOT NULL DEFAULT ''",
        "CREATE INDEX activities_by_position ON activities (workspace_id, seq)",
    ),
    # 5: approval finds the drafts that need attention without reading the ready ones.
    (
        """CREATE INDEX drafts_needing_attention
            ON drafts (workspace_id, campaign_id, lead_id, step)
            WHERE status = 'needs_attention'""",
    ),
    # 6: mailboxes the bounce breaker held (the sends_by_sender_sent index serves its window).
    (
        """CREATE TABLE sender_holds (
            workspace_id TEXT NOT NULL,
            sender_id TEXT NOT NULL,
            held_at INTEGER NOT NULL,
            sends INTEGER NOT NULL,
            hard_bounces INTEGER NOT NULL,
            threshold TEXT NOT NULL,
            resumed_at INTEGER,
            revision INTEGER NOT NULL,
            PRIMARY KEY (workspace_id, sender_id)
        ) WITHOUT ROWID""",
    ),
    # 7: sender pools: each lead's assigned senders (a JSON list; "" for rows from before).
    ("ALTER TABLE enrolments ADD COLUMN senders TEXT NOT NULL DEFAULT ''",),
)
"""The schema, as migrations: ``MIGRATIONS[n]`` takes a database from version ``n`` to
``n + 1``. Append new migrations; never edit one that shipped."""

_CHUNK: Final = 500
"""Most values bound in one ``IN (...)`` list (SQLite allows far more; this keeps it modest)."""


def _chunks(values: Sequence[_T]) -> Iterator[Sequence[_T]]:
    for start in range(0, len(values), _CHUNK):
        yield values[start : start + _CHUNK]


def _marks(count: int) -> str:
    return ",".join("?" * count)


_UNFINISHED: Final = ", ".join(
    f"'{status.value}'" for status in EnrolmentStatus if not status.is_final
)
"""Enrolment statuses that are not final, as an SQL list (``enrolments_by_status`` serves
the existence check on them)."""


_CODEC: Final = RowCodec(
    instant_out=instant,
    optional_instant_out=optional_instant,
    instant_in=utc,
    optional_instant_in=optional_utc,
    # SQLite has no boolean type: flags are stored as 0/1 integers.
    flag_in=bool,
)
"""Instants as integer microseconds since the epoch (UTC), flags as integers."""


def _upsert(table: str, columns: str, key: str) -> str:
    names = [name.strip() for name in columns.split(",")]
    keys = {name.strip() for name in key.split(",")}
    updates = ", ".join(f"{name} = excluded.{name}" for name in names if name not in keys)
    return (
        f"INSERT INTO {table} ({columns}) VALUES ({_marks(len(names))}) "
        f"ON CONFLICT ({key}) DO UPDATE SET {updates}"
    )


_UPSERT_CAMPAIGN: Final = _upsert("campaigns", CAMPAIGN_COLUMNS, "workspace_id, id")
_UPSERT_ENROLMENT: Final = _upsert(
    "enrolments", ENROLMENT_COLUMNS, "workspace_id, campaign_id, lead_id"
)
_UPSERT_DRAFT: Final = _upsert("drafts", DRAFT_COLUMNS, "workspace_id, campaign_id, lead_id, step")
_UPSERT_SEND: Final = _upsert("sends", SEND_COLUMNS, "workspace_id, id")
_UPSERT_SENDER_HOLD: Final = _upsert("sender_holds", SENDER_HOLD_COLUMNS, "workspace_id, sender_id")
_INSERT_ACTIVITY: Final = f"INSERT INTO activities ({ACTIVITY_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?)"
_INSERT_MOVEMENT: Final = (
    f"INSERT INTO credit_movements ({MOVEMENT_COLUMNS}) VALUES (?,?,?,?,?,?,?)"
)


# --- the database ----------------------------------------------------------------------------


class _Database:
    """One SQLite file: a connection per thread and process, migrations, transactions."""

    def __init__(self, path: str | os.PathLike[str], *, busy_timeout: float, durable: bool):
        text = os.fspath(path)
        if not text or text == ":memory:" or text.startswith("file:"):
            raise InvalidInput(
                f"SQLite storage needs a file path, not {text!r} (each connection to an "
                "in-memory database is a different database; use InMemoryStorage instead)"
            )
        if busy_timeout < 0:
            raise InvalidInput(f"SQLite storage: busy_timeout must be >= 0, not {busy_timeout}")
        self.path = Path(text)
        self._busy_ms = int(busy_timeout * 1000)
        self._synchronous = "FULL" if durable else "NORMAL"
        self._local = threading.local()
        self._lock = threading.Lock()
        self._open: list[sqlite3.Connection] = []
        with self._guard("open"):
            self._migrate(self._connection())

    def connection(self) -> sqlite3.Connection:
        """This thread's connection (opened on first use, again after a fork)."""
        return self._connection()

    def _connection(self) -> sqlite3.Connection:
        local = self._local
        conn: sqlite3.Connection | None = getattr(local, "conn", None)
        if conn is not None and local.pid == os.getpid():
            return conn
        # isolation_level=None: no implicit transactions; every operation says BEGIN itself.
        # check_same_thread=False only so close() can close every thread's connection; each
        # connection is used by the thread that opened it.
        conn = sqlite3.connect(
            self.path,
            timeout=self._busy_ms / 1000,
            isolation_level=None,
            check_same_thread=False,
        )
        conn.execute(f"PRAGMA busy_timeout = {self._busy_ms}")
        mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
        if str(mode).lower() != "wal":
            mode = self._switch_to_wal(conn)
        if str(mode).lower() != "wal":
            conn.close()
            raise StorageError(
                f"SQLite {str(self.path)!r}: cannot switch to WAL mode (journal mode is "
                f"{mode!r}); is the file on a network or read-only file system?"
            )
        conn.execute(f"PRAGMA synchronous = {self._synchronous}")
        conn.execute("PRAGMA cache_size = -32768")  # KiB: bulk writes of 10,000s of rows
        local.conn = conn
        local.pid = os.getpid()
        with self._lock:
            self._open.append(conn)
        return conn

    def _switch_to_wal(self, conn: sqlite3.Connection) -> object:
        # Changing the journal mode needs the file to itself, and SQLite answers SQLITE_BUSY
        # at once (without calling the busy handler) while another process opens it too: so
        # retry, within the busy timeout.
        deadline = time.monotonic() + self._busy_ms / 1000
        while True:
            try:
                return conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            except sqlite3.OperationalError as exc:
                busy = exc.sqlite_errorcode & 0xFF == sqlite3.SQLITE_BUSY
                if not busy or time.monotonic() >= deadline:
                    raise
                time.sleep(0.01)

    def _migrate(self, conn: sqlite3.Connection) -> None:
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > len(MIGRATIONS):
                raise StorageError(
                    f"SQLite database {str(self.path)!r} has schema version {version}; this "
                    f"version of starlight_sequences reads up to {len(MIGRATIONS)}"
                )
            for number in range(version, len(MIGRATIONS)):
                for statement in MIGRATIONS[number]:
                    conn.execute(statement)
            if version < len(MIGRATIONS):
                conn.execute(f"PRAGMA user_version = {len(MIGRATIONS)}")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def schema_version(self) -> int:
        """The number of migrations applied to the file."""
        with self._guard("schema_version"):
            return int(self._connection().execute("PRAGMA user_version").fetchone()[0])

    @contextlib.contextmanager
    def _guard(self, operation: str) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            raise StorageError(
                f"SQLite {str(self.path)!r}: {operation} failed and was rolled back: {exc}"
            ) from exc

    @contextlib.contextmanager
    def write(self, operation: str) -> Iterator[sqlite3.Connection]:
        """One write transaction (``BEGIN IMMEDIATE``): committed on success, else rolled back.

        Raises:
            StorageError: SQLite failed (e.g. still locked after the busy timeout).
        """
        with self._guard(operation):
            conn = self._connection()
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

    @contextlib.contextmanager
    def read(self, operation: str, *, snapshot: bool = False) -> Iterator[sqlite3.Connection]:
        """A connection to read with. One SELECT is atomic on its own; with ``snapshot``,
        every query inside runs in one read transaction and sees the same state."""
        with self._guard(operation):
            conn = self._connection()
            if not snapshot:
                yield conn
                return
            conn.execute("BEGIN")
            try:
                yield conn
            finally:
                if conn.in_transaction:
                    conn.execute("COMMIT")

    def close(self) -> None:
        """Close every connection this object opened (in any thread of this process)."""
        with self._lock:
            opened, self._open = self._open, []
        for conn in opened:
            conn.close()
        self._local = threading.local()


class _SQLiteAdapter:
    """What both adapters share: the database file, its lifetime, ``with`` support."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        busy_timeout: float = 30.0,
        durable: bool = False,
    ) -> None:
        self._db = _Database(path, busy_timeout=busy_timeout, durable=durable)

    @property
    def path(self) -> Path:
        """The database file."""
        return self._db.path

    @property
    def schema_version(self) -> int:
        """How many of :data:`MIGRATIONS` the file has (all of them once opened)."""
        return self._db.schema_version()

    def close(self) -> None:
        """Close this object's connections. It reopens them if used again."""
        self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _action_filter(actions: Collection[Action] | None) -> tuple[str, tuple[str, ...]]:
    """The ``AND action IN (...)`` clause and its parameters; empty for every action."""
    if actions is None:
        return "", ()
    kinds = tuple(sorted({Action(a).value for a in actions}))
    return f"AND action IN ({_marks(len(kinds))})", kinds


class SQLiteStorage(_SQLiteAdapter):
    """The storage port in a SQLite file. See :class:`~starlight_sequences.ports.Storage`.

    Several threads and processes on one host may use the same file at once (each with its own
    ``SQLiteStorage``, or threads sharing one). The file is created and migrated on open.

    Args:
        path: the database file (created if missing). Not ``":memory:"``.
        busy_timeout: seconds a write waits for another writer before failing with
            :class:`~starlight_sequences.errors.StorageError`.
        durable: ``PRAGMA synchronous=FULL`` (every commit survives a power cut) instead of
            ``NORMAL`` (survives a crash of the process; WAL's recommended setting).

    Raises:
        InvalidInput: ``path`` is not a file path.
        StorageError: the file cannot be opened, or a newer library wrote its schema.
    """

    # -- writes ---------------------------------------------------------------------------

    def commit(self, workspace_id: WorkspaceId, changes: Changes) -> bool:
        """See :meth:`Storage.commit`."""
        check_workspace(workspace_id, changes)
        rows = _ChangeRows(workspace_id, changes)
        with self._db.write("commit") as conn:
            return _apply(conn, workspace_id, changes, rows)

    def claim_due(
        self,
        now: dt.datetime,
        *,
        worker_id: str,
        lease: dt.timedelta,
        limit: int,
        workspace_id: WorkspaceId | None = None,
    ) -> list[ScheduledSend]:
        """See :meth:`Storage.claim_due`."""
        if limit <= 0:
            return []
        at = instant(now, "claim_due: now")
        expires_at = instant(now + lease, "claim_due: now + lease")
        expires = utc(expires_at)
        scope = "" if workspace_id is None else "AND s.workspace_id = :ws"
        query = f"""
            SELECT * FROM (
                SELECT {_prefixed("s", SEND_COLUMNS)} FROM sends AS s
                JOIN campaigns AS c ON c.workspace_id = s.workspace_id AND c.id = s.campaign_id
                WHERE s.status IN ('scheduled', 'waiting') AND s.due_at <= :now
                    AND c.status = 'active' {scope}
                ORDER BY s.due_at, s.id LIMIT :limit
            )
            UNION ALL
            SELECT * FROM (
                SELECT {_prefixed("s", SEND_COLUMNS)} FROM sends AS s
                WHERE s.status = 'claimed' AND s.lease_expires_at <= :now {scope}
                ORDER BY s.due_at, s.id LIMIT :limit
            )
            ORDER BY due_at, id, workspace_id LIMIT :limit
        """
        params = {"now": at, "limit": limit, "ws": workspace_id}
        with self._db.write("claim_due") as conn:
            found = [send_from_row(_CODEC, row) for row in conn.execute(query, params)]
            claimed = [
                attrs.evolve(
                    send,
                    status=SendStatus.CLAIMED,
                    lease_owner=worker_id,
                    lease_expires_at=expires,
                    attempts=send.attempts + 1,
                    revision=send.revision + 1,
                )
                for send in found
            ]
            conn.executemany(
                "UPDATE sends SET status = 'claimed', lease_owner = ?, lease_expires_at = ?, "
                "attempts = ?, revision = ? WHERE workspace_id = ? AND id = ?",
                [
                    (
                        worker_id,
                        expires_at,
                        send.attempts,
                        send.revision,
                        send.workspace_id,
                        send.id,
                    )
                    for send in claimed
                ],
            )
        return claimed

    def next_due(
        self, now: dt.datetime, *, workspace_id: WorkspaceId | None = None
    ) -> dt.datetime | None:
        """See :meth:`Storage.next_due`."""
        at = instant(now, "next_due: now")
        scope = "" if workspace_id is None else "AND s.workspace_id = :ws"
        # Each half walks its partial index (sends_due, sends_leased) from ``now`` on.
        query = f"""
            SELECT min(t) FROM (
                SELECT * FROM (
                    SELECT s.due_at AS t FROM sends AS s
                    JOIN campaigns AS c
                        ON c.workspace_id = s.workspace_id AND c.id = s.campaign_id
                    WHERE s.status IN ('scheduled', 'waiting') AND s.due_at > :now
                        AND c.status = 'active' {scope}
                    ORDER BY s.due_at LIMIT 1
                )
                UNION ALL
                SELECT * FROM (
                    SELECT s.lease_expires_at AS t FROM sends AS s
                    WHERE s.status = 'claimed' AND s.lease_expires_at > :now {scope}
                    ORDER BY s.lease_expires_at LIMIT 1
                )
            )
        """
        with self._db.read("next_due") as conn:
            row = conn.execute(query, {"now": at, "ws": workspace_id}).fetchone()
        return None if row is None or row[0] is None else utc(row[0])

    def finish_send(
        self,
        send: ScheduledSend,
        *,
        worker_id: str,
        now: dt.datetime,
        changes: Changes | None = None,
    ) -> None:
        """See :meth:`Storage.finish_send`."""
        self._finish(send, worker_id, now, changes, None)

    def charges_with(self, ledger: object) -> bool:
        """See :meth:`ChargingStorage.charges_with`: a ``SQLiteCreditLedger`` of this file."""
        return isinstance(ledger, SQLiteCreditLedger) and (
            ledger.path == self.path or ledger.path.resolve() == self.path.resolve()
        )

    def finish_send_charging(
        self,
        send: ScheduledSend,
        *,
        worker_id: str,
        now: dt.datetime,
        changes: Changes | None,
        charge: CreditMovement,
    ) -> bool:
        """See :meth:`ChargingStorage.finish_send_charging`: the record, the activity, the
        keyed charge and the balance in one ``BEGIN IMMEDIATE`` transaction."""
        return self._finish(send, worker_id, now, changes, charge)

    def _finish(
        self,
        send: ScheduledSend,
        worker_id: str,
        now: dt.datetime,
        changes: Changes | None,
        charge: CreditMovement | None,
    ) -> bool:
        """Check the lease and write the send's changes in one transaction, with ``charge``
        posted in it when given; False when the ledger refused that charge."""
        combined = finish_changes(send, changes)
        rows = _ChangeRows(send.workspace_id, combined)
        at = instant(now, "finish_send: now")
        with self._db.write("finish_send") as conn:
            stored = conn.execute(
                "SELECT status, lease_owner, lease_expires_at FROM sends "
                "WHERE workspace_id = ? AND id = ?",
                (send.workspace_id, send.id),
            ).fetchone()
            check_lease(send.id, worker_id, stored, at)
            _apply(conn, send.workspace_id, combined, rows)
            if charge is None:
                return True
            try:
                _post(conn, send.workspace_id, (charge,))
            except (InsufficientCredits, InvalidInput):
                return False  # refused before the ledger wrote anything: record without it
        return True

    # -- reads ----------------------------------------------------------------------------

    def get_campaign(self, workspace_id: WorkspaceId, campaign_id: CampaignId) -> Campaign:
        """See :meth:`Storage.get_campaign`."""
        with self._db.read("get_campaign") as conn:
            row = conn.execute(
                f"SELECT {CAMPAIGN_COLUMNS} FROM campaigns WHERE workspace_id = ? AND id = ?",
                (workspace_id, campaign_id),
            ).fetchone()
        if row is None:
            raise CampaignNotFound(f"workspace {workspace_id!r} has no campaign {campaign_id!r}")
        return campaign_from_row(_CODEC, row)

    def list_campaigns(self, workspace_id: WorkspaceId) -> list[Campaign]:
        """See :meth:`Storage.list_campaigns`."""
        with self._db.read("list_campaigns") as conn:
            rows = conn.execute(
                f"SELECT {CAMPAIGN_COLUMNS} FROM campaigns WHERE workspace_id = ? ORDER BY seq",
                (workspace_id,),
            ).fetchall()
        return [campaign_from_row(_CODEC, row) for row in rows]

    def list_enrolments(
        self, workspace_id: WorkspaceId, campaign_id: CampaignId
    ) -> list[Enrolment]:
        """See :meth:`Storage.list_enrolments`."""
        steps: dict[str, tuple[CadenceStep, ...]] = {}
        with self._db.read("list_enrolments") as conn:
            # Decoded row by row (one SELECT sees one state): a campaign's raw rows never all
            # sit in memory beside its enrolments.
            return [
                enrolment_from_row(_CODEC, row, steps)
                for row in conn.execute(
                    f"SELECT {ENROLMENT_COLUMNS} FROM enrolments "
                    "WHERE workspace_id = ? AND campaign_id = ? ORDER BY seq",
                    (workspace_id, campaign_id),
                )
            ]

    def get_enrolment(
        self, workspace_id: WorkspaceId, campaign_id: CampaignId, lead_id: LeadId
    ) -> Enrolment:
        """See :meth:`Storage.get_enrolment`."""
        with self._db.read("get_enrolment") as conn:
            row = conn.execute(
                f"SELECT {ENROLMENT_COLUMNS} FROM enrolments "
                "WHERE workspace_id = ? AND campaign_id = ? AND lead_id = ?",
                (workspace_id, campaign_id, lead_id),
            ).fetchone()
        if row is None:
            raise EnrolmentNotFound(f"campaign {campaign_id!r} has no enrolment of {lead_id!r}")
        return enrolment_from_row(_CODEC, row, {})

    def has_unfinished_enrolments(self, workspace_id: WorkspaceId, campaign_id: CampaignId) -> bool:
        """See :meth:`Storage.has_unfinished_enrolments`."""
        with self._db.read("has_unfinished_enrolments") as conn:
            row = conn.execute(
                "SELECT EXISTS (SELECT 1 FROM enrolments WHERE workspace_id = ? "
                f"AND campaign_id = ? AND status IN ({_UNFINISHED}))",
                (workspace_id, campaign_id),
            ).fetchone()
        return bool(row[0])

    def find_enrolments(
        self,
        workspace_id: WorkspaceId,
        *,
        lead_id: LeadId | None = None,
        email_domain: str | None = None,
        lead_ids: Collection[LeadId] | None = None,
    ) -> list[Enrolment]:
        """See :meth:`Storage.find_enrolments`."""
        check_one_filter(lead_id, email_domain, lead_ids)
        if lead_ids is not None:
            return self._enrolments_of_leads(workspace_id, sorted(set(lead_ids)))
        column, value = (
            ("lead_id", lead_id) if lead_id is not None else ("email_domain", email_domain)
        )
        with self._db.read("find_enrolments") as conn:
            rows = conn.execute(
                f"SELECT {ENROLMENT_COLUMNS} FROM enrolments "
                f"WHERE workspace_id = ? AND {column} = ? ORDER BY seq",
                (workspace_id, value),
            ).fetchall()
        steps: dict[str, tuple[CadenceStep, ...]] = {}
        return [enrolment_from_row(_CODEC, row, steps) for row in rows]

    def _enrolments_of_leads(
        self, workspace_id: WorkspaceId, lead_ids: Sequence[LeadId]
    ) -> list[Enrolment]:
        rows: list[Any] = []
        with self._db.read("find_enrolments", snapshot=True) as conn:
            for chunk in _chunks(lead_ids):
                rows += conn.execute(
                    f"SELECT seq, {ENROLMENT_COLUMNS} FROM enrolments "
                    f"WHERE workspace_id = ? AND lead_id IN ({_marks(len(chunk))})",
                    (workspace_id, *chunk),
                ).fetchall()
        rows.sort(key=lambda row: row[0])
        steps: dict[str, tuple[CadenceStep, ...]] = {}
        return [enrolment_from_row(_CODEC, row[1:], steps) for row in rows]

    def list_drafts(
        self,
        workspace_id: WorkspaceId,
        campaign_id: CampaignId,
        lead_id: LeadId | None = None,
        *,
        lead_ids: Collection[LeadId] | None = None,
    ) -> list[Draft]:
        """See :meth:`Storage.list_drafts`."""
        check_lead_filter("list_drafts", lead_id, lead_ids)
        query = f"SELECT {DRAFT_COLUMNS} FROM drafts WHERE workspace_id = ? AND campaign_id = ?"
        params: tuple[str, ...] = (workspace_id, campaign_id)
        if lead_ids is not None:
            rows: list[Any] = []
            with self._db.read("list_drafts", snapshot=True) as conn:
                for chunk in _chunks(sorted(set(lead_ids))):
                    rows += conn.execute(
                        query + f" AND lead_id IN ({_marks(len(chunk))})", (*params, *chunk)
                    ).fetchall()
            return sorted(
                (draft_from_row(_CODEC, row) for row in rows), key=lambda r: (r.lead_id, r.step)
            )
        if lead_id is not None:
            query += " AND lead_id = ?"
            params += (lead_id,)
        with self._db.read("list_drafts") as conn:
            rows = conn.execute(query + " ORDER BY lead_id, step", params).fetchall()
        return [draft_from_row(_CODEC, row) for row in rows]

    def drafts_needing_attention(
        self, workspace_id: WorkspaceId, campaign_id: CampaignId
    ) -> list[Draft]:
        """See :meth:`Storage.drafts_needing_attention`."""
        with self._db.read("drafts_needing_attention") as conn:
            rows = conn.execute(
                f"SELECT {DRAFT_COLUMNS} FROM drafts INDEXED BY drafts_needing_attention "
                "WHERE workspace_id = ? AND campaign_id = ? AND status = 'needs_attention' "
                "ORDER BY lead_id, step",
                (workspace_id, campaign_id),
            ).fetchall()
        return [draft_from_row(_CODEC, row) for row in rows]

    def find_send(self, workspace_id: WorkspaceId, *, message_id: str) -> ScheduledSend | None:
        """See :meth:`Storage.find_send`."""
        if not message_id:
            return None
        with self._db.read("find_send") as conn:
            row = conn.execute(
                f"SELECT {SEND_COLUMNS} FROM sends WHERE workspace_id = ? AND receipt = ? "
                "ORDER BY id LIMIT 1",
                (workspace_id, message_id),
            ).fetchone()
        return None if row is None else send_from_row(_CODEC, row)

    def list_sends(
        self,
        workspace_id: WorkspaceId,
        campaign_id: CampaignId,
        lead_id: LeadId | None = None,
        *,
        lead_ids: Collection[LeadId] | None = None,
    ) -> list[ScheduledSend]:
        """See :meth:`Storage.list_sends`."""
        check_lead_filter("list_sends", lead_id, lead_ids)
        query = f"SELECT {SEND_COLUMNS} FROM sends WHERE workspace_id = ? AND campaign_id = ?"
        params: tuple[str, ...] = (workspace_id, campaign_id)
        if lead_ids is not None:
            rows: list[Any] = []
            with self._db.read("list_sends", snapshot=True) as conn:
                for chunk in _chunks(sorted(set(lead_ids))):
                    rows += conn.execute(
                        query + f" AND lead_id IN ({_marks(len(chunk))})", (*params, *chunk)
                    ).fetchall()
            return sorted(
                (send_from_row(_CODEC, row) for row in rows),
                key=lambda r: (r.lead_id, r.step, r.id),
            )
        if lead_id is not None:
            query += " AND lead_id = ?"
            params += (lead_id,)
        with self._db.read("list_sends") as conn:
            rows = conn.execute(query + " ORDER BY lead_id, step, id", params).fetchall()
        return [send_from_row(_CODEC, row) for row in rows]

    def sender_bookings(
        self,
        workspace_id: WorkspaceId,
        sender_id: SenderId,
        start: dt.datetime,
        end: dt.datetime,
        *,
        actions: Collection[Action] | None = None,
    ) -> list[dt.datetime]:
        """See :meth:`Storage.sender_bookings`."""
        window = (instant(start, "sender_bookings: start"), instant(end, "sender_bookings: end"))
        only, kinds = _action_filter(actions)
        query = f"""
            SELECT sent_at FROM sends
            WHERE workspace_id = ? AND sender_id = ? AND status = 'sent'
                AND sent_at >= ? AND sent_at < ? {only}
            UNION ALL
            SELECT due_at FROM sends
            WHERE workspace_id = ? AND sender_id = ? AND status IN ('scheduled', 'claimed')
                AND due_at >= ? AND due_at < ? {only}
            ORDER BY 1
        """
        params = (workspace_id, sender_id, *window, *kinds) * 2
        with self._db.read("sender_bookings") as conn:
            rows = conn.execute(query, params).fetchall()
        return [utc(row[0]) for row in rows]

    def last_sent(
        self,
        workspace_id: WorkspaceId,
        sender_id: SenderId,
        *,
        actions: Collection[Action] | None = None,
    ) -> dt.datetime | None:
        """See :meth:`Storage.last_sent`."""
        only, kinds = _action_filter(actions)
        query = f"""
            SELECT max(sent_at) FROM sends
            WHERE workspace_id = ? AND sender_id = ? AND status = 'sent' {only}
        """
        with self._db.read("last_sent") as conn:
            row = conn.execute(query, (workspace_id, sender_id, *kinds)).fetchone()
        return None if row is None or row[0] is None else utc(row[0])

    def recent_sends(
        self,
        workspace_id: WorkspaceId,
        sender_id: SenderId,
        *,
        limit: int,
        after: dt.datetime | None = None,
    ) -> list[ScheduledSend]:
        """See :meth:`Storage.recent_sends`."""
        since = -1 if after is None else instant(after, "recent_sends: after")
        with self._db.read("recent_sends") as conn:
            rows = conn.execute(
                f"SELECT {SEND_COLUMNS} FROM sends "
                "WHERE workspace_id = ? AND sender_id = ? AND status = 'sent' AND sent_at > ? "
                "ORDER BY sent_at DESC, id DESC LIMIT ?",
                (workspace_id, sender_id, since, limit),
            ).fetchall()
        return [send_from_row(_CODEC, row) for row in rows]

    def get_sender_hold(self, workspace_id: WorkspaceId, sender_id: SenderId) -> SenderHold | None:
        """See :meth:`Storage.get_sender_hold`."""
        with self._db.read("get_sender_hold") as conn:
            row = conn.execute(
                f"SELECT {SENDER_HOLD_COLUMNS} FROM sender_holds "
                "WHERE workspace_id = ? AND sender_id = ?",
                (workspace_id, sender_id),
            ).fetchone()
        return None if row is None else sender_hold_from_row(_CODEC, row)

    def list_sender_holds(self, workspace_id: WorkspaceId) -> list[SenderHold]:
        """See :meth:`Storage.list_sender_holds`."""
        with self._db.read("list_sender_holds") as conn:
            rows = conn.execute(
                f"SELECT {SENDER_HOLD_COLUMNS} FROM sender_holds "
                "WHERE workspace_id = ? ORDER BY sender_id",
                (workspace_id,),
            ).fetchall()
        return [sender_hold_from_row(_CODEC, row) for row in rows]

    def list_activities(
        self,
        workspace_id: WorkspaceId,
        *,
        campaign_id: CampaignId | None = None,
        lead_id: LeadId | None = None,
    ) -> list[Activity]:
        """See :meth:`Storage.list_activities`."""
        query = f"SELECT {ACTIVITY_COLUMNS} FROM activities WHERE workspace_id = ?"
        params: tuple[str, ...] = (workspace_id,)
        if campaign_id is not None:
            query += " AND campaign_id = ?"
            params += (campaign_id,)
        if lead_id is not None:
            query += " AND lead_id = ?"
            params += (lead_id,)
        with self._db.read("list_activities") as conn:
            rows = conn.execute(query + " ORDER BY seq", params).fetchall()
        return [activity_from_row(_CODEC, row) for row in rows]

    def activities_since(
        self, workspace_id: WorkspaceId, cursor: str | None, *, limit: int
    ) -> ActivityPage:
        """See :meth:`Storage.activities_since`. A position is the row's ``seq`` (its rowid).

        Why rowid order is commit order, so a reader never passes a row committed later with a
        smaller seq: every write transaction starts with ``BEGIN IMMEDIATE``, so writers hold
        the database's one write lock in turn and a rowid is taken inside that lock (the
        largest rowid plus one); a reader's snapshot therefore holds a prefix of the journal.
        Rows are never deleted, so the largest rowid never goes back and no seq is reused.
        """
        check_page_limit(limit)
        start = read_position(cursor, _POSITION_TAG, 1)
        after = 0 if start is None else start[0]
        with self._db.read("activities_since") as conn:
            rows = conn.execute(
                f"SELECT seq, {ACTIVITY_COLUMNS} FROM activities "
                "WHERE workspace_id = ? AND seq > ? ORDER BY seq LIMIT ?",
                (workspace_id, after, limit + 1),
            ).fetchall()
        entries = tuple(
            JournalEntry(
                position=position_text(_POSITION_TAG, row[0]),
                activity=activity_from_row(_CODEC, row[1:]),
            )
            for row in rows[:limit]
        )
        return ActivityPage(
            entries=entries,
            cursor=entries[-1].position if entries else position_text(_POSITION_TAG, after),
            more=len(rows) > limit,
        )

    def suppressed(self, workspace_id: WorkspaceId, keys: Collection[str]) -> set[str]:
        """See :meth:`Storage.suppressed`."""
        wanted = sorted(set(keys))
        found: set[str] = set()
        with self._db.read("suppressed", snapshot=len(wanted) > _CHUNK) as conn:
            for chunk in _chunks(wanted):
                found.update(
                    row[0]
                    for row in conn.execute(
                        "SELECT key FROM suppression WHERE workspace_id = ? "
                        f"AND key IN ({_marks(len(chunk))})",
                        (workspace_id, *chunk),
                    )
                )
        return found

    # -- cursors --------------------------------------------------------------------------

    def load_cursor(self, workspace_id: WorkspaceId, name: str) -> str | None:
        """See :meth:`Storage.load_cursor`."""
        check_cursor(name)
        with self._db.read("load_cursor") as conn:
            row = conn.execute(
                "SELECT value FROM cursors WHERE workspace_id = ? AND name = ?",
                (workspace_id, name),
            ).fetchone()
        return None if row is None else str(row[0])

    def save_cursor(self, workspace_id: WorkspaceId, name: str, value: str) -> None:
        """See :meth:`Storage.save_cursor`."""
        check_cursor(name, value)
        with self._db.write("save_cursor") as conn:
            conn.execute(
                "INSERT INTO cursors (workspace_id, name, value) VALUES (?, ?, ?) "
                "ON CONFLICT (workspace_id, name) DO UPDATE SET value = excluded.value",
                (workspace_id, name, value),
            )


def _prefixed(alias: str, columns: str) -> str:
    return ", ".join(f"{alias}.{name.strip()}" for name in columns.split(","))


_EAGER_ROWS: Final = 1_000
"""Changes of at most this many records are encoded before the write lock is taken."""


class _ChangeRows:
    """The rows of a :class:`Changes`.

    A small change (a send's outcome, an edit) is encoded before the write lock is taken, so
    the lock is held for the writes only. A big one (a campaign's creation or approval: one
    row per lead, draft and send) is encoded row by row as ``executemany`` takes them, inside
    the transaction, so its rows never all sit in memory at once; an encoding error there
    rolls the transaction back like any other.
    """

    __slots__ = ("activities", "campaigns", "drafts", "enrolments", "holds", "sends")

    def __init__(self, workspace_id: WorkspaceId, changes: Changes) -> None:
        steps: dict[tuple[CadenceStep, ...], str] = {}
        self.campaigns: Iterable[tuple[object, ...]] = (
            campaign_row(_CODEC, c) for c in changes.campaigns
        )
        self.enrolments: Iterable[tuple[object, ...]] = (
            enrolment_row(_CODEC, e, steps) for e in changes.enrolments
        )
        self.sends: Iterable[tuple[object, ...]] = (send_row(_CODEC, s) for s in changes.sends)
        self.drafts: Iterable[tuple[object, ...]] = (
            draft_row(workspace_id, d) for d in changes.drafts
        )
        self.activities: Iterable[tuple[object, ...]] = (
            activity_row(_CODEC, workspace_id, a) for a in changes.activities
        )
        parts = (changes.campaigns, changes.enrolments, changes.sends, changes.drafts)
        size = sum(len(part) for part in parts) + len(changes.activities)
        if size <= _EAGER_ROWS:
            self.campaigns, self.enrolments, self.sends, self.drafts, self.activities = (
                list(self.campaigns),
                list(self.enrolments),
                list(self.sends),
                list(self.drafts),
                list(self.activities),
            )
        # Few (a hold per tripped mailbox): always a list.
        self.holds: Iterable[tuple[object, ...]] = [
            sender_hold_row(_CODEC, h) for h in changes.sender_holds
        ]


def _apply(
    conn: sqlite3.Connection, workspace_id: WorkspaceId, changes: Changes, rows: _ChangeRows
) -> bool:
    """Check and write ``changes`` inside the caller's write transaction.

    Checks come before any write, in the in-memory adapter's order: a known event key returns
    False, then a failed revision check raises ConcurrentUpdate.
    """
    event_keys = sorted({a.key for a in changes.activities if a.key})
    for chunk in _chunks(event_keys):
        known = conn.execute(
            "SELECT 1 FROM activities WHERE workspace_id = ? AND key <> '' "
            f"AND key IN ({_marks(len(chunk))}) LIMIT 1",
            (workspace_id, *chunk),
        ).fetchone()
        if known is not None:
            return False
    _check_campaigns(conn, workspace_id, changes.campaigns)
    _check_enrolments(conn, workspace_id, changes.enrolments)
    _check_sends(conn, workspace_id, changes.sends)
    _check_holds(conn, workspace_id, changes.sender_holds)
    if changes.campaigns:
        conn.executemany(_UPSERT_CAMPAIGN, rows.campaigns)
    if changes.enrolments:
        conn.executemany(_UPSERT_ENROLMENT, rows.enrolments)
    if changes.sends:
        conn.executemany(_UPSERT_SEND, rows.sends)
    if changes.drafts:
        conn.executemany(_UPSERT_DRAFT, rows.drafts)
    if changes.activities:
        conn.executemany(_INSERT_ACTIVITY, rows.activities)
    if changes.suppress:
        conn.executemany(
            "INSERT OR IGNORE INTO suppression (workspace_id, key) VALUES (?, ?)",
            [(workspace_id, key) for key in changes.suppress],
        )
    if rows.holds:
        conn.executemany(_UPSERT_SENDER_HOLD, rows.holds)
    return True


def _check_campaigns(
    conn: sqlite3.Connection, workspace_id: WorkspaceId, campaigns: Sequence[Campaign]
) -> None:
    for campaign in campaigns:
        row = conn.execute(
            "SELECT revision FROM campaigns WHERE workspace_id = ? AND id = ?",
            (workspace_id, campaign.id),
        ).fetchone()
        check_revision("campaign", campaign.id, None if row is None else row[0], campaign.revision)


def _check_enrolments(
    conn: sqlite3.Connection, workspace_id: WorkspaceId, enrolments: Sequence[Enrolment]
) -> None:
    by_campaign: dict[CampaignId, list[LeadId]] = {}
    for enrolment in enrolments:
        by_campaign.setdefault(enrolment.campaign_id, []).append(enrolment.lead_id)
    stored: dict[tuple[str, str], int] = {}
    for campaign_id, lead_ids in by_campaign.items():
        for chunk in _chunks(sorted(set(lead_ids))):
            stored.update(
                ((campaign_id, lead_id), revision)
                for lead_id, revision in conn.execute(
                    "SELECT lead_id, revision FROM enrolments WHERE workspace_id = ? "
                    f"AND campaign_id = ? AND lead_id IN ({_marks(len(chunk))})",
                    (workspace_id, campaign_id, *chunk),
                )
            )
    for enrolment in enrolments:
        check_revision(
            "enrolment",
            f"{enrolment.campaign_id}/{enrolment.lead_id}",
            stored.get((enrolment.campaign_id, enrolment.lead_id)),
            enrolment.revision,
        )


def _check_sends(
    conn: sqlite3.Connection, workspace_id: WorkspaceId, sends: Sequence[ScheduledSend]
) -> None:
    stored: dict[str, int] = {}
    for chunk in _chunks(sorted({send.id for send in sends})):
        stored.update(
            conn.execute(
                "SELECT id, revision FROM sends WHERE workspace_id = ? "
                f"AND id IN ({_marks(len(chunk))})",
                (workspace_id, *chunk),
            ).fetchall()
        )
    for send in sends:
        check_revision("send", send.id, stored.get(send.id), send.revision)


def _check_holds(
    conn: sqlite3.Connection, workspace_id: WorkspaceId, holds: Sequence[SenderHold]
) -> None:
    for hold in holds:
        row = conn.execute(
            "SELECT revision FROM sender_holds WHERE workspace_id = ? AND sender_id = ?",
            (workspace_id, hold.sender_id),
        ).fetchone()
        check_revision(
            "sender hold", hold.sender_id, None if row is None else row[0], hold.revision
        )


class SQLiteCreditLedger(_SQLiteAdapter):
    """The credit ledger in a SQLite file. See :class:`~starlight_sequences.ports.CreditLedger`.

    May share its file with a :class:`SQLiteStorage`. ``post`` runs in one ``BEGIN IMMEDIATE``
    transaction, so concurrent approvals in several processes never take a balance below zero.

    Args:
        path: as for :class:`SQLiteStorage`.
        busy_timeout: as for :class:`SQLiteStorage`.
        durable: as for :class:`SQLiteStorage`.

    Raises:
        InvalidInput: ``path`` is not a file path.
        StorageError: the file cannot be opened, or a newer library wrote its schema.
    """

    def balance(self, workspace_id: WorkspaceId) -> CreditAccount:
        """See :meth:`CreditLedger.balance`."""
        with self._db.read("balance") as conn:
            return _account(conn, workspace_id)

    def post(self, workspace_id: WorkspaceId, *movements: CreditMovement) -> CreditAccount:
        """See :meth:`CreditLedger.post`.

        Within one call, a second movement with the key of an earlier one is skipped too.
        """
        with self._db.write("post") as conn:
            return _post(conn, workspace_id, movements)

    def movements(
        self, workspace_id: WorkspaceId, *, campaign_id: CampaignId | None = None
    ) -> list[CreditMovement]:
        """See :meth:`CreditLedger.movements`."""
        query = f"SELECT {MOVEMENT_COLUMNS} FROM credit_movements WHERE workspace_id = ?"
        params: tuple[str, ...] = (workspace_id,)
        if campaign_id is not None:
            query += " AND campaign_id = ?"
            params += (campaign_id,)
        with self._db.read("movements") as conn:
            rows = conn.execute(query + " ORDER BY seq", params).fetchall()
        return [movement_from_row(row) for row in rows]


def _post(
    conn: sqlite3.Connection, workspace_id: WorkspaceId, movements: Sequence[CreditMovement]
) -> CreditAccount:
    """Post ``movements`` inside the caller's write transaction (see ``CreditLedger.post``);
    raises before writing anything when the account refuses one."""
    keys = sorted({m.key for m in movements if m.key})
    account = _account(conn, workspace_id)
    posted: set[str] = set()
    for chunk in _chunks(keys):
        posted.update(
            row[0]
            for row in conn.execute(
                "SELECT key FROM credit_movements WHERE workspace_id = ? "
                f"AND key <> '' AND key IN ({_marks(len(chunk))})",
                (workspace_id, *chunk),
            )
        )
    applied: list[CreditMovement] = []
    for movement in movements:
        if movement.key and movement.key in posted:
            continue
        account = account.apply(movement)
        applied.append(movement)
        if movement.key:
            posted.add(movement.key)
    if applied:
        conn.executemany(_INSERT_MOVEMENT, [movement_row(workspace_id, m) for m in applied])
        conn.execute(
            "INSERT INTO credit_accounts (workspace_id, available, reserved) "
            "VALUES (?, ?, ?) ON CONFLICT (workspace_id) DO UPDATE SET "
            "available = excluded.available, reserved = excluded.reserved",
            (workspace_id, account.available, account.reserved),
        )
    return account


def _account(conn: sqlite3.Connection, workspace_id: WorkspaceId) -> CreditAccount:
    row = conn.execute(
        "SELECT available, reserved FROM credit_accounts WHERE workspace_id = ?", (workspace_id,)
    ).fetchone()
    if row is None:
        return CreditAccount(workspace=workspace_id)
    return CreditAccount(workspace=workspace_id, available=row[0], reserved=row[1])
