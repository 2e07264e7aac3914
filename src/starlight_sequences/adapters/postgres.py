"""PostgreSQL adapters: the storage and credit ledger for many dispatcher workers on many hosts.

Needs the ``postgres`` extra (``psycopg`` 3 and ``psycopg_pool``; psycopg needs a libpq: the
system's, or the ``postgres-binary`` extra's wheel); without it, importing this module raises
an ``ImportError`` that names the extra. Each adapter is built from a
connection string (it then owns a :class:`~psycopg_pool.ConnectionPool`) or from a pool the host
app already has. The schema is migrated on open: the ``starlight_schema_version`` table counts
the migrations applied (the list is :data:`MIGRATIONS`), and migrating holds a transaction-level
advisory lock, so processes opening one database at once take turns.

Every port operation is one transaction. Revision checks lock the stored rows
(``SELECT … FOR UPDATE``, in key order) before comparing; a record inserted at revision 0 is
written with ``ON CONFLICT DO NOTHING`` and a row count check, so two writers racing to create
the same record cannot both succeed. ``claim_due`` picks due sends with
``SELECT … FOR UPDATE SKIP LOCKED`` and marks them claimed in the same statement: concurrent
workers skip each other's rows instead of waiting, and never receive the same send while its
lease is live. Inbound-event keys and credit-movement keys are deduplicated by unique indexes;
a credit post locks its workspace's account row, so concurrent posts take turns and a balance
never goes below zero (a ``CHECK`` constraint backs that up).

Tables are named ``starlight_*``; to keep them apart from a host app's own, point the
connection at a schema of their own (``options=-csearch_path=starlight`` in the DSN). Instants
are ``timestamptz`` and come back as UTC-aware datetimes whatever the session time zone.
Values no query filters on (a campaign's shape and settings, an enrolment's lead and cadence)
are ``json`` columns, encoded as the SQLite adapter encodes them: both adapters share one
mapping between rows and objects (:mod:`starlight_sequences.adapters._rows`), each with its
own :class:`~starlight_sequences.adapters._rows.RowCodec` for instants and flags.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Collection, Iterable, Sequence
from typing import Any, Final, NoReturn, Self, TypeVar

try:
    import psycopg
    import psycopg.errors
    from psycopg_pool import ConnectionPool, PoolTimeout
except ImportError as exc:  # psycopg missing, or present without a libpq to load
    raise ImportError(
        "starlight_sequences.adapters.postgres needs the 'postgres' extra: "
        "pip install 'starlight-sequences[postgres]' (psycopg 3 and psycopg-pool; psycopg "
        "then needs a libpq: the system's, or pip install "
        "'starlight-sequences[postgres-binary]' for the psycopg-binary wheel). "
        f"The import failed with: {exc}",
        name=exc.name,
    ) from exc

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
    movement_from_row,
    movement_row,
    send_from_row,
    send_row,
    sender_hold_from_row,
    sender_hold_row,
)
from starlight_sequences.bounce_breaker import SenderHold
from starlight_sequences.cadence import CadenceStep
from starlight_sequences.campaigns import (
    Campaign,
    Enrolment,
    EnrolmentStatus,
    ScheduledSend,
)
from starlight_sequences.channels import Action
from starlight_sequences.credits import CreditAccount, CreditMovement, MovementKind
from starlight_sequences.drafts import Draft
from starlight_sequences.errors import (
    CampaignNotFound,
    ConcurrentUpdate,
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

__all__ = ["MIGRATIONS", "PostgresCreditLedger", "PostgresStorage"]

_T = TypeVar("_T")

_POSITION_TAG: Final = "pg"
"""How this adapter's journal positions begin."""
_Connection = psycopg.Connection[Any]

_UNFINISHED: Final = ", ".join(
    f"'{status.value}'" for status in EnrolmentStatus if not status.is_final
)
"""Enrolment statuses that are not final, as an SQL list: the predicate of the partial index
``starlight_enrolments_unfinished`` and, written the same, of the query that uses it."""

MIGRATIONS: Final[tuple[tuple[str, ...], ...]] = (
    # 1: the first schema.
    (
        """CREATE TABLE starlight_campaigns (
            seq bigint GENERATED ALWAYS AS IDENTITY,
            workspace_id text NOT NULL,
            id text NOT NULL,
            status text NOT NULL,
            revision integer NOT NULL,
            name text NOT NULL,
            brief text NOT NULL,
            created_at timestamptz NOT NULL,
            approved_at timestamptz,
            paused_at timestamptz,
            finished_at timestamptz,
            shape json NOT NULL,
            settings json NOT NULL,
            email_identity json,
            linkedin_identity json,
            excluded json NOT NULL,
            PRIMARY KEY (workspace_id, id)
        )""",
        "CREATE INDEX starlight_campaigns_by_seq ON starlight_campaigns (workspace_id, seq)",
        """CREATE TABLE starlight_enrolments (
            seq bigint GENERATED ALWAYS AS IDENTITY,
            workspace_id text NOT NULL,
            campaign_id text NOT NULL,
            lead_id text NOT NULL,
            email_domain text,
            status text NOT NULL,
            approved boolean NOT NULL,
            reason text NOT NULL,
            resume_at timestamptz,
            accepted_at timestamptz,
            connect_sent_at timestamptz,
            revision integer NOT NULL,
            lead json NOT NULL,
            steps json NOT NULL,
            PRIMARY KEY (workspace_id, campaign_id, lead_id)
        )""",
        "CREATE INDEX starlight_enrolments_by_seq ON starlight_enrolments"
        " (workspace_id, campaign_id, seq)",
        "CREATE INDEX starlight_enrolments_by_lead ON starlight_enrolments (workspace_id, lead_id)",
        "CREATE INDEX starlight_enrolments_by_domain ON starlight_enrolments"
        " (workspace_id, email_domain)",
        """CREATE TABLE starlight_drafts (
            workspace_id text NOT NULL,
            campaign_id text NOT NULL,
            lead_id text NOT NULL,
            step integer NOT NULL,
            action text NOT NULL,
            subject text,
            body text NOT NULL,
            status text NOT NULL,
            problem text NOT NULL,
            version integer NOT NULL,
            edited boolean NOT NULL,
            PRIMARY KEY (workspace_id, campaign_id, lead_id, step)
        )""",
        """CREATE TABLE starlight_sends (
            workspace_id text NOT NULL,
            id text NOT NULL,
            campaign_id text NOT NULL,
            lead_id text NOT NULL,
            step integer NOT NULL,
            action text NOT NULL,
            sender_id text NOT NULL,
            due_at timestamptz NOT NULL,
            forecast_at timestamptz NOT NULL,
            status text NOT NULL,
            attempts integer NOT NULL,
            lease_owner text,
            lease_expires_at timestamptz,
            sent_at timestamptz,
            receipt text NOT NULL,
            reason text NOT NULL,
            with_note boolean NOT NULL,
            revision integer NOT NULL,
            PRIMARY KEY (workspace_id, id)
        )""",
        "CREATE INDEX starlight_sends_by_lead ON starlight_sends"
        " (workspace_id, campaign_id, lead_id, step)",
        # The claim query walks these two in due_at order; partial, so they hold only the
        # sends a dispatcher may claim.
        """CREATE INDEX starlight_sends_due ON starlight_sends (due_at, id)
            WHERE status IN ('scheduled', 'waiting')""",
        """CREATE INDEX starlight_sends_leased ON starlight_sends (lease_expires_at)
            WHERE status = 'claimed'""",
        """CREATE INDEX starlight_sends_by_sender_due ON starlight_sends
            (workspace_id, sender_id, due_at) WHERE status IN ('scheduled', 'claimed')""",
        """CREATE INDEX starlight_sends_by_sender_sent ON starlight_sends
            (workspace_id, sender_id, sent_at) WHERE status = 'sent'""",
        """CREATE TABLE starlight_activities (
            seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            workspace_id text NOT NULL,
            kind text NOT NULL,
            at timestamptz NOT NULL,
            campaign_id text,
            lead_id text,
            step integer,
            detail text NOT NULL,
            key text NOT NULL
        )""",
        "CREATE INDEX starlight_activities_by_workspace ON starlight_activities"
        " (workspace_id, seq)",
        "CREATE INDEX starlight_activities_by_campaign ON starlight_activities"
        " (workspace_id, campaign_id)",
        "CREATE INDEX starlight_activities_by_lead ON starlight_activities (workspace_id, lead_id)",
        # One row per inbound-event key ever applied: the primary key is the deduplication.
        """CREATE TABLE starlight_event_keys (
            workspace_id text NOT NULL,
            key text NOT NULL,
            PRIMARY KEY (workspace_id, key)
        )""",
        """CREATE TABLE starlight_suppression (
            workspace_id text NOT NULL,
            key text NOT NULL,
            PRIMARY KEY (workspace_id, key)
        )""",
        """CREATE TABLE starlight_credit_accounts (
            workspace_id text PRIMARY KEY,
            available bigint NOT NULL CHECK (available >= 0),
            reserved bigint NOT NULL CHECK (reserved >= 0)
        )""",
        """CREATE TABLE starlight_credit_movements (
            seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            workspace_id text NOT NULL,
            kind text NOT NULL,
            amount bigint NOT NULL,
            campaign_id text,
            lead_id text,
            key text NOT NULL,
            note text NOT NULL
        )""",
        "CREATE INDEX starlight_credit_movements_by_workspace ON starlight_credit_movements"
        " (workspace_id, seq)",
        "CREATE UNIQUE INDEX starlight_credit_movements_by_key ON starlight_credit_movements"
        " (workspace_id, key) WHERE key <> ''",
    ),
    # 2: sends found by the Message-ID of what was sent (replies and bounces name it).
    (
        "CREATE INDEX starlight_sends_by_receipt ON starlight_sends (workspace_id, receipt)"
        " WHERE receipt <> ''",
    ),
    # 3: named cursors of pollers (the IMAP poller's last message per mailbox).
    (
        """CREATE TABLE starlight_cursors (
            workspace_id text NOT NULL,
            name text NOT NULL,
            value text NOT NULL,
            PRIMARY KEY (workspace_id, name)
        )""",
    ),
    # 4: completion checks find a campaign's unfinished enrolments without reading them all.
    (
        "CREATE INDEX starlight_enrolments_unfinished ON starlight_enrolments"
        f" (workspace_id, campaign_id) WHERE status IN ({_UNFINISHED})",
    ),
    # 5: the journal handed out by position (activities_since), with a machine-readable reason.
    # A position is (xid, seq): the id of the transaction that wrote the row, then its seq.
    # Rows already there get xid 0, so they come first, in seq order; new rows take their
    # transaction's id (see PostgresStorage.activities_since for why seq alone is not enough).
    (
        "ALTER TABLE starlight_activities ADD COLUMN reason text NOT NULL DEFAULT ''",
        "ALTER TABLE starlight_activities ADD COLUMN xid xid8 NOT NULL DEFAULT '0'",
        "ALTER TABLE starlight_activities ALTER COLUMN xid SET DEFAULT pg_current_xact_id()",
        "CREATE INDEX starlight_activities_by_position ON starlight_activities"
        " (workspace_id, xid, seq)",
    ),
    # 6: approval finds the drafts that need attention without reading the ready ones.
    (
        "CREATE INDEX starlight_drafts_needing_attention ON starlight_drafts"
        " (workspace_id, campaign_id, lead_id, step) WHERE status = 'needs_attention'",
    ),
    # 7: mailboxes the bounce breaker held, and the index its window of recent sends reads.
    (
        """CREATE TABLE starlight_sender_holds (
            workspace_id text NOT NULL,
            sender_id text NOT NULL,
            held_at timestamptz NOT NULL,
            sends integer NOT NULL,
            hard_bounces integer NOT NULL,
            threshold text NOT NULL,
            resumed_at timestamptz,
            revision integer NOT NULL,
            PRIMARY KEY (workspace_id, sender_id)
        )""",
        "CREATE INDEX starlight_sends_sent_by_sender ON starlight_sends"
        " (workspace_id, sender_id, sent_at DESC, id DESC) WHERE status = 'sent'",
    ),
    # 8: sender pools: each lead's assigned senders (a JSON list; "" for rows from before).
    ("ALTER TABLE starlight_enrolments ADD COLUMN senders text NOT NULL DEFAULT ''",),
)
"""The schema, as migrations: ``MIGRATIONS[n]`` takes a database from version ``n`` to
``n + 1``. Append new migrations; never edit one that shipped."""

