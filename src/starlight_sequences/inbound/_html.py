"""A small, safe HTML-to-text conversion on the standard library's ``html.parser``.

Enough to read what a person wrote in an HTML-only email: block elements become line breaks,
``<blockquote>`` content becomes ``>``-quoted lines (so quoted history is recognised the same
way as in plain text), ``<hr>`` becomes Outlook's underscore separator, and the content of
``<script>``, ``<style>``, ``<head>`` and ``<title>`` is dropped. Nothing is fetched, nothing is
executed.
"""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser
from typing import Final

MAX_HTML_CHARS: Final = 500_000
"""Only the first half million characters of an HTML body are converted."""

SEPARATOR: Final = "_" * 32

_HIDDEN: Final = frozenset({"script", "style", "head", "title", "template", "noscript"})
_BLOCKS: Final = frozenset(
    {
        "address",
        "article",
        "aside",
        "blockquote",
        "dd",
        "div",
        "dl",
        "dt",
        "fieldset",
        "figure",
        "footer",
        "form",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "header",
        "li",
        "main",
        "nav",
        "ol",
        "p",
        "pre",
        "section",
        "table",
        "tbody",
        "td",
        "th",
        "thead",
        "tr",
        "ul",
    }
)
_SPACES: Final = re.compile(r"[ \t\r\n\f\v]+")
_TAG: Final = re.compile(r"<[^>]{0,10000}>")
_MAX_DEPTH: Final = 200


class _TextCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = []
        self._line: list[str] = []
        self._line_depth = 0
        self._hidden: list[str] = []
        self._quote_depth = 0
        self._pre_depth = 0

    def _break(self, *, blank: bool = False) -> None:
        """End the current line; an empty one is kept only for ``<br>`` (``blank``)."""
        joined = "".join(self._line)
        text = joined.rstrip() if self._pre_depth else joined.strip(" ")
        if text:
            self.lines.append("> " * self._line_depth + text)
        elif blank and self.lines and self.lines[-1]:
            self.lines.append("")
        self._line = []
        self._line_depth = self._quote_depth

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _HIDDEN:
            self._hidden.append(tag)
        elif tag == "br":
            self._break(blank=True)
        elif tag == "hr":
            self._break()
            self.lines.append(SEPARATOR)
        elif tag in _BLOCKS:
            self._break()
            if tag == "blockquote":
                self._quote_depth = min(self._quote_depth + 1, _MAX_DEPTH)
                self._line_depth = self._quote_depth
            elif tag == "pre":
                self._pre_depth += 1

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in _HIDDEN:
            self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag in _HIDDEN:
            if tag in self._hidden:
                while self._hidden and self._hidden.pop() != tag:
                    pass
        elif tag in _BLOCKS:
            self._break()
            if tag == "blockquote" and self._quote_depth:
                self._quote_depth -= 1
                self._line_depth = self._quote_depth
            elif tag == "pre" and self._pre_depth:
                self._pre_depth -= 1

    def handle_data(self, data: str) -> None:
        if self._hidden:
            return
        if self._pre_depth:
            first, *rest = data.replace("\u00a0", " ").split("\n")
            self._line.append(first)
            for piece in rest:
                self._break()
                self._line.append(piece)
        else:
            self._line.append(_SPACES.sub(" ", data.replace("\u00a0", " ")))

    def text(self) -> str:
        self._break()
        return "\n".join(self.lines).strip("\n")


def html_to_text(markup: str) -> str:
    """Readable text of an HTML document or fragment; never raises.

    Block elements and ``<br>`` start new lines; text inside ``<blockquote>`` is prefixed with
    ``"> "`` per level; ``<hr>`` becomes a line of underscores; scripts, styles and the head are
    left out; entities are decoded. Only the first half million characters are read.
    """
    source = markup[:MAX_HTML_CHARS]
    collector = _TextCollector()
    try:
        collector.feed(source)
        collector.close()
    except Exception:  # html.parser is lenient; should it still give up, strip tags instead
        return html.unescape(_TAG.sub(" ", source)).strip()
    return collector.text()
