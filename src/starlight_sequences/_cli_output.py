"""How the ``starlight`` command writes: aligned tables, instants, the drafting progress bar."""

from __future__ import annotations

import datetime as dt
import unicodedata
from collections.abc import Sequence
from typing import TextIO

from starlight_sequences.locations import load_timezone

__all__ = ["DraftingProgress", "format_local", "format_utc", "plain", "table", "terminal_text"]

_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
# Format characters that are harmless and needed: the joiners of Persian, Indic scripts and
# emoji sequences. Every other one (bidi overrides, isolates, marks...) is shown escaped.
_KEPT_FORMAT = frozenset("\u200c\u200d")


def _escaped(char: str) -> str | None:
    """``char`` as a visible escape (``\\x1b``, ``\\u202e``) when a terminal would act on it
    instead of showing it (C0/C1 controls, DEL, bidi and other format characters, line and
    paragraph separators, surrogates), else None."""
    category = unicodedata.category(char)
    if category in ("Cc", "Cs", "Zl", "Zp") or (category == "Cf" and char not in _KEPT_FORMAT):
        code = ord(char)
        if code < 0x100:
            return f"\\x{code:02x}"
        return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"
    return None


def plain(text: str) -> str:
    """``text`` on one line, safe to print in a terminal: tabs and line breaks become spaces,
    every other control or format character is shown escaped (ESC as ``\\x1b``), so text
    from users (ids, names, reasons) cannot move the cursor, recolour or retitle the terminal.
    """
    out = []
    for char in text:
        if char in "\t\r\n":
            out.append(" ")
        else:
            out.append(_escaped(char) or char)
    return "".join(out)


def terminal_text(text: str) -> str:
    """``text`` with its line breaks (``\\n``) and tabs kept and every other control or format
    character escaped as :func:`plain` does (a ``\\r`` too: it would overwrite the line).
    The command's ``say`` and ``warn`` pass everything through it."""
    return "".join(char if char in "\n\t" else (_escaped(char) or char) for char in text)


def format_utc(moment: dt.datetime | None) -> str:
    """An aware instant as ``2026-12-01 15:14 UTC`` ("-" for None)."""
    if moment is None:
        return "-"
    utc = moment.astimezone(dt.UTC)
    return f"{utc:%Y-%m-%d %H:%M} UTC"


def format_local(moment: dt.datetime | None, timezone: str | None) -> str:
    """An aware instant in ``timezone`` as ``Tue 2026-12-01 10:14 America/New_York``.

    Day names come from a table, not ``strftime("%a")``, which follows the process locale.
    None gives "-"; a missing timezone shows the instant in UTC.
    """
    if moment is None:
        return "-"
    zone_name = timezone or "UTC"
    local = moment.astimezone(load_timezone(zone_name))
    return f"{_WEEKDAYS[local.weekday()]} {local:%Y-%m-%d %H:%M} {zone_name}"


def _columns(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(char) in "WF" else 1 for char in text)


def table(
    headers: Sequence[str], rows: Sequence[Sequence[object]], *, right: Sequence[int] = ()
) -> list[str]:
    """Rows as aligned text lines under a header line (two spaces between columns).

    Args:
        headers: the column titles.
        rows: the cells (turned into text with ``str`` and :func:`plain`).
        right: indexes of the columns aligned to the right (numbers).
    """
    cells = [[plain(str(cell)) for cell in row] for row in rows]
    widths = [_columns(h) for h in headers]
    for row in cells:
        for index, cell in enumerate(row):
            widths[index] = max(widths[index], _columns(cell))

    def line(row: Sequence[str]) -> str:
        parts = []
        for index, cell in enumerate(row):
            pad = " " * (widths[index] - _columns(cell))
            parts.append(pad + cell if index in right else cell + pad)
        return "  ".join(parts).rstrip()

    return [line(list(headers)), *(line(row) for row in cells)]


class DraftingProgress:
    """A progress bar for drafting, called as the service's ``progress(done, total)``.

    On a terminal it redraws one line with ``\\r`` (only when the drawing changes); elsewhere
    (a log file, a pipe) it writes one line each time another tenth of the work is done.

    Args:
        stream: where to write (the command's stderr).
        tty: whether ``stream`` is a terminal; None: ask ``stream.isatty()``.
        width: cells of the bar.
        label: the word in front.
    """

    def __init__(
        self, stream: TextIO, *, tty: bool | None = None, width: int = 30, label: str = "Drafting"
    ) -> None:
        self._stream = stream
        self._tty = stream.isatty() if tty is None else tty
        self._width = width
        self._label = label
        self._last_drawn = ""
        self._last_decile = 0
        self._open_line = False

    def __call__(self, done: int, total: int) -> None:
        """Show that ``done`` of ``total`` messages are drafted."""
        if total <= 0:
            return
        done = min(max(done, 0), total)
        percent = done * 100 // total
        if self._tty:
            filled = done * self._width // total
            bar = "#" * filled + "-" * (self._width - filled)
            drawing = f"{self._label} [{bar}] {percent:3d}%  {done}/{total} messages"
            if drawing != self._last_drawn:
                self._stream.write("\r" + drawing)
                self._stream.flush()
                self._last_drawn = drawing
                self._open_line = True
            if done == total:
                self.finish()
            return
        decile = percent // 10
        if decile > self._last_decile:
            self._last_decile = decile
            self._stream.write(f"{self._label}: {decile * 10}% ({done}/{total} messages)\n")
            self._stream.flush()

    def finish(self) -> None:
        """End the bar's line (on a terminal); call it also when drafting stops early."""
        if self._open_line:
            self._stream.write("\n")
            self._stream.flush()
            self._open_line = False