_MIGRATION_LOCK: Final = 0x5354_4C5F_5345_5153
"""The advisory lock key held while migrating ("STL_SEQS")."""

_RETRIES: Final = 5
"""Attempts of a transaction that PostgreSQL aborted to break a deadlock."""


# --- instants --------------------------------------------------------------------------------


def _aware(value: dt.datetime, what: str) -> dt.datetime:
    if value.utcoffset() is None:
        raise InvalidInput(f"{what}: {value!r} is naive; storage keeps timezone-aware instants")
    return value


def _optional_aware(value: dt.datetime | None, what: str) -> dt.datetime | None:
    return None if value is None else _aware(value, what)


def _utc(value: dt.datetime) -> dt.datetime:
    # psycopg answers in the session's time zone (often Etc/UTC as a ZoneInfo): the port
    # promises datetime.UTC.
    return value if value.tzinfo is dt.UTC else value.astimezone(dt.UTC)


def _optional_utc(value: dt.datetime | None) -> dt.datetime | None:
    return None if value is None else _utc(value)


def _flag(value: bool) -> bool:
    # boolean columns come back as bool already.
    return value


_CODEC: Final = RowCodec(
    instant_out=_aware,
    optional_instant_out=_optional_aware,
    instant_in=_utc,
    optional_instant_in=_optional_utc,
    flag_in=_flag,
)
"""Instants as ``timestamptz`` (aware datetimes, read back in UTC), flags as ``boolean``."""


# --- rows ------------------------------------------------------------------------------------


def _columns(text: str) -> list[str]:
    return [name.strip() for name in text.split(",")]


_JSON_COLUMNS: Final = frozenset(
    {"shape", "settings", "email_identity", "linkedin_identity", "excluded", "lead", "steps"}
)


def _select(columns: str, alias: str = "") -> str:
    """A SELECT list of ``columns``, JSON ones read back as text (decoded here, with caches)."""
    prefix = f"{alias}." if alias else ""
    return ", ".join(
        f"{prefix}{name}::text" if name in _JSON_COLUMNS else f"{prefix}{name}"
        for name in _columns(columns)
    )


def _insert(table: str, columns: str, *, conflict: str = "") -> str:
    names = _columns(columns)
    marks = ", ".join("%s::json" if name in _JSON_COLUMNS else "%s" for name in names)
    return f"INSERT INTO {table} ({columns}) VALUES ({marks}){conflict}"


def _update(table: str, columns: str, key: str) -> str:
    """UPDATE of every non-key column, parameters in column order, then ``revision - 1``."""
    names = _columns(columns)
    keys = _columns(key)
    sets = ", ".join(
        f"{name} = %({name})s::json" if name in _JSON_COLUMNS else f"{name} = %({name})s"
        for name in names
        if name not in keys
    )
    where = " AND ".join(f"{name} = %({name})s" for name in keys)
    return f"UPDATE {table} SET {sets} WHERE {where} AND revision = %(revision)s - 1"


def _upsert(table: str, columns: str, key: str) -> str:
    names = _columns(columns)
    keys = set(_columns(key))
    updates = ", ".join(f"{name} = excluded.{name}" for name in names if name not in keys)
    return _insert(table, columns, conflict=f" ON CONFLICT ({key}) DO UPDATE SET {updates}")


_INSERT_CAMPAIGN: Final = _insert(
    "starlight_campaigns", CAMPAIGN_COLUMNS, conflict=" ON CONFLICT DO NOTHING"
)
_UPDATE_CAMPAIGN: Final = _update("starlight_campaigns", CAMPAIGN_COLUMNS, "workspace_id, id")
_INSERT_ENROLMENT: Final = _insert(
    "starlight_enrolments", ENROLMENT_COLUMNS, conflict=" ON CONFLICT DO NOTHING"
)
_UPDATE_ENROLMENT: Final = _update(
    "starlight_enrolments", ENROLMENT_COLUMNS, "workspace_id, campaign_id, lead_id"
)
_INSERT_SEND: Final = _insert("starlight_sends", SEND_COLUMNS, conflict=" ON CONFLICT DO NOTHING")
_UPDATE_SEND: Final = _update("starlight_sends", SEND_COLUMNS, "workspace_id, id")
_UPSERT_DRAFT: Final = _upsert(
    "starlight_drafts", DRAFT_COLUMNS, "workspace_id, campaign_id, lead_id, step"
)
_INSERT_SENDER_HOLD: Final = _insert(
    "starlight_sender_holds", SENDER_HOLD_COLUMNS, conflict=" ON CONFLICT DO NOTHING"
)
_UPDATE_SENDER_HOLD: Final = _update(
    "starlight_sender_holds", SENDER_HOLD_COLUMNS, "workspace_id, sender_id"
)
_INSERT_ACTIVITY: Final = _insert("starlight_activities", ACTIVITY_COLUMNS)


