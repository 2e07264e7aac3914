"""Reading MIME structure without trusting it: bounded walks, lenient decoding, the body text."""

from __future__ import annotations

import re
from collections.abc import Iterator
from email import policy
from email.message import Message
from email.parser import BytesParser
from typing import Final

from starlight_sequences.inbound._headers import clean, decode_bytes
from starlight_sequences.inbound._html import html_to_text
from starlight_sequences.inbound._model import MAX_MIME_DEPTH

MAX_TEXT_CHARS: Final = 100_000
"""Only the first hundred thousand characters of a message's text are read."""
MAX_PARTS: Final = 500
"""At most this many MIME parts of one message are looked at."""
MAX_CONTAINERS: Final = 200
"""A message declaring more multipart or message parts than this is not parsed at all: the
standard library parses nesting recursively, so deep nesting would exhaust the stack."""
MAX_DELIMITERS: Final = 1_000
"""A message with more MIME boundary lines than this is not parsed: the standard library
spends about a millisecond on each part, so a flood of tiny parts would take minutes."""
MAX_HEADER_LINES: Final = 5_000
"""A message whose header section has more lines than this is not parsed (same reason)."""
MAX_STATUS_BLOCKS: Final = 1_000
"""A delivery-status part with more blocks of fields than this is not parsed (same reason)."""

