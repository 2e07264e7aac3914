"""The example tables of docs/inbound.md, computed: the page and the code must agree."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest

from starlight_sequences.inbound import InboundKind, classify_message
from tests.unit._inbound_messages import message, out_of_office

DOC = (Path(__file__).parents[2] / "docs" / "inbound.md").read_text(encoding="utf-8")
ROW = re.compile(r'^\| "(?P<texts>.+)" \| (?P<result>[^|]+?) \|$', re.MULTILINE)


def _rows(heading: str) -> list[tuple[str, str]]:
    section = DOC.split(heading, 1)[1].split("\n## ", 1)[0]
    rows = []
    for match in ROW.finditer(section):
        for text in match["texts"].split('" / "'):
            rows.append((text, match["result"].strip()))
    return rows


RETURN_ROWS = _rows("## Return dates")
REQUEST_ROWS = _rows("## Unsubscribe requests")


def test_the_doc_tables_were_found() -> None:
    assert len(RETURN_ROWS) >= 8
    assert len(REQUEST_ROWS) >= 8


@pytest.mark.parametrize(("text", "expected"), RETURN_ROWS)
def test_the_return_date_examples_of_the_doc_hold(text: str, expected: str) -> None:
    result = classify_message(out_of_office(text), received_on=dt.date(2026, 12, 21))
    wanted = expected.split(" ", 1)[0]
    assert result.return_date == (None if wanted == "None" else dt.date.fromisoformat(wanted))


@pytest.mark.parametrize(("text", "expected"), REQUEST_ROWS)
def test_the_unsubscribe_examples_of_the_doc_hold(text: str, expected: str) -> None:
    kind = InboundKind(expected.split(" ", 1)[0].strip("`").lower())
    assert classify_message(message(text)).kind is kind