# --- the database ----------------------------------------------------------------------------


class _EventSeen(Exception):
    """Raised inside a commit to roll it back: another commit recorded an event key first."""


class _Database:
    """A connection pool, the migrations, and transactions with deadlock retries."""

    def __init__(
        self,
        target: str | ConnectionPool[Any],
        *,
        min_size: int,
        max_size: int,
        timeout: float,
    ) -> None:
        self._pid = os.getpid()
        self._timeout = timeout
        if isinstance(target, str):
            if not target:
                raise InvalidInput("PostgreSQL storage needs a connection string, not ''")
            if min_size < 0 or max_size < max(min_size, 1) or timeout <= 0:
                raise InvalidInput(
                    "PostgreSQL storage: need 0 <= min_size <= max_size, max_size >= 1 and a "
                    f"positive timeout (got {min_size}, {max_size}, {timeout})"
                )
            self.pool: ConnectionPool[Any] = ConnectionPool(
                target,
                min_size=min_size,
                max_size=max_size,
                timeout=timeout,
                kwargs={"autocommit": True},
                configure=_configure,
                name="starlight",
                open=False,
            )
            self._owned = True
            try:
                self.pool.open(wait=True, timeout=timeout)
            except PoolTimeout as exc:
                self.pool.close()
                raise StorageError(
                    f"PostgreSQL: no connection within {timeout} s to {_redacted(target)}: {exc}"
                ) from exc
        else:
            self.pool = target
            self._owned = False
        try:
            self.transaction("open", self._migrate)
        except BaseException:
            self.close()
            raise

    @staticmethod
    def _migrate(conn: _Connection) -> None:
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
        conn.execute("CREATE TABLE IF NOT EXISTS starlight_schema_version (version integer)")
        row = conn.execute("SELECT version FROM starlight_schema_version").fetchone()
        version = 0 if row is None else int(row[0])
        if version > len(MIGRATIONS):
            raise StorageError(
                f"PostgreSQL database has schema version {version}; this version of "
                f"starlight_sequences reads up to {len(MIGRATIONS)}"
            )
        for number in range(version, len(MIGRATIONS)):
            for statement in MIGRATIONS[number]:
                conn.execute(statement)
        if row is None:
            conn.execute(
                "INSERT INTO starlight_schema_version (version) VALUES (%s)", (len(MIGRATIONS),)
            )
        elif version < len(MIGRATIONS):
            conn.execute("UPDATE starlight_schema_version SET version = %s", (len(MIGRATIONS),))

    def schema_version(self) -> int:
        """The number of migrations applied to the database."""
        row = self.read(
            "schema_version",
            lambda conn: conn.execute("SELECT version FROM starlight_schema_version").fetchone(),
        )
        return 0 if row is None else int(row[0])

    def _check_process(self, operation: str) -> None:
        if os.getpid() != self._pid:
            raise StorageError(
                f"PostgreSQL {operation}: this adapter was opened in process {self._pid}; "
                "connections cannot cross a fork, so open one in each process"
            )

    def transaction(self, operation: str, work: Callable[[_Connection], _T]) -> _T:
        """Run ``work`` in one transaction: committed on return, rolled back on an error.

        A transaction PostgreSQL aborts to break a deadlock (or a serialization failure) is
        run again, up to a few times: ``work`` must only read and write through ``conn``.

        Raises:
            StorageError: the database failed (unreachable, pool exhausted, ...).
        """
        self._check_process(operation)
        for attempt in range(1, _RETRIES + 1):
            try:
                with self.pool.connection(timeout=self._timeout) as conn, conn.transaction():
                    return work(conn)
            except (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure):
                if attempt == _RETRIES:
                    raise ConcurrentUpdate(
                        f"PostgreSQL {operation}: aborted by deadlocks {_RETRIES} times; retry"
                    ) from None
            except (psycopg.Error, PoolTimeout) as exc:
                raise StorageError(
                    f"PostgreSQL: {operation} failed and was rolled back: {exc}"
                ) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def read(self, operation: str, work: Callable[[_Connection], _T]) -> _T:
        """Run ``work`` on a pooled connection (one statement is atomic on its own).

        Raises:
            StorageError: the database failed.
        """
        self._check_process(operation)
        try:
            with self.pool.connection(timeout=self._timeout) as conn:
                return work(conn)
        except (psycopg.Error, PoolTimeout) as exc:
            raise StorageError(f"PostgreSQL: {operation} failed: {exc}") from exc

    def close(self) -> None:
        """Close the pool if this object opened it (a pool given by the caller stays open)."""
        if self._owned and os.getpid() == self._pid:
            self.pool.close()


def _configure(conn: _Connection) -> None:
    # Instants come back in UTC without a conversion per value.
    conn.execute("SET TIME ZONE 'UTC'")


def _redacted(dsn: str) -> str:
    """The connection string without its password, for error messages."""
    try:
        params = psycopg.conninfo.conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return "(an unparsable connection string)"
    if "password" in params:
        params["password"] = "***"
    return psycopg.conninfo.make_conninfo("", **params)


class _PostgresAdapter:
    """What both adapters share: the pool, its lifetime, ``with`` support."""

    def __init__(
        self,
        target: str | ConnectionPool[Any],
        *,
        min_size: int = 1,
        max_size: int = 4,
        timeout: float = 30.0,
    ) -> None:
        self._db = _Database(target, min_size=min_size, max_size=max_size, timeout=timeout)

    @property
    def pool(self) -> ConnectionPool[Any]:
        """The connection pool (share it with another adapter to share connections)."""
        return self._db.pool

    @property
    def schema_version(self) -> int:
        """How many of :data:`MIGRATIONS` the database has (all of them once opened)."""
        return self._db.schema_version()

    def close(self) -> None:
        """Close the pool if this adapter opened it from a connection string."""
        self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


# --- storage ---------------------------------------------------------------------------------


def _by_key(rows: Iterable[tuple[object, ...]], width: int) -> list[tuple[object, ...]]:
    """One row per key (its first ``width`` columns; the last wins, as in memory), in the
    order the keys first appear (new rows get their ``seq`` in the order of the Changes)."""
    return list({row[:width]: row for row in rows}.values())


def _disagree(rows: Iterable[tuple[object, ...]], width: int, revision_at: int) -> bool:
    """True when one key comes with two revisions: one of them must fail its check."""
    seen: dict[tuple[object, ...], object] = {}
    return any(seen.setdefault(row[:width], row[revision_at]) != row[revision_at] for row in rows)


class _ChangeRows:
    """The rows of a :class:`Changes`, encoded before the transaction starts."""

    __slots__ = ("activities", "campaigns", "disagree", "drafts", "enrolments", "holds", "sends")

    def __init__(self, workspace_id: WorkspaceId, changes: Changes) -> None:
        campaigns = [campaign_row(_CODEC, c) for c in changes.campaigns]
        steps: dict[tuple[CadenceStep, ...], str] = {}
        enrolments = [enrolment_row(_CODEC, e, steps) for e in changes.enrolments]
        sends = [send_row(_CODEC, s) for s in changes.sends]
        holds = [sender_hold_row(_CODEC, h) for h in changes.sender_holds]
        self.holds = _by_key(holds, 2)
        self.campaigns = _by_key(campaigns, 2)
        self.enrolments = _by_key(enrolments, 3)
        self.sends = _by_key(sends, 2)
        self.disagree = (
            _disagree(campaigns, 2, 3)
            or _disagree(enrolments, 3, 10)
            or _disagree(sends, 2, 17)
            or _disagree(holds, 2, 7)
        )
        self.drafts = [draft_row(workspace_id, d) for d in changes.drafts]
        self.activities = [activity_row(_CODEC, workspace_id, a) for a in changes.activities]


class _Conflict(Exception):
    """Raised inside a write to roll it back: a revision check failed (named afterwards)."""


