"""The command's output layer shows text from users without letting it drive the terminal."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from starlight_sequences._cli_output import plain, table, terminal_text


@pytest.mark.parametrize(
    ("given", "shown"),
    [
        ("ann\x1b[2J", "ann\\x1b[2J"),
        ("ann\x1b]0;pwned\x07", "ann\\x1b]0;pwned\\x07"),
        ("ann\x9b31m", "ann\\x9b31m"),  # C1 CSI
        ("ann\x7f", "ann\\x7f"),
        ("\u202enna", "\\u202enna"),  # a right-to-left override
        ("a\u2028b", "a\\u2028b"),
        ("a\ud800b", "a\\ud800b"),  # would not even encode as UTF-8
        ("a\U000e0041b", "a\\U000e0041b"),  # an invisible tag character
        ("Ann\tDoe\r\n", "Ann Doe  "),
        ("José 李 محمد", "José 李 محمد"),
        ("👩\u200d💻 نامه\u200cها", "👩\u200d💻 نامه\u200cها"),  # joiners stay
    ],
)
def test_plain_escapes_control_and_format_characters_on_one_line(given: str, shown: str) -> None:
    assert plain(given) == shown


def test_terminal_text_keeps_line_breaks_and_escapes_carriage_returns() -> None:
    assert terminal_text("one\n\ttwo\rX\x1b[31m") == "one\n\ttwo\\x0dX\\x1b[31m"


def test_table_cells_are_escaped_and_aligned() -> None:
    lines = table(["LEAD", "N"], [("a\x1bb", 1), ("ann", 22)], right=(1,))
    assert lines == ["LEAD     N", "a\\x1bb   1", "ann     22"]


def _acted_on(char: str) -> bool:
    category = unicodedata.category(char)
    return category in ("Cc", "Cs", "Zl", "Zp") or (category == "Cf" and char not in "\u200c\u200d")


@given(st.text())
def test_nothing_a_terminal_acts_on_is_left(text: str) -> None:
    assert not any(_acted_on(c) for c in plain(text))
    assert not any(_acted_on(c) for c in terminal_text(text) if c not in "\n\t")