_CONTAINER_TYPES: Final = re.compile(rb"content-type:\s*\"?(?:multipart|message)/", re.IGNORECASE)
_BOUNDARY: Final = re.compile(
    rb"boundary\s*=\s*(?:\"([^\"\r\n]{1,200})\"|([^\s;\"]{1,200}))", re.IGNORECASE
)
_HEADER_END: Final = re.compile(rb"\r?\n\r?\n")
_STATUS_TYPE: Final = re.compile(rb"message/(?:global-)?delivery-status", re.IGNORECASE)
_BLANK_LINE: Final = re.compile(rb"\n[ \t]*\r?\n")
# zero-width characters, and control characters other than tab and line breaks
_INVISIBLE: Final = re.compile(r"[\u200b\u200c\u200d\u2060\ufeff\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class Unreadable(Exception):
    """The raw bytes cannot be parsed into a message at all; the text says why."""


def _delimiters(raw: bytes) -> re.Pattern[bytes] | None:
    """A pattern for the boundary lines of the boundaries ``raw`` declares (None: none)."""
    declared = {a or b for a, b in _BOUNDARY.findall(raw)}
    if not declared:
        return None
    names = sorted(declared)[:MAX_CONTAINERS]
    return re.compile(rb"^--(?:" + b"|".join(re.escape(name) for name in names) + rb")", re.M)


def _status_blocks(raw: bytes, delimiters: re.Pattern[bytes] | None) -> int:
    """How many blocks of fields the delivery-status parts of ``raw`` hold, at most."""
    blocks = 0
    for declared in _STATUS_TYPE.finditer(raw):
        end = len(raw)
        if delimiters is not None and (after := delimiters.search(raw, declared.end())):
            end = after.start()
        blocks += sum(1 for _ in _BLANK_LINE.finditer(raw, declared.end(), end))
        if blocks > MAX_STATUS_BLOCKS:
            break
    return blocks


def check_structure(raw: bytes) -> None:
    """Raise :class:`Unreadable` when ``raw`` is shaped to make the parser too slow or
    recursive: too many containers, boundary lines, header lines or status blocks."""
    containers = len(_CONTAINER_TYPES.findall(raw))
    if containers > MAX_CONTAINERS:
        raise Unreadable(
            f"it declares {containers} multipart or message parts, more than the "
            f"{MAX_CONTAINERS} the classifier reads"
        )
    header_end = _HEADER_END.search(raw)
    header_lines = raw.count(b"\n", 0, header_end.start() if header_end else len(raw))
    if header_lines > MAX_HEADER_LINES:
        raise Unreadable(
            f"its header has {header_lines:,} lines, more than the {MAX_HEADER_LINES:,} the "
            "classifier reads"
        )
    delimiters = _delimiters(raw)
    lines = sum(1 for _ in delimiters.finditer(raw)) if delimiters is not None else 0
    if lines > MAX_DELIMITERS:
        raise Unreadable(
            f"it has {lines:,} MIME boundary lines, more than the {MAX_DELIMITERS:,} the "
            "classifier reads"
        )
    if _status_blocks(raw, delimiters) > MAX_STATUS_BLOCKS:
        raise Unreadable(
            f"its delivery status has more than {MAX_STATUS_BLOCKS:,} blocks of fields"
        )


def parse(raw: bytes) -> Message:
    """The message in ``raw`` (``policy.default``); raises :class:`Unreadable` only."""
    check_structure(raw)
    try:
        return BytesParser(policy=policy.default).parsebytes(raw)
    except RecursionError:
        raise Unreadable("its MIME parts are nested too deeply to parse") from None
    except Exception as exc:  # the parser is lenient; a failure here is a bug we must survive
        raise Unreadable(f"the email parser gave up ({type(exc).__name__})") from None


def content_type(part: Message) -> str:
    """The part's ``maintype/subtype`` in lower case (``text/plain`` when unreadable)."""
    try:
        return part.get_content_type()
    except Exception:  # header parsing of a hostile Content-Type
        return "text/plain"


def param(part: Message, name: str) -> str:
    """A ``Content-Type`` parameter in lower case, or ""."""
    try:
        value = part.get_param(name)
    except Exception:
        return ""
    if isinstance(value, tuple):  # RFC 2231 (charset, language, value)
        value = value[2]
    return clean(str(value)).strip().lower() if value is not None else ""


def is_attachment(part: Message) -> bool:
    """True when the part is declared an attachment."""
    try:
        disposition = part.get_content_disposition()
    except Exception:
        return False
    return disposition == "attachment"


def children(part: Message) -> list[Message]:
    """The direct subparts of a multipart or ``message/*`` part ([] for a leaf)."""
    try:
        payload = part.get_payload()
    except Exception:
        return []
    if isinstance(payload, list):
        return [child for child in payload if isinstance(child, Message)]
    return []


def walk(
    message: Message, *, into_messages: bool = True, max_depth: int = MAX_MIME_DEPTH
) -> Iterator[tuple[Message, int]]:
    """Every part with its depth, depth-first in document order, within the caps.

    With ``into_messages=False`` the parts of an attached ``message/rfc822`` (a forwarded or
    returned message) are not entered. At most :data:`MAX_PARTS` parts are yielded; parts
    deeper than ``max_depth`` are skipped.
    """
    stack: list[tuple[Message, int]] = [(message, 0)]
    seen = 0
    while stack and seen < MAX_PARTS:
        part, depth = stack.pop()
        seen += 1
        yield part, depth
        if depth >= max_depth:
            continue
        if not into_messages and depth > 0 and content_type(part).startswith("message/"):
            continue
        stack.extend((child, depth + 1) for child in reversed(children(part)))


def leaf_text(part: Message) -> str:
    """The decoded text of a leaf part (transfer encoding and charset), never raising."""
    try:
        data = part.get_payload(decode=True)
    except Exception:
        data = None
    if isinstance(data, bytes):
        return decode_bytes(data, param(part, "charset") or None)
    try:
        payload = part.get_payload()
    except Exception:
        return ""
    return clean(payload) if isinstance(payload, str) else ""


def normalise_text(text: str) -> str:
    """Line breaks as ``\\n``, no-break spaces as spaces; zero-width and control characters
    (but tabs) removed."""
    text = clean(text).replace("\r\n", "\n").replace("\r", "\n")
    return _INVISIBLE.sub("", text.replace("\u00a0", " "))


def body_text(message: Message) -> str:
    """The text the sender wrote: the first inline ``text/plain`` part that is not blank, else
    the first ``text/html`` part as text. Attached messages and attachments are skipped."""
    first_html: Message | None = None
    for part, _ in walk(message, into_messages=False):
        kind = content_type(part)
        if part.is_multipart() or is_attachment(part):
            continue
        if kind == "text/plain":
            text = normalise_text(leaf_text(part)[:MAX_TEXT_CHARS])
            if text.strip():
                return text
        elif kind == "text/html" and first_html is None:
            first_html = part
    if first_html is not None:
        return normalise_text(html_to_text(leaf_text(first_html))[:MAX_TEXT_CHARS])
    return ""