def _run(cur: psycopg.Cursor[Any], query: str, rows: Sequence[Any]) -> int:
    """Run ``query`` once per row (one round trip for many); the rows affected in all."""
    if len(rows) == 1:
        cur.execute(query, rows[0])
    else:
        cur.executemany(query, rows)
    return cur.rowcount


def _write(
    cur: psycopg.Cursor[Any],
    rows: Sequence[tuple[object, ...]],
    *,
    key_width: int,
    revision_at: int,
    insert: str,
    update: str,
    columns: str,
) -> None:
    """Insert the revision-0 rows and update the others, checking revisions as it writes.

    An insert that finds the key taken (``ON CONFLICT DO NOTHING``) or an update that finds
    another revision (``WHERE revision = n - 1``) affects no row: then the whole transaction
    is rolled back (:class:`_Conflict`).
    """
    names = _columns(columns)
    inserts = [row for row in rows if row[revision_at] == 0]
    # Updated in key order, so concurrent writers lock rows in one order and never deadlock.
    updates = [
        dict(zip(names, row, strict=True))
        for row in sorted(
            (row for row in rows if row[revision_at] != 0), key=lambda row: str(row[:key_width])
        )
    ]
    if inserts and _run(cur, insert, inserts) != len(inserts):
        raise _Conflict
    if updates and _run(cur, update, updates) != len(updates):
        raise _Conflict


def _apply(
    conn: _Connection, workspace_id: WorkspaceId, changes: Changes, rows: _ChangeRows
) -> bool:
    """Check and write ``changes`` inside the caller's transaction.

    A known event key returns False before anything is written, as in memory; a failed
    revision check raises :class:`_Conflict` (the caller names the record with
    :func:`_diagnose`). Tables are written campaigns, enrolments, sends, each in key order.
    """
    event_keys = sorted({a.key for a in changes.activities if a.key})
    if event_keys:
        known = conn.execute(
            "SELECT 1 FROM starlight_event_keys WHERE workspace_id = %s AND key = ANY(%s) LIMIT 1",
            (workspace_id, event_keys),
        ).fetchone()
        if known is not None:
            return False
    if rows.disagree:
        raise _Conflict
    with conn.cursor() as cur:
        if event_keys:
            inserted = _run(
                cur,
                "INSERT INTO starlight_event_keys (workspace_id, key) VALUES (%s, %s) "
                "ON CONFLICT DO NOTHING",
                [(workspace_id, key) for key in event_keys],
            )
            if inserted != len(event_keys):
                # Another commit recorded the key since our check: the event was applied.
                raise _EventSeen
        _write(
            cur,
            rows.campaigns,
            key_width=2,
            revision_at=3,
            insert=_INSERT_CAMPAIGN,
            update=_UPDATE_CAMPAIGN,
            columns=CAMPAIGN_COLUMNS,
        )
        _write(
            cur,
            rows.enrolments,
            key_width=3,
            revision_at=10,
            insert=_INSERT_ENROLMENT,
            update=_UPDATE_ENROLMENT,
            columns=ENROLMENT_COLUMNS,
        )
        _write(
            cur,
            rows.sends,
            key_width=2,
            revision_at=17,
            insert=_INSERT_SEND,
            update=_UPDATE_SEND,
            columns=SEND_COLUMNS,
        )
        _write(
            cur,
            rows.holds,
            key_width=2,
            revision_at=7,
            insert=_INSERT_SENDER_HOLD,
            update=_UPDATE_SENDER_HOLD,
            columns=SENDER_HOLD_COLUMNS,
        )
        if rows.drafts:
            _run(cur, _UPSERT_DRAFT, rows.drafts)
        if rows.activities:
            _run(cur, _INSERT_ACTIVITY, rows.activities)
        if changes.suppress:
            _run(
                cur,
                "INSERT INTO starlight_suppression (workspace_id, key) VALUES (%s, %s) "
                "ON CONFLICT DO NOTHING",
                [(workspace_id, key) for key in sorted(set(changes.suppress))],
            )
    return True


def _positional_update(table: str, columns: str, key: str) -> tuple[str, list[int]]:
    """The UPDATE of :func:`_update` with positional parameters, and the index in a row of
    ``columns`` of each parameter in order (the last one the revision)."""
    names = _columns(columns)
    keys = _columns(key)
    sets = [i for i, name in enumerate(names) if name not in keys]
    assignments = ", ".join(
        f"{names[i]} = %s::json" if names[i] in _JSON_COLUMNS else f"{names[i]} = %s" for i in sets
    )
    where = " AND ".join(f"{name} = %s" for name in keys)
    order = [*sets, *(names.index(name) for name in keys), names.index("revision")]
    return f"UPDATE {table} SET {assignments} WHERE {where} AND revision = %s - 1", order


_AT_ONCE: Final = (
    # (which rows, key width, revision index, INSERT, positional UPDATE)
    (
        "campaigns",
        2,
        3,
        _INSERT_CAMPAIGN,
        _positional_update("starlight_campaigns", CAMPAIGN_COLUMNS, "workspace_id, id"),
    ),
    (
        "enrolments",
        3,
        10,
        _INSERT_ENROLMENT,
        _positional_update(
            "starlight_enrolments", ENROLMENT_COLUMNS, "workspace_id, campaign_id, lead_id"
        ),
    ),
    (
        "sends",
        2,
        17,
        _INSERT_SEND,
        _positional_update("starlight_sends", SEND_COLUMNS, "workspace_id, id"),
    ),
)
_LEASE_GUARD: Final = " AND status = 'claimed' AND lease_owner = %s AND lease_expires_at > %s"


