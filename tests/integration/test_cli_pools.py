"""Sender pools from the command line: ``create --senders FILE`` and repeatable ``--mailbox``,
the preview's SENDER column, and ``remove-sender`` (docs/settings.md)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from tests.integration.test_cli_programs import MONDAY, ok, one_line_error, starlight

EXAMPLES = Path(__file__).parents[2] / "docs" / "examples"
LEADS = str(EXAMPLES / "ab-leads.csv")
CREATE = (
    *("create", "--name", "Q1 pool", "--brief", "We cut cloud bills by 30%."),
    *("--shape", "email-sequence", "--leads", LEADS, "--campaign-id", "q1"),
)


def _senders(db: Path) -> dict[str, str]:
    preview = json.loads(ok(starlight(db, "preview", "q1", "--json", at=MONDAY)))
    return {r["lead"]["id"]: r["steps"][0]["sender_id"] for r in preview["recipients"]}


def test_a_senders_file_spreads_the_leads_as_the_docs_show(tmp_path: Path) -> None:
    db = tmp_path / "pool.sqlite3"
    ok(starlight(db, "credits", "top-up", "500", at=MONDAY))
    ok(starlight(db, *CREATE, "--senders", str(EXAMPLES / "pool-senders.json"), at=MONDAY))
    assert _senders(db) == {
        "ana": "cy@nimbus.example.com",
        "ben": "bo@nimbus.example.com",
        "cora": "ada@nimbus.example.com",
        "dev": "cy@nimbus.example.com",
        "eli": "bo@nimbus.example.com",
        "fay": "cy@nimbus.example.com",
    }
    table = ok(starlight(db, "preview", "q1", "--lead", "cora", at=MONDAY))
    header, *rows = [line for line in table.splitlines() if line.startswith("  ") and "  " in line][
        :4
    ]
    assert header.split()[-1] == "SENDER"
    assert all(row.endswith("ada@nimbus.example.com") for row in rows)


def test_repeated_mailbox_flags_make_a_pool_and_one_mailbox_shows_no_sender_column(
    tmp_path: Path,
) -> None:
    db = tmp_path / "pool.sqlite3"
    ok(starlight(db, "credits", "top-up", "500", at=MONDAY))
    pool = ("--mailbox", "ada@nimbus.example.com", "--mailbox", "bo@nimbus.example.com")
    ok(starlight(db, *CREATE, *pool, at=MONDAY))
    assert Counter(_senders(db).values()) == {
        "ada@nimbus.example.com": 3,
        "bo@nimbus.example.com": 3,
    }
    single = tmp_path / "single.sqlite3"
    ok(starlight(single, "credits", "top-up", "500", at=MONDAY))
    ok(starlight(single, *CREATE, "--mailbox", "ada@nimbus.example.com", at=MONDAY))
    assert "SENDER" not in ok(starlight(single, "preview", "q1", "--lead", "ana", at=MONDAY))


def test_remove_sender_moves_the_leads_it_has_not_written_to(tmp_path: Path) -> None:
    db = tmp_path / "pool.sqlite3"
    ok(starlight(db, "credits", "top-up", "500", at=MONDAY))
    pool = ("--mailbox", "ada@nimbus.example.com", "--mailbox", "bo@nimbus.example.com")
    ok(starlight(db, *CREATE, *pool, at=MONDAY))
    ok(starlight(db, "approve", "q1", at=MONDAY))
    out = ok(starlight(db, "remove-sender", "q1", "ada@nimbus.example.com", at=MONDAY))
    assert "Removed ada@nimbus.example.com from campaign q1" in out
    assert set(_senders(db).values()) == {"bo@nimbus.example.com"}
    again = starlight(db, "remove-sender", "q1", "ada@nimbus.example.com", at=MONDAY)
    one_line_error(again, 1, "ada@nimbus.example.com")
    last = starlight(db, "remove-sender", "q1", "bo@nimbus.example.com", at=MONDAY)
    one_line_error(last, 1, "bo@nimbus.example.com", "still need")


def test_a_senders_file_with_a_bad_entry_is_a_one_line_error_naming_it(tmp_path: Path) -> None:
    db = tmp_path / "pool.sqlite3"
    bad = tmp_path / "senders.json"
    bad.write_text(json.dumps({"mailboxes": [{"address": "a@x.example", "daily_cap": 0}]}))
    ok(starlight(db, "credits", "top-up", "500", at=MONDAY))
    result = starlight(db, *CREATE, "--senders", str(bad), at=MONDAY)
    one_line_error(result, 1, "mailboxes[0]", "daily_cap")
