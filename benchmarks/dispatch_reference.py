"""Minimal dispatch loops that do the same durable work per send as the library, and nothing
else: the yardstick ``dispatch_bench.py`` prints the library's rate against.

Per send, in one transaction with one commit: mark the send sent under its lease, append an
activity line, insert the keyed charge (skipped if the key exists) and move the balance.
Claims take batches with ``FOR UPDATE SKIP LOCKED`` (PostgreSQL) or under ``BEGIN
IMMEDIATE`` (SQLite). No checks, no drafts, no sender call, no re-timing: the floor of what a
durable, exactly-once-charged dispatcher must pay on the same database.
"""

from __future__ import annotations

import datetime as dt
import sqlite3

import psycopg

BATCH = 100
PRICE = 2

_PG_SCHEMA = (
    """CREATE TABLE ref_sends (id text PRIMARY KEY, due_at timestamptz NOT NULL,
        status text NOT NULL, lease_owner text, lease_expires_at timestamptz,
        sent_at timestamptz, attempts integer NOT NULL DEFAULT 0)""",
    "CREATE INDEX ref_sends_due ON ref_sends (due_at, id) WHERE status = 'scheduled'",
    """CREATE TABLE ref_activities (seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        send_id text NOT NULL, at timestamptz NOT NULL, detail text NOT NULL)""",
    "CREATE TABLE ref_movements (key text PRIMARY KEY, amount integer NOT NULL)",
    """CREATE TABLE ref_accounts (id integer PRIMARY KEY, available integer NOT NULL,
        reserved integer NOT NULL)""",
)

_PG_CLAIM = """
    UPDATE ref_sends AS s SET status = 'claimed', lease_owner = %(worker)s,
        lease_expires_at = %(now)s + interval '5 minutes', attempts = s.attempts + 1
    FROM (SELECT id FROM ref_sends WHERE status = 'scheduled' AND due_at <= %(now)s
          ORDER BY due_at, id LIMIT %(limit)s FOR UPDATE SKIP LOCKED) AS picked
    WHERE s.id = picked.id RETURNING s.id
"""


def seed_postgres(dsn: str, count: int, now: dt.datetime) -> None:
    with psycopg.connect(dsn) as conn:
        for statement in _PG_SCHEMA:
            conn.execute(statement)
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO ref_sends (id, due_at, status) VALUES (%s, %s, 'scheduled')",
                [(f"send-{n:06}", now - dt.timedelta(seconds=count - n)) for n in range(count)],
            )
        conn.execute("INSERT INTO ref_accounts VALUES (1, %s, %s)", (PRICE * count, PRICE * count))


def run_postgres(dsn: str, worker_id: str, now: dt.datetime) -> int:
    """Claim and send until nothing is due; the sends sent."""
    sent = 0
    with psycopg.connect(dsn) as conn:
        while True:
            with conn.transaction():
                ids = [
                    row[0]
                    for row in conn.execute(
                        _PG_CLAIM, {"worker": worker_id, "now": now, "limit": BATCH}
                    )
                ]
            if not ids:
                return sent
            for send_id in ids:
                with conn.transaction():
                    marked = conn.execute(
                        "UPDATE ref_sends SET status = 'sent', sent_at = %s, lease_owner = NULL,"
                        " lease_expires_at = NULL WHERE id = %s AND status = 'claimed'"
                        " AND lease_owner = %s AND lease_expires_at > %s",
                        (now, send_id, worker_id, now),
                    ).rowcount
                    if not marked:
                        continue
                    conn.execute(
                        "INSERT INTO ref_activities (send_id, at, detail) VALUES (%s, %s, %s)",
                        (send_id, now, f"Email sent (<{send_id}@ref>)"),
                    )
                    charged = conn.execute(
                        "INSERT INTO ref_movements VALUES (%s, %s) ON CONFLICT DO NOTHING",
                        (f"charge:{send_id}", PRICE),
                    ).rowcount
                    if charged:
                        conn.execute(
                            "UPDATE ref_accounts SET reserved = reserved - %s WHERE id = 1",
                            (PRICE,),
                        )
                sent += 1


def _sqlite(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, timeout=30)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    return conn


def _micros(instant: dt.datetime) -> int:
    return int(instant.timestamp() * 1_000_000)


def seed_sqlite(path: str, count: int, now: dt.datetime) -> None:
    conn = _sqlite(path)
    conn.executescript(
        """
        CREATE TABLE ref_sends (id TEXT PRIMARY KEY, due_at INTEGER NOT NULL,
            status TEXT NOT NULL, lease_owner TEXT, lease_expires_at INTEGER,
            sent_at INTEGER, attempts INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID;
        CREATE INDEX ref_sends_due ON ref_sends (due_at, id) WHERE status = 'scheduled';
        CREATE TABLE ref_activities (seq INTEGER PRIMARY KEY, send_id TEXT NOT NULL,
            at INTEGER NOT NULL, detail TEXT NOT NULL);
        CREATE TABLE ref_movements (key TEXT PRIMARY KEY, amount INTEGER NOT NULL)
            WITHOUT ROWID;
        CREATE TABLE ref_accounts (id INTEGER PRIMARY KEY, available INTEGER NOT NULL,
            reserved INTEGER NOT NULL);
        """
    )
    base = _micros(now)
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO ref_sends (id, due_at, status) VALUES (?, ?, 'scheduled')",
        [(f"send-{n:06}", base - (count - n) * 1_000_000) for n in range(count)],
    )
    conn.execute("INSERT INTO ref_accounts VALUES (1, ?, ?)", (PRICE * count, PRICE * count))
    conn.execute("COMMIT")
    conn.close()


def run_sqlite(path: str, worker_id: str, now: dt.datetime) -> int:
    """Claim and send until nothing is due; the sends sent."""
    conn = _sqlite(path)
    at = _micros(now)
    sent = 0
    while True:
        conn.execute("BEGIN IMMEDIATE")
        ids = [
            row[0]
            for row in conn.execute(
                "SELECT id FROM ref_sends WHERE status = 'scheduled' AND due_at <= ? "
                "ORDER BY due_at, id LIMIT ?",
                (at, BATCH),
            )
        ]
        conn.executemany(
            "UPDATE ref_sends SET status = 'claimed', lease_owner = ?, lease_expires_at = ?, "
            "attempts = attempts + 1 WHERE id = ?",
            [(worker_id, at + 300_000_000, send_id) for send_id in ids],
        )
        conn.execute("COMMIT")
        if not ids:
            conn.close()
            return sent
        for send_id in ids:
            conn.execute("BEGIN IMMEDIATE")
            marked = conn.execute(
                "UPDATE ref_sends SET status = 'sent', sent_at = ?, lease_owner = NULL, "
                "lease_expires_at = NULL WHERE id = ? AND status = 'claimed' "
                "AND lease_owner = ? AND lease_expires_at > ?",
                (at, send_id, worker_id, at),
            ).rowcount
            if marked:
                conn.execute(
                    "INSERT INTO ref_activities (send_id, at, detail) VALUES (?, ?, ?)",
                    (send_id, at, f"Email sent (<{send_id}@ref>)"),
                )
                if conn.execute(
                    "INSERT OR IGNORE INTO ref_movements VALUES (?, ?)",
                    (f"charge:{send_id}", PRICE),
                ).rowcount:
                    conn.execute(
                        "UPDATE ref_accounts SET reserved = reserved - ? WHERE id = 1", (PRICE,)
                    )
                sent += 1
            conn.execute("COMMIT")