class _Statement:
    """One statement made of WITH parts. Its final SELECT returns the row count of each
    ``reported`` part, then of each ``checked`` part (each must have touched one row)."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.params: list[object] = []
        self.reported: list[str] = []
        self.checked: list[str] = []

    def add(
        self, sql: str, params: Sequence[object], *, checked: bool = False, returning: bool = False
    ) -> str:
        """Add a part (``RETURNING 1`` appended when checked or ``returning``); its name."""
        name = f"w{len(self.parts)}"
        tail = " RETURNING 1" if checked or returning else ""
        self.parts.append(f"{name} AS ({sql}{tail})")
        self.params.extend(params)
        if checked:
            self.checked.append(name)
        return name

    def run(self, conn: _Connection) -> tuple[bool, list[int]]:
        """Run it: whether every checked part touched its row, and the reported counts."""
        names = [*self.reported, *self.checked]
        counts = ", ".join(f"(SELECT count(*) FROM {name})" for name in names) or "1"
        row = conn.execute(f"WITH {', '.join(self.parts)} SELECT {counts}", self.params).fetchone()
        assert row is not None
        reported = [int(value) for value in row[: len(self.reported)]]
        return all(value == 1 for value in row[len(self.reported) : len(names)]), reported


def _charge_parts(statement: _Statement, workspace_id: WorkspaceId, charge: CreditMovement) -> None:
    """Add a keyed CHARGE to ``statement``: the account row locked, the journal row inserted
    unless its key is known or the reservation is short, the reservation moved when it was.
    Reports (first) whether the key was known and whether the row went in: either means the
    charge is in the journal."""
    known = statement.add(
        "SELECT 1 FROM starlight_credit_movements WHERE workspace_id = %s AND key <> '' "
        "AND key = %s",
        [workspace_id, charge.key],
    )
    account = statement.add(
        "SELECT reserved FROM starlight_credit_accounts WHERE workspace_id = %s FOR UPDATE",
        [workspace_id],
    )
    marks = ", ".join("%s" for _ in _columns(MOVEMENT_COLUMNS))
    journal = statement.add(
        f"INSERT INTO starlight_credit_movements ({MOVEMENT_COLUMNS}) SELECT {marks} "
        f"FROM {account} WHERE {account}.reserved >= %s "
        f"AND NOT EXISTS (SELECT 1 FROM {known}) ON CONFLICT DO NOTHING",
        [*movement_row(workspace_id, charge), charge.amount],
        returning=True,
    )
    statement.add(
        "UPDATE starlight_credit_accounts SET reserved = reserved - %s "
        f"WHERE workspace_id = %s AND EXISTS (SELECT 1 FROM {journal})",
        [charge.amount, workspace_id],
    )
    statement.reported += [known, journal]


def _finish_at_once(
    conn: _Connection,
    rows: _ChangeRows,
    lease: tuple[tuple[object, ...], str, dt.datetime],
    ledger: tuple[list[str], list[object]] | tuple[WorkspaceId, CreditMovement] | None,
) -> tuple[bool, bool]:
    """Write a finished send's rows (and the ledger's, when given) in ONE statement: each
    insert and revision-checked update a WITH part, the send's own update also checking
    that ``lease`` (its key, the worker, the moment) still holds. Tables in the order of
    :func:`_apply`, rows in key order, after the ledger's account. ``ledger`` is either the
    :func:`_journal_parts` of movements already decided, or a keyed CHARGE decided in the
    statement (:func:`_charge_parts`). Whether every check passed (nothing is kept
    otherwise once the caller rolls back), and whether such a CHARGE is in the journal."""
    statement = _Statement()
    if ledger is not None and isinstance(ledger[1], CreditMovement):
        _charge_parts(statement, WorkspaceId(str(ledger[0])), ledger[1])
    key, worker_id, at = lease
    for table, width, revision_at, insert, (update, order) in _AT_ONCE:
        table_rows: list[tuple[object, ...]] = getattr(rows, table)
        for row in (r for r in table_rows if r[revision_at] == 0):
            statement.add(insert, row, checked=True)
        for row in sorted(
            (r for r in table_rows if r[revision_at] != 0), key=lambda r: str(r[:width])
        ):
            guarded = table == "sends" and row[:width] == key
            statement.add(
                update + (_LEASE_GUARD if guarded else ""),
                [*(row[i] for i in order), *((worker_id, at) if guarded else ())],
                checked=True,
            )
    if rows.activities:
        # One INSERT for them all: the parts of a WITH run in no set order, and a commit's
        # activities must take their seq (their journal position) in the order given.
        marks = _INSERT_ACTIVITY.split(" VALUES ", 1)[1]
        statement.add(
            _INSERT_ACTIVITY.split(" VALUES ", 1)[0]
            + " VALUES "
            + ", ".join(marks for _ in rows.activities),
            [value for activity in rows.activities for value in activity],
        )
    if ledger is not None and isinstance(ledger[0], list):
        for part in ledger[0]:
            statement.add(part, [])
        statement.params.extend(ledger[1])
    ok, reported = statement.run(conn)
    return ok, any(reported)


def _diagnose(conn: _Connection, workspace_id: WorkspaceId, changes: Changes) -> None:
    """Raise the ConcurrentUpdate the in-memory adapter would for ``changes`` now: the first
    record, campaigns then enrolments then sends, whose revision does not follow the stored
    one. Returns when every check passes (the conflict is gone already)."""
    _check_campaigns(conn, workspace_id, changes.campaigns)
    _check_enrolments(conn, workspace_id, changes.enrolments)
    _check_sends(conn, workspace_id, changes.sends)
    _check_holds(conn, workspace_id, changes.sender_holds)


def _check_holds(conn: _Connection, workspace_id: WorkspaceId, holds: Sequence[SenderHold]) -> None:
    if not holds:
        return
    stored: dict[str, int] = dict(
        conn.execute(
            "SELECT sender_id, revision FROM starlight_sender_holds "
            "WHERE workspace_id = %s AND sender_id = ANY(%s)",
            (workspace_id, sorted({h.sender_id for h in holds})),
        ).fetchall()
    )
    for hold in holds:
        check_revision("sender hold", hold.sender_id, stored.get(hold.sender_id), hold.revision)


def _check_campaigns(
    conn: _Connection, workspace_id: WorkspaceId, campaigns: Sequence[Campaign]
) -> None:
    if not campaigns:
        return
    stored: dict[str, int] = dict(
        conn.execute(
            "SELECT id, revision FROM starlight_campaigns WHERE workspace_id = %s AND id = ANY(%s)",
            (workspace_id, sorted({c.id for c in campaigns})),
        ).fetchall()
    )
    for campaign in campaigns:
        check_revision("campaign", campaign.id, stored.get(campaign.id), campaign.revision)


def _check_enrolments(
    conn: _Connection, workspace_id: WorkspaceId, enrolments: Sequence[Enrolment]
) -> None:
    if not enrolments:
        return
    pairs = sorted({(e.campaign_id, e.lead_id) for e in enrolments})
    stored: dict[tuple[str, str], int] = {
        (campaign_id, lead_id): revision
        for campaign_id, lead_id, revision in conn.execute(
            "SELECT e.campaign_id, e.lead_id, e.revision FROM starlight_enrolments AS e "
            "JOIN unnest(%s::text[], %s::text[]) AS k (campaign_id, lead_id) "
            "ON e.campaign_id = k.campaign_id AND e.lead_id = k.lead_id "
            "WHERE e.workspace_id = %s",
            ([c for c, _ in pairs], [lead for _, lead in pairs], workspace_id),
        )
    }
    for enrolment in enrolments:
        check_revision(
            "enrolment",
            f"{enrolment.campaign_id}/{enrolment.lead_id}",
            stored.get((enrolment.campaign_id, enrolment.lead_id)),
            enrolment.revision,
        )


def _check_sends(
    conn: _Connection, workspace_id: WorkspaceId, sends: Sequence[ScheduledSend]
) -> None:
    if not sends:
        return
    stored: dict[str, int] = dict(
        conn.execute(
            "SELECT id, revision FROM starlight_sends WHERE workspace_id = %s AND id = ANY(%s)",
            (workspace_id, sorted({s.id for s in sends})),
        ).fetchall()
    )
    for send in sends:
        check_revision("send", send.id, stored.get(send.id), send.revision)


_CLAIM: Final = """
    WITH due AS (
        SELECT s.workspace_id, s.id, s.due_at FROM starlight_sends AS s
        JOIN starlight_campaigns AS c ON c.workspace_id = s.workspace_id AND c.id = s.campaign_id
        WHERE s.status IN ('scheduled', 'waiting') AND s.due_at <= %(now)s
            AND c.status = 'active' {scope}
        ORDER BY s.due_at, s.id LIMIT %(limit)s
        FOR UPDATE OF s SKIP LOCKED
    ), expired AS (
        SELECT s.workspace_id, s.id, s.due_at FROM starlight_sends AS s
        WHERE s.status = 'claimed' AND s.lease_expires_at <= %(now)s {scope}
        ORDER BY s.due_at, s.id LIMIT %(limit)s
        FOR UPDATE SKIP LOCKED
    ), picked AS (
        SELECT workspace_id, id FROM (SELECT * FROM due UNION ALL SELECT * FROM expired) AS x
        ORDER BY due_at, id, workspace_id LIMIT %(limit)s
    )
    UPDATE starlight_sends AS s SET status = 'claimed', lease_owner = %(worker)s,
        lease_expires_at = %(expires)s, attempts = s.attempts + 1, revision = s.revision + 1
    FROM picked WHERE s.workspace_id = picked.workspace_id AND s.id = picked.id
    RETURNING {columns}
"""


def _action_filter(actions: Collection[Action] | None) -> tuple[str, tuple[list[str], ...]]:
    """The ``AND action = ANY(...)`` clause and its parameter; empty for every action."""
    if actions is None:
        return "", ()
    return "AND action = ANY(%s)", (sorted({Action(a).value for a in actions}),)


def _check_held(
    conn: _Connection, send: ScheduledSend, worker_id: str, at: dt.datetime, *, lock: bool = False
) -> None:
    """Raise LeaseLost unless ``worker_id`` still holds ``send``'s lease at ``at``."""
    stored = conn.execute(
        "SELECT status, lease_owner, lease_expires_at FROM starlight_sends "
        f"WHERE workspace_id = %s AND id = %s{' FOR UPDATE' if lock else ''}",
        (send.workspace_id, send.id),
    ).fetchone()
    check_lease(send.id, worker_id, stored, at)


def _finish_joint(
    conn: _Connection,
    send: ScheduledSend,
    worker_id: str,
    at: dt.datetime,
    rows: _ChangeRows,
    charge: CreditMovement | None,
) -> bool:
    """Finish ``send`` in the caller's transaction: ONE statement for a keyed CHARGE (the
    hot path: record, lease check, activity, journal row and balance), else two (the account
    locked and the movement decided here, then every write). False when ``charge`` is not in
    the journal (refused: recorded without it, for the caller to post); :class:`_Conflict`
    when a check failed."""
    lease = ((send.workspace_id, send.id), worker_id, at)
    if charge is not None and charge.kind is MovementKind.CHARGE and charge.key:
        # The hot path: the charge decided in the same statement as the record.
        ok, charged = _finish_at_once(conn, rows, lease, (send.workspace_id, charge))
        if not ok:
            raise _Conflict
        return charged
    journal, charged = None, charge is None
    if charge is not None:
        try:
            account, applied = _plan_post(
                conn, send.workspace_id, (charge,), [charge.key] if charge.key else []
            )
        except (InsufficientCredits, InvalidInput):
            pass  # refused before the ledger wrote anything: record without it
        else:
            charged = True
            if applied:
                journal = _journal_parts(send.workspace_id, account, applied)
    if not _finish_at_once(conn, rows, lease, journal)[0]:
        raise _Conflict
    return charged


