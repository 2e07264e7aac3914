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

MAX_PARTS: Final = 500
"""At most this many MIME parts of one message are looked at."""
MAX_CONTAINERS: Final = 200
"""A message declaring more multipart or message parts than this is not parsed at all: the
standard library parses nesting recursively, so deep nesting would exhaust the stack."""

_CONTAINER_TYPES: Final = re.compile(rb"content-type:\s*\"?(?:multipart|message)/", re.IGNORECASE)
_ZERO_WIDTH: Final = re.compile(r"[\u200b\u200c\u200d\u2060\ufeff]")


class Unreadable(Exception):
    """The raw bytes cannot be parsed into a message at all; the text says why."""


def parse(raw: bytes) -> Message:
    """The message in ``raw`` (``policy.default``); raises :class:`Unreadable` only."""
    containers = len(_CONTAINER_TYPES.findall(raw))
    if containers > MAX_CONTAINERS:
        raise Unreadable(
            f"it declares {containers} multipart or message parts, more than the "
            f"{MAX_CONTAINERS} the classifier reads"
        )
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
    """Line breaks as ``\\n``, no-break spaces as spaces, zero-width characters removed."""
    text = clean(text).replace("\r\n", "\n").replace("\r", "\n")
    return _ZERO_WIDTH.sub("", text.replace("\u00a0", " "))


def body_text(message: Message) -> str:
    """The text the sender wrote: the first inline ``text/plain`` part that is not blank, else
    the first ``text/html`` part as text. Attached messages and attachments are skipped."""
    first_html: Message | None = None
    for part, _ in walk(message, into_messages=False):
        kind = content_type(part)
        if part.is_multipart() or is_attachment(part):
            continue
        if kind == "text/plain":
            text = normalise_text(leaf_text(part))
            if text.strip():
                return text
        elif kind == "text/html" and first_html is None:
            first_html = part
    if first_html is not None:
        return normalise_text(html_to_text(leaf_text(first_html)))
    return ""
