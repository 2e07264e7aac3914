"""Header values read defensively: raw strings, Message-IDs, addresses, dates, decoded text.

The ``email`` package parses structured headers lazily and can raise on hostile ones, so the
classifier reads raw values (``Message.raw_items``) and decodes them itself, never failing.
"""

from __future__ import annotations

import codecs
import datetime as dt
import email.header
import email.utils
import re
from email.message import Message
from typing import Final

_FOLD: Final = re.compile(r"\r?\n(?=[ \t])")
_SURROGATES: Final = re.compile(r"[\ud800-\udfff]")
_CONTROLS: Final = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
_ANGLED_ID: Final = re.compile(r"<([^<>\s]{1,900})>")
_BARE_ID: Final = re.compile(r"[^<>\s\"(),;:]{1,450}@[^<>\s\"(),;:]{1,450}")
_ADDRESS: Final = re.compile(r"[^\s@<>()\[\]\\,;:\"]{1,64}@[^\s@<>()\[\]\\,;:\"]{1,255}")

MAX_IDS: Final = 100
"""At most this many ids are kept from one header (the newest ones of a long References)."""
MAX_HEADER_CHARS: Final = 16_384
"""A header value longer than this is cut before it is decoded or searched."""


def clean(text: str) -> str:
    """``text`` with every lone surrogate (undecodable byte) replaced by U+FFFD."""
    return _SURROGATES.sub("\ufffd", text)


def one_line(text: str) -> str:
    """``text`` on one line: control characters and line breaks become single spaces."""
    return _CONTROLS.sub(" ", clean(text)).strip()


def raw_values(message: Message, name: str) -> list[str]:
    """Every value of header ``name`` as written (unfolded, 8-bit bytes as surrogates)."""
    wanted = name.lower()
    values: list[str] = []
    for key, value in message.raw_items():
        if isinstance(key, str) and key.lower() == wanted:
            text = value if isinstance(value, str) else str(value)
            values.append(_FOLD.sub("", text[:MAX_HEADER_CHARS]))
    return values


def raw_value(message: Message, name: str) -> str:
    """The first value of header ``name`` as written, or ""."""
    values = raw_values(message, name)
    return values[0] if values else ""


def decode_bytes(data: bytes, charset: str | None) -> str:
    """Text of ``data`` in ``charset``, falling back to UTF-8, then Windows-1252; never fails.

    ISO-8859-1 is read as Windows-1252, its superset, as mail clients and browsers do (curly
    quotes from Outlook arrive that way). An unknown or non-text charset counts as none.
    """
    tried: list[str] = []
    if charset:
        try:
            name = codecs.lookup(charset.strip().strip('"')).name
        except (LookupError, ValueError):
            name = ""
        if name in {"latin-1", "iso8859-1"}:
            name = "cp1252"
        if name:
            tried.append(name)
    tried += ["utf-8", "cp1252"]
    for name in tried:
        try:
            return data.decode(name)
        except (UnicodeError, LookupError, TypeError, ValueError):
            continue
    return data.decode("cp1252", errors="replace")


def _from_surrogates(text: str) -> str:
    """Undo the parser's surrogate escapes of 8-bit header bytes, reading them as UTF-8."""
    if not _SURROGATES.search(text):
        return text
    try:
        return decode_bytes(text.encode("utf-8", "surrogateescape"), "utf-8")
    except UnicodeError:  # surrogates that are not escaped bytes
        return clean(text)


def decoded_text(raw: str) -> str:
    """A raw unstructured header value with its RFC 2047 encoded words decoded, on one line."""
    text = _from_surrogates(raw)
    if "=?" not in text:
        return one_line(text)
    try:
        pieces = email.header.decode_header(text)
    except Exception:  # the email package raises several types on broken encoded words
        return one_line(text)
    parts: list[str] = []
    for piece, charset in pieces:
        if isinstance(piece, bytes):
            parts.append(decode_bytes(piece, charset))
        else:
            parts.append(piece)
    # decode_header drops the space between an encoded word and plain text; put it back
    joined = ""
    for part in parts:
        if joined and not joined[-1].isspace() and part and not part[0].isspace():
            joined += " "
        joined += part
    return one_line(joined)


def normalise_message_id(value: str) -> str | None:
    """A Message-ID in the form stored sends use: ``<left@domain>``, domain lower-cased.

    Accepts the id with or without angle brackets and with surrounding whitespace or comments;
    returns None for text that holds no id.
    """
    ids = message_ids(value)
    return ids[0] if ids else None


def message_ids(value: str) -> tuple[str, ...]:
    """Every Message-ID in a header value (``In-Reply-To``, ``References``), in order, unique.

    Ids in angle brackets are taken as written; when there are none, bare ``left@domain`` tokens
    are. Only the last :data:`MAX_IDS` are kept.
    """
    text = clean(value[:MAX_HEADER_CHARS])
    found = _ANGLED_ID.findall(text) or _BARE_ID.findall(text)
    ids: dict[str, None] = {}
    for item in found:
        left, at, domain = item.rpartition("@")
        normal = f"<{left}@{domain.lower()}>" if at and left else f"<{item}>"
        ids.pop(normal, None)
        ids[normal] = None
    return tuple(ids)[-MAX_IDS:]


def normalise_address(value: str) -> str | None:
    """An email address as the lead module compares them: lower-case, ASCII (IDNA) domain.

    Takes a header value (``Ada <Ada@Example.com>``) or a bare address; returns None when no
    plausible ``local@domain`` is in it.
    """
    text = clean(value[:MAX_HEADER_CHARS]).strip()
    try:
        _, address = email.utils.parseaddr(text)
    except Exception:  # parseaddr is lenient, but it is not ours to trust on hostile input
        address = ""
    match = _ADDRESS.fullmatch(address.strip()) or _ADDRESS.search(text)
    if match is None:
        return None
    local, _, domain = match.group(0).strip(".").rpartition("@")
    domain = domain.strip(".").lower()
    if not local or "." not in domain:
        return None
    if not domain.isascii():
        try:
            domain = domain.encode("idna").decode("ascii")
        except UnicodeError:
            return None
    return one_line(f"{local.lower()}@{domain}") or None


def sent_at(message: Message) -> dt.datetime | None:
    """The ``Date`` header as an aware datetime; ``-0000`` (zone unknown) is read as UTC."""
    raw = raw_value(message, "date")
    if not raw:
        return None
    try:
        when = email.utils.parsedate_to_datetime(one_line(raw))
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when