def _finish_stepwise(
    conn: _Connection,
    send: ScheduledSend,
    worker_id: str,
    at: dt.datetime,
    combined: Changes,
    rows: _ChangeRows,
    charge: CreditMovement | None,
) -> bool:
    """:func:`_finish_joint` for changes the one-statement write does not take (drafts, the
    suppression list, two revisions of one record): lease check, writes, charge."""
    _check_held(conn, send, worker_id, at, lock=True)
    _apply(conn, send.workspace_id, combined, rows)
    if charge is None:
        return True
    try:
        _post(conn, send.workspace_id, (charge,), [charge.key] if charge.key else [])
    except (InsufficientCredits, InvalidInput):
        return False  # refused before the ledger wrote anything: record without it
    return True


class PostgresStorage(_PostgresAdapter):
    """The storage port in PostgreSQL. See :class:`~starlight_sequences.ports.Storage`.

    Any number of processes on any number of hosts may use one database at once, each with its
    own ``PostgresStorage`` (threads may share one). The schema is migrated on open.

    Args:
        target: a libpq connection string (``postgresql://user@host:5432/db``; the adapter
            then opens and owns a pool), or a :class:`psycopg_pool.ConnectionPool` the host
            app owns (its connections may be in autocommit mode or not).
        min_size: connections the owned pool keeps open.
        max_size: connections the owned pool opens at most (a dispatcher worker needs one,
            and ``in_flight + 1`` with several sends in flight; give threads that share the
            adapter one each).
        timeout: seconds to wait for a connection (at open and for each operation).

    Raises:
        InvalidInput: an empty connection string or impossible pool sizes.
        StorageError: the server cannot be reached, or a newer library wrote the schema.
    """

    # -- writes ---------------------------------------------------------------------------

    def commit(self, workspace_id: WorkspaceId, changes: Changes) -> bool:
        """See :meth:`Storage.commit`."""
        check_workspace(workspace_id, changes)
        if not changes:
            return True
        rows = _ChangeRows(workspace_id, changes)
        try:
            return self._db.transaction(
                "commit", lambda conn: _apply(conn, workspace_id, changes, rows)
            )
        except _EventSeen:
            return False
        except _Conflict:
            self._conflict("commit", workspace_id, changes)

    def _conflict(self, operation: str, workspace_id: WorkspaceId, changes: Changes) -> NoReturn:
        """Raise ConcurrentUpdate naming the record whose revision check failed."""
        self._db.read(operation, lambda conn: _diagnose(conn, workspace_id, changes))
        raise ConcurrentUpdate(
            f"{operation}: a record changed while it was written; read it again and retry"
        )

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
        at = _aware(now, "claim_due: now")
        scope = "" if workspace_id is None else "AND s.workspace_id = %(ws)s"
        query = _CLAIM.format(scope=scope, columns=_select(SEND_COLUMNS, "s"))
        params = {
            "now": at,
            "limit": limit,
            "ws": workspace_id,
            "worker": worker_id,
            "expires": at + lease,
        }
        rows = self._db.transaction(
            "claim_due", lambda conn: conn.execute(query, params).fetchall()
        )
        claimed = [send_from_row(_CODEC, row) for row in rows]
        claimed.sort(key=lambda s: (s.due_at, s.id, s.workspace_id))
        return claimed

    def next_due(
        self, now: dt.datetime, *, workspace_id: WorkspaceId | None = None
    ) -> dt.datetime | None:
        """See :meth:`Storage.next_due`."""
        at = _aware(now, "next_due: now")
        scope = "" if workspace_id is None else "AND s.workspace_id = %(ws)s"
        # Each half walks its partial index (sends_due, sends_leased) from ``now`` on.
        query = f"""
            SELECT least(
                (SELECT s.due_at FROM starlight_sends AS s
                    JOIN starlight_campaigns AS c
                        ON c.workspace_id = s.workspace_id AND c.id = s.campaign_id
                    WHERE s.status IN ('scheduled', 'waiting') AND s.due_at > %(now)s
                        AND c.status = 'active' {scope}
                    ORDER BY s.due_at LIMIT 1),
                (SELECT s.lease_expires_at FROM starlight_sends AS s
                    WHERE s.status = 'claimed' AND s.lease_expires_at > %(now)s {scope}
                    ORDER BY s.lease_expires_at LIMIT 1)
            )
        """
        rows = self._db.read(
            "next_due",
            lambda conn: conn.execute(query, {"now": at, "ws": workspace_id}).fetchall(),
        )
        return None if not rows or rows[0][0] is None else _utc(rows[0][0])

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
        """See :meth:`ChargingStorage.charges_with`: a ``PostgresCreditLedger`` on this
        storage's pool."""
        return isinstance(ledger, PostgresCreditLedger) and ledger.pool is self.pool

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
        keyed charge and the balance in one transaction."""
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
        at = _aware(now, "finish_send: now")
        stepwise = bool(
            rows.disagree or combined.drafts or combined.suppress or combined.sender_holds
        )

        def finish(conn: _Connection) -> bool:
            if stepwise:
                return _finish_stepwise(conn, send, worker_id, at, combined, rows, charge)
            return _finish_joint(conn, send, worker_id, at, rows, charge)

        try:
            return self._db.transaction("finish_send", finish)
        except _Conflict:
            self._db.read("finish_send", lambda conn: _check_held(conn, send, worker_id, at))
            self._conflict("finish_send", send.workspace_id, combined)

    # -- reads ----------------------------------------------------------------------------

    def _rows(self, operation: str, query: str, params: Sequence[object]) -> list[Any]:
        return self._db.read(operation, lambda conn: conn.execute(query, params).fetchall())

    def get_campaign(self, workspace_id: WorkspaceId, campaign_id: CampaignId) -> Campaign:
        """See :meth:`Storage.get_campaign`."""
        rows = self._rows(
            "get_campaign",
            f"SELECT {_select(CAMPAIGN_COLUMNS)} FROM starlight_campaigns "
            "WHERE workspace_id = %s AND id = %s",
            (workspace_id, campaign_id),
        )
        if not rows:
            raise CampaignNotFound(f"workspace {workspace_id!r} has no campaign {campaign_id!r}")
        return campaign_from_row(_CODEC, rows[0])

    def list_campaigns(self, workspace_id: WorkspaceId) -> list[Campaign]:
        """See :meth:`Storage.list_campaigns`."""
        rows = self._rows(
            "list_campaigns",
            f"SELECT {_select(CAMPAIGN_COLUMNS)} FROM starlight_campaigns "
            "WHERE workspace_id = %s ORDER BY seq",
            (workspace_id,),
        )
        return [campaign_from_row(_CODEC, row) for row in rows]

    def list_enrolments(
        self, workspace_id: WorkspaceId, campaign_id: CampaignId
    ) -> list[Enrolment]:
        """See :meth:`Storage.list_enrolments`."""
        rows = self._rows(
            "list_enrolments",
            f"SELECT {_select(ENROLMENT_COLUMNS)} FROM starlight_enrolments "
            "WHERE workspace_id = %s AND campaign_id = %s ORDER BY seq",
            (workspace_id, campaign_id),
        )
        steps: dict[str, tuple[CadenceStep, ...]] = {}
        return [enrolment_from_row(_CODEC, row, steps) for row in rows]

    def get_enrolment(
        self, workspace_id: WorkspaceId, campaign_id: CampaignId, lead_id: LeadId
    ) -> Enrolment:
        """See :meth:`Storage.get_enrolment`."""
        rows = self._rows(
            "get_enrolment",
            f"SELECT {_select(ENROLMENT_COLUMNS)} FROM starlight_enrolments "
            "WHERE workspace_id = %s AND campaign_id = %s AND lead_id = %s",
            (workspace_id, campaign_id, lead_id),
        )
        if not rows:
            raise EnrolmentNotFound(f"campaign {campaign_id!r} has no enrolment of {lead_id!r}")
        return enrolment_from_row(_CODEC, rows[0], {})

    def has_unfinished_enrolments(self, workspace_id: WorkspaceId, campaign_id: CampaignId) -> bool:
        """See :meth:`Storage.has_unfinished_enrolments`."""
        rows = self._rows(
            "has_unfinished_enrolments",
            "SELECT EXISTS (SELECT 1 FROM starlight_enrolments WHERE workspace_id = %s "
            f"AND campaign_id = %s AND status IN ({_UNFINISHED}))",
            (workspace_id, campaign_id),
        )
        return bool(rows[0][0])

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
        where, value = (
            ("lead_id = %s", lead_id)
            if lead_id is not None
            else ("email_domain = %s", email_domain)
            if email_domain is not None
            else ("lead_id = ANY(%s)", sorted(set(lead_ids or ())))
        )
        rows = self._rows(
            "find_enrolments",
            f"SELECT {_select(ENROLMENT_COLUMNS)} FROM starlight_enrolments "
            f"WHERE workspace_id = %s AND {where} ORDER BY seq",
            (workspace_id, value),
        )
        steps: dict[str, tuple[CadenceStep, ...]] = {}
        return [enrolment_from_row(_CODEC, row, steps) for row in rows]

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
        query = (
            f"SELECT {DRAFT_COLUMNS} FROM starlight_drafts "
            "WHERE workspace_id = %s AND campaign_id = %s"
        )
        params: tuple[object, ...] = (workspace_id, campaign_id)
        if lead_id is not None:
            query += " AND lead_id = %s"
            params += (lead_id,)
        elif lead_ids is not None:
            query += " AND lead_id = ANY(%s)"
            params += (sorted(set(lead_ids)),)
        rows = self._rows("list_drafts", query + " ORDER BY lead_id, step", params)
        return [draft_from_row(_CODEC, row) for row in rows]

    def drafts_needing_attention(
        self, workspace_id: WorkspaceId, campaign_id: CampaignId
    ) -> list[Draft]:
        """See :meth:`Storage.drafts_needing_attention`."""
        rows = self._rows(
            "drafts_needing_attention",
            f"SELECT {DRAFT_COLUMNS} FROM starlight_drafts "
            "WHERE workspace_id = %s AND campaign_id = %s AND status = 'needs_attention' "
            "ORDER BY lead_id, step",
            (workspace_id, campaign_id),
        )
        return [draft_from_row(_CODEC, row) for row in rows]

    def find_send(self, workspace_id: WorkspaceId, *, message_id: str) -> ScheduledSend | None:
        """See :meth:`Storage.find_send`."""
        if not message_id:
            return None
        rows = self._rows(
            "find_send",
            f"SELECT {SEND_COLUMNS} FROM starlight_sends WHERE workspace_id = %s AND receipt = %s "
            "ORDER BY id LIMIT 1",
            (workspace_id, message_id),
        )
        return send_from_row(_CODEC, rows[0]) if rows else None

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
        query = (
            f"SELECT {SEND_COLUMNS} FROM starlight_sends "
            "WHERE workspace_id = %s AND campaign_id = %s"
        )
        params: tuple[object, ...] = (workspace_id, campaign_id)
        if lead_id is not None:
            query += " AND lead_id = %s"
            params += (lead_id,)
        elif lead_ids is not None:
            query += " AND lead_id = ANY(%s)"
            params += (sorted(set(lead_ids)),)
        rows = self._rows("list_sends", query + " ORDER BY lead_id, step, id", params)
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
        window = (_aware(start, "sender_bookings: start"), _aware(end, "sender_bookings: end"))
        only, kinds = _action_filter(actions)
        query = f"""
            SELECT sent_at FROM starlight_sends
            WHERE workspace_id = %s AND sender_id = %s AND status = 'sent'
                AND sent_at >= %s AND sent_at < %s {only}
            UNION ALL
            SELECT due_at FROM starlight_sends
            WHERE workspace_id = %s AND sender_id = %s AND status IN ('scheduled', 'claimed')
                AND due_at >= %s AND due_at < %s {only}
            ORDER BY 1
        """
        params = (workspace_id, sender_id, *window, *kinds) * 2
        rows = self._rows("sender_bookings", query, params)
        return [_utc(row[0]) for row in rows]

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
            SELECT max(sent_at) FROM starlight_sends
            WHERE workspace_id = %s AND sender_id = %s AND status = 'sent' {only}
        """
        rows = self._rows("last_sent", query, (workspace_id, sender_id, *kinds))
        return None if not rows or rows[0][0] is None else _utc(rows[0][0])

    def recent_sends(
        self,
        workspace_id: WorkspaceId,
        sender_id: SenderId,
        *,
        limit: int,
        after: dt.datetime | None = None,
    ) -> list[ScheduledSend]:
        """See :meth:`Storage.recent_sends`."""
        query = (
            f"SELECT {_select(SEND_COLUMNS)} FROM starlight_sends "
            "WHERE workspace_id = %s AND sender_id = %s AND status = 'sent'"
        )
        params: tuple[object, ...] = (workspace_id, sender_id)
        if after is not None:
            query += " AND sent_at > %s"
            params += (_aware(after, "recent_sends: after"),)
        query += " ORDER BY sent_at DESC, id DESC LIMIT %s"
        rows = self._rows("recent_sends", query, (*params, limit))
        return [send_from_row(_CODEC, row) for row in rows]

    def get_sender_hold(self, workspace_id: WorkspaceId, sender_id: SenderId) -> SenderHold | None:
        """See :meth:`Storage.get_sender_hold`."""
        rows = self._rows(
            "get_sender_hold",
            f"SELECT {SENDER_HOLD_COLUMNS} FROM starlight_sender_holds "
            "WHERE workspace_id = %s AND sender_id = %s",
            (workspace_id, sender_id),
        )
        return sender_hold_from_row(_CODEC, rows[0]) if rows else None

    def list_sender_holds(self, workspace_id: WorkspaceId) -> list[SenderHold]:
        """See :meth:`Storage.list_sender_holds`."""
        rows = self._rows(
            "list_sender_holds",
            f"SELECT {SENDER_HOLD_COLUMNS} FROM starlight_sender_holds "
            "WHERE workspace_id = %s ORDER BY sender_id",
            (workspace_id,),
        )
        return [sender_hold_from_row(_CODEC, row) for row in rows]

    def list_activities(
        self,
        workspace_id: WorkspaceId,
        *,
        campaign_id: CampaignId | None = None,
        lead_id: LeadId | None = None,
    ) -> list[Activity]:
        """See :meth:`Storage.list_activities`."""
        query = f"SELECT {ACTIVITY_COLUMNS} FROM starlight_activities WHERE workspace_id = %s"
        params: tuple[str, ...] = (workspace_id,)
        if campaign_id is not None:
            query += " AND campaign_id = %s"
            params += (campaign_id,)
        if lead_id is not None:
            query += " AND lead_id = %s"
            params += (lead_id,)
        rows = self._rows("list_activities", query + " ORDER BY seq", params)
        return [activity_from_row(_CODEC, row) for row in rows]

    def activities_since(
        self, workspace_id: WorkspaceId, cursor: str | None, *, limit: int
    ) -> ActivityPage:
        """See :meth:`Storage.activities_since`. A position is ``(xid, seq)``.

        Why not ``seq`` alone: an identity value is taken when the row is inserted, not when
        its transaction commits, so a transaction holding seq 7 may commit after one holding
        seq 8 was read; a reader that moved its cursor to 8 would never see 7. So each row also
        records the id of the transaction that wrote it (``pg_current_xact_id()``), and a row
        is handed out only once its xid is below the ``xmin`` of the reader's snapshot: every
        transaction with a smaller id has ended, so the set of rows below ``xmin`` is final (a
        transaction still running, or started later, has an id of at least ``xmin``). Rows are
        ordered by ``(xid, seq)``, and since ``xmin`` only grows, a row handed out later always
        sorts after every row handed out before. The cost: a row waits until every transaction
        that was running when its own started has ended, so a long open transaction anywhere
        on the server delays the journal (never loses from it).
        """
        check_page_limit(limit)
        start = read_position(cursor, _POSITION_TAG, 2)
        xid, seq = (0, 0) if start is None else start
        rows = self._rows(
            "activities_since",
            # The text of xid goes out under another name: ORDER BY xid would sort by it.
            f"SELECT a.xid::text AS xid_text, a.seq, {_select(ACTIVITY_COLUMNS, 'a')} "
            "FROM starlight_activities a "
            "WHERE a.workspace_id = %s AND (a.xid, a.seq) > (%s::text::xid8, %s) "
            "AND a.xid < pg_snapshot_xmin(pg_current_snapshot()) "
            "ORDER BY a.xid, a.seq LIMIT %s",
            (workspace_id, str(xid), seq, limit + 1),
        )
        entries = tuple(
            JournalEntry(
                position=position_text(_POSITION_TAG, int(row[0]), row[1]),
                activity=activity_from_row(_CODEC, row[2:]),
            )
            for row in rows[:limit]
        )
        return ActivityPage(
            entries=entries,
            cursor=entries[-1].position if entries else position_text(_POSITION_TAG, xid, seq),
            more=len(rows) > limit,
        )

    def suppressed(self, workspace_id: WorkspaceId, keys: Collection[str]) -> set[str]:
        """See :meth:`Storage.suppressed`."""
        wanted = sorted(set(keys))
        if not wanted:
            return set()
        rows = self._rows(
            "suppressed",
            "SELECT key FROM starlight_suppression WHERE workspace_id = %s AND key = ANY(%s)",
            (workspace_id, wanted),
        )
        return {row[0] for row in rows}

    # -- cursors --------------------------------------------------------------------------

    def load_cursor(self, workspace_id: WorkspaceId, name: str) -> str | None:
        """See :meth:`Storage.load_cursor`."""
        check_cursor(name)
        rows = self._rows(
            "load_cursor",
            "SELECT value FROM starlight_cursors WHERE workspace_id = %s AND name = %s",
            (workspace_id, name),
        )
        return None if not rows else str(rows[0][0])

    def save_cursor(self, workspace_id: WorkspaceId, name: str, value: str) -> None:
        """See :meth:`Storage.save_cursor`."""
        check_cursor(name, value)
        self._db.transaction(
            "save_cursor",
            lambda conn: conn.execute(
                "INSERT INTO starlight_cursors (workspace_id, name, value) VALUES (%s, %s, %s) "
                "ON CONFLICT (workspace_id, name) DO UPDATE SET value = excluded.value",
                (workspace_id, name, value),
            ),
        )


