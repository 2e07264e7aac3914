"""A/B variants from the command line: a shape file with variants, ``create --seed``, the
preview's VARIANT column, and ``status`` with per-variant results (docs/shapes.md)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from starlight_sequences.variants import wilson_interval
from tests.integration.test_cli_programs import MONDAY, ok, starlight

EXAMPLES = Path(__file__).parents[2] / "docs" / "examples"
CREATE = (
    *("create", "--name", "Q1 A/B", "--brief", "We cut cloud bills by 30%."),
    *("--shape", str(EXAMPLES / "ab-shape.json"), "--leads", str(EXAMPLES / "ab-leads.csv")),
    *("--mailbox", "ada@nimbus.example.com", "--campaign-id", "q1", "--seed", "q1-2026"),
)


def test_a_seeded_split_from_a_shape_file_is_the_one_the_docs_show(tmp_path: Path) -> None:
    db = tmp_path / "ab.sqlite3"
    ok(starlight(db, "credits", "top-up", "500", at=MONDAY))
    ok(starlight(db, *CREATE, at=MONDAY))
    preview = json.loads(ok(starlight(db, "preview", "q1", "--json", at=MONDAY)))
    split = {r["lead"]["id"]: r["steps"][0]["variant"] for r in preview["recipients"]}
    assert split == {
        "ana": "peer",
        "ben": "peer",
        "cora": "roi",
        "dev": "roi",
        "eli": "peer",
        "fay": "roi",
    }
    assert {r["steps"][1]["variant"] for r in preview["recipients"]} == {None}
    table = ok(starlight(db, "preview", "q1", "--lead", "ana", at=MONDAY))
    assert "VARIANT" in table
    (row,) = [line for line in table.splitlines() if line.startswith("  1 ")]
    assert row.endswith("peer")


def test_status_shows_sent_and_replied_per_variant(tmp_path: Path) -> None:
    db = tmp_path / "ab.sqlite3"
    ok(starlight(db, "credits", "top-up", "500", at=MONDAY))
    ok(starlight(db, *CREATE, at=MONDAY))
    ok(starlight(db, "approve", "q1", at=MONDAY))
    at = MONDAY.replace(hour=16)  # New York 11:00: every first email due by then
    for _ in range(6):  # one pass sends one and defers the rest by the mailbox's spacing
        ok(starlight(db, "run", "--once", at=at))
        at += dt.timedelta(minutes=4)
    ok(starlight(db, "report", "reply", "ana", "--campaign", "q1", at=at + dt.timedelta(hours=1)))
    status = json.loads(ok(starlight(db, "status", "q1", "--json", at=at)))
    rows = {(r["step"], r["variant"]): r for r in status["variants"]}
    assert set(rows) == {(1, "roi"), (1, "peer")}
    assert rows[1, "peer"]["leads"] == rows[1, "roi"]["leads"] == 3
    assert rows[1, "peer"]["sent"] == rows[1, "roi"]["sent"] == 3
    assert (rows[1, "peer"]["replied"], rows[1, "roi"]["replied"]) == (1, 0)  # ana is on peer
    assert rows[1, "peer"]["interval_95"] == list(wilson_interval(1, 3))
    text = ok(starlight(db, "status", "q1", at=at))
    assert "A/B variants (reply rate with its 95% Wilson interval):" in text
    assert "peer" in text
