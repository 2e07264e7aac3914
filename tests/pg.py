"""PostgreSQL for the tests: a fresh database per test run, a fresh schema per test.

``STARLIGHT_PG_DSN`` names the server (any database on it: the tests create their own). Without
it the PostgreSQL tests skip, unless ``STARLIGHT_REQUIRE_PG=1`` (CI) makes them fail; a DSN that
is set but unreachable always fails (someone asked for PostgreSQL and did not get it).

The first test that needs PostgreSQL creates ``starlight_test_<pid>_<random>`` from the DSN;
it is dropped when the test process exits. Each test then takes a schema of its own in it
(:func:`fresh_dsn`), so runs and tests never see each other's data.
"""

from __future__ import annotations

import atexit
import os
import uuid
from typing import Final

import psycopg
import psycopg.conninfo
import pytest
from psycopg import sql

DSN_VARIABLE: Final = "STARLIGHT_PG_DSN"
REQUIRE_VARIABLE: Final = "STARLIGHT_REQUIRE_PG"
SKIP_REASON: Final = (
    f"set {DSN_VARIABLE}=postgresql://… to run the PostgreSQL tests "
    "(e.g. postgresql://postgres@127.0.0.1:5432/test)"
)
CONNECT_TIMEOUT: Final = 5

_state: dict[str, str] = {}
"""This process's test database: ``dsn`` once created, or ``error`` once that failed."""


def required() -> bool:
    """True when a missing PostgreSQL must fail the tests (CI) instead of skipping them."""
    return os.environ.get(REQUIRE_VARIABLE, "") not in ("", "0")


def configured() -> bool:
    """True when the PostgreSQL tests should run (a DSN is set, or they are required)."""
    return bool(os.environ.get(DSN_VARIABLE)) or required()


def skip_unless_configured() -> None:
    """Skip the calling test when PostgreSQL is neither configured nor required."""
    if not configured():
        pytest.skip(SKIP_REASON)


def _connect(dsn: str) -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(dsn, autocommit=True, connect_timeout=CONNECT_TIMEOUT)


def database_dsn() -> str:
    """The DSN of this test run's own database, created on first use (skips or fails as the
    module docstring says)."""
    if "dsn" in _state:
        return _state["dsn"]
    if "error" in _state:
        pytest.fail(_state["error"], pytrace=False)
    maintenance = os.environ.get(DSN_VARIABLE, "")
    if not maintenance:
        if not required():
            pytest.skip(SKIP_REASON)
        _state["error"] = f"{REQUIRE_VARIABLE}=1 but {DSN_VARIABLE} is not set"
        pytest.fail(_state["error"], pytrace=False)
    name = f"starlight_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    try:
        with _connect(maintenance) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    except psycopg.Error as exc:
        _state["error"] = (
            f"PostgreSQL at {DSN_VARIABLE}={maintenance!r} is unusable: {exc}".strip()
            + " (start it, e.g. pg_ctlcluster --skip-systemctl-redirect 15 main start)"
        )
        pytest.fail(_state["error"], pytrace=False)
    atexit.register(_drop, maintenance, name, os.getpid())
    _state["dsn"] = psycopg.conninfo.make_conninfo(maintenance, dbname=name)
    return _state["dsn"]


def _drop(maintenance: str, name: str, pid: int) -> None:
    if os.getpid() != pid:
        return
    try:
        with _connect(maintenance) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
    except psycopg.Error:
        pass  # left for a human to drop; never fail a finished run over it


def fresh_dsn() -> str:
    """A DSN whose tables land in a new, empty schema of this run's database."""
    dsn = database_dsn()
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with _connect(dsn) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    return psycopg.conninfo.make_conninfo(dsn, options=f"-csearch_path={schema}")