# --- the credit ledger -----------------------------------------------------------------------


class PostgresCreditLedger(_PostgresAdapter):
    """The credit ledger in PostgreSQL. See :class:`~starlight_sequences.ports.CreditLedger`.

    May share its database (and its pool: pass ``storage.pool``) with a
    :class:`PostgresStorage`. ``post`` locks the workspace's account row
    (``SELECT … FOR UPDATE``) for its transaction, so concurrent approvals on any number of
    hosts take turns and never take a balance below zero.

    Args:
        target: as for :class:`PostgresStorage`.
        min_size: as for :class:`PostgresStorage`.
        max_size: as for :class:`PostgresStorage`.
        timeout: as for :class:`PostgresStorage`.

    Raises:
        InvalidInput: an empty connection string or impossible pool sizes.
        StorageError: the server cannot be reached, or a newer library wrote the schema.
    """

    def balance(self, workspace_id: WorkspaceId) -> CreditAccount:
        """See :meth:`CreditLedger.balance`."""
        row = self._db.read(
            "balance",
            lambda conn: conn.execute(
                "SELECT available, reserved FROM starlight_credit_accounts WHERE workspace_id = %s",
                (workspace_id,),
            ).fetchone(),
        )
        if row is None:
            return CreditAccount(workspace=workspace_id)
        return CreditAccount(workspace=workspace_id, available=row[0], reserved=row[1])

    def post(self, workspace_id: WorkspaceId, *movements: CreditMovement) -> CreditAccount:
        """See :meth:`CreditLedger.post`.

        Within one call, a second movement with the key of an earlier one is skipped too.
        """
        if not movements:
            return self.balance(workspace_id)
        keys = sorted({m.key for m in movements if m.key})
        return self._db.transaction("post", lambda conn: _post(conn, workspace_id, movements, keys))

    def movements(
        self, workspace_id: WorkspaceId, *, campaign_id: CampaignId | None = None
    ) -> list[CreditMovement]:
        """See :meth:`CreditLedger.movements`."""
        query = f"SELECT {MOVEMENT_COLUMNS} FROM starlight_credit_movements WHERE workspace_id = %s"
        params: tuple[str, ...] = (workspace_id,)
        if campaign_id is not None:
            query += " AND campaign_id = %s"
            params += (campaign_id,)
        rows = self._db.read(
            "movements", lambda conn: conn.execute(query + " ORDER BY seq", params).fetchall()
        )
        return [movement_from_row(row) for row in rows]


def _locked_account(
    conn: _Connection, workspace_id: WorkspaceId, keys: list[str]
) -> tuple[CreditAccount, set[str]]:
    """The account, its row locked until the transaction ends (created at zero if new), and
    which of ``keys`` the journal holds already: one round trip when the account exists."""
    # The hot path (one charge per send): a plain equality, so every plan, generic ones
    # included, probes the unique index instead of scanning the workspace's journal.
    posted, value = ("key = %s", keys[0]) if len(keys) == 1 else ("key = ANY(%s)", keys)
    select = (
        "SELECT a.available, a.reserved, ARRAY(SELECT m.key FROM starlight_credit_movements "
        f"AS m WHERE m.workspace_id = a.workspace_id AND m.key <> '' AND m.{posted}) "
        "FROM starlight_credit_accounts AS a WHERE a.workspace_id = %s FOR UPDATE OF a"
    )
    row = conn.execute(select, (value, workspace_id)).fetchone()
    if row is None:
        conn.execute(
            "INSERT INTO starlight_credit_accounts (workspace_id, available, reserved) "
            "VALUES (%s, 0, 0) ON CONFLICT DO NOTHING",
            (workspace_id,),
        )
        row = conn.execute(select, (value, workspace_id)).fetchone()
    assert row is not None
    account = CreditAccount(workspace=workspace_id, available=row[0], reserved=row[1])
    return account, set(row[2])


def _plan_post(
    conn: _Connection,
    workspace_id: WorkspaceId,
    movements: Sequence[CreditMovement],
    keys: list[str],
) -> tuple[CreditAccount, list[CreditMovement]]:
    """Lock the account and decide which of ``movements`` apply (a known key is skipped):
    the account after them, and those to journal. Writes nothing but a new account row.

    Raises:
        InsufficientCredits: a movement exceeds what the account holds.
        InvalidInput: a charge or release exceeds ``reserved``, or a top up overflows.
    """
    account, posted = _locked_account(conn, workspace_id, keys)
    applied: list[CreditMovement] = []
    for movement in movements:
        if movement.key and movement.key in posted:
            continue
        account = account.apply(movement)
        applied.append(movement)
        if movement.key:
            posted.add(movement.key)
    return account, applied


def _journal_parts(
    workspace_id: WorkspaceId, account: CreditAccount, applied: Sequence[CreditMovement]
) -> tuple[list[str], list[object]]:
    """The two statements (as WITH parts) that journal ``applied`` and store ``account``'s
    balance, and their parameters."""
    rows = [movement_row(workspace_id, m) for m in applied]
    return (
        [
            _insert_movements(len(rows)),
            "UPDATE starlight_credit_accounts SET available = %s, reserved = %s "
            "WHERE workspace_id = %s",
        ],
        [
            *(value for row in rows for value in row),
            account.available,
            account.reserved,
            workspace_id,
        ],
    )


def _post(
    conn: _Connection,
    workspace_id: WorkspaceId,
    movements: Sequence[CreditMovement],
    keys: list[str],
) -> CreditAccount:
    """Post ``movements`` inside the caller's transaction: two round trips (the locked
    account with the known keys; the journal rows and the new balance in one statement)."""
    account, applied = _plan_post(conn, workspace_id, movements, keys)
    if applied:
        (insert, update), params = _journal_parts(workspace_id, account, applied)
        conn.execute(f"WITH journal AS ({insert}) {update}", params)
    return account


def _insert_movements(count: int) -> str:
    """The INSERT of ``count`` journal rows, parameters row after row."""
    marks = ", ".join("%s" for _ in _columns(MOVEMENT_COLUMNS))
    values = ", ".join(f"({marks})" for _ in range(count))
    return f"INSERT INTO starlight_credit_movements ({MOVEMENT_COLUMNS}) VALUES {values}"
