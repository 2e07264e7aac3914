"""Delivery reports: RFC 3464 DSNs, plain-text bounces (Exim and others), read receipts.

An RFC 3464 report (``multipart/report; report-type=delivery-status``) is read from its
machine-readable part: one block of fields per recipient with ``Action``, ``Status``,
``Final-Recipient``, ``Original-Recipient`` and ``Diagnostic-Code``. A bounce written as plain
text (Exim's "Mail delivery failed", qmail's "failure notice", ...) is recognised by its sender,
subject, text and ``X-Failed-Recipients``, and read from the text.
"""

from __future__ import annotations

import binascii
import enum
import quopri
import re
from collections.abc import Iterable
from email.message import Message
from typing import Final

import attrs

from starlight_sequences.inbound._autoreply import own_subject
from starlight_sequences.inbound._folding import fold
from starlight_sequences.inbound._headers import (
    decode_bytes,
    message_ids,
    normalise_address,
    one_line,
    raw_value,
    raw_values,
)
from starlight_sequences.inbound._mime import children, content_type, leaf_text, param, walk

MAX_REPORT_CHARS: Final = 20_000
"""How much of a plain-text bounce is read for its codes and recipients."""
MAX_RECIPIENTS: Final = 50
MAX_DIAGNOSTIC_CHARS: Final = 500

_DSN_TYPES: Final = frozenset({"message/delivery-status", "message/global-delivery-status"})
_MDN_TYPES: Final = frozenset(
    {"message/disposition-notification", "message/global-disposition-notification"}
)
_ORIGINAL_MESSAGE_TYPES: Final = frozenset({"message/rfc822", "message/global"})
_ORIGINAL_HEADER_TYPES: Final = frozenset(
    {"text/rfc822-headers", "message/rfc822-headers", "message/global-headers"}
)
_SUCCESS_ACTIONS: Final = frozenset({"delivered", "relayed", "expanded"})

_ENHANCED_CODE: Final = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d.]*\d)")
_BASIC_CODE: Final = re.compile(r"(?<![\d.])([245])\d\d(?=[ -]|$)", re.MULTILINE)
_MESSAGE_ID_LINE: Final = re.compile(
    r"^[ \t]*message-id[ \t]*:[ \t]*(.*(?:\r?\n[ \t]+.*)*)", re.IGNORECASE | re.MULTILINE
)
_FIELD: Final = re.compile(r"^([!-9;-~]{1,76})[ \t]*:(.*)$")
_ADDRESS: Final = r"[^\s@<>()\[\]\\,;:\"]{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z0-9-]{2,63}"
_RECIPIENT_LINES: Final = (
    re.compile(rf"^[ \t]*<?({_ADDRESS})>?:?[ \t]*$", re.MULTILINE),
    re.compile(rf"^<({_ADDRESS})>:", re.MULTILINE),
    re.compile(rf"rcpt to:[ \t]*<({_ADDRESS})>", re.IGNORECASE),
    re.compile(
        rf"(?:message to|delivered to|delivery to|deliver to|recipient)[ \t]+<?({_ADDRESS})",
        re.IGNORECASE,
    ),
)
_COPY_MARKERS: Final = re.compile(
    r"^[ \t-]*(?:this is a copy of the message|original message follows|the header of the "
    r"original message|below this line is a copy|----- original message -----|"
    r"---------- forwarded message|a copy of the original message)",
    re.IGNORECASE | re.MULTILINE,
)
_MAIL_SYSTEM_LOCALS: Final = frozenset(
    {"mailer-daemon", "mailerdaemon", "mail-daemon", "postmaster", "mdaemon"}
)
_BOUNCE_SUBJECT: Final = re.compile(
    r"undeliver|mail delivery fail|delivery status notification|returned mail|failure notice"
    r"|delivery fail|delivery has failed|non[- ]?deliver|not delivered|could not be delivered"
    r"|delivery (?:problem|incomplete|delayed)|delayed mail|warning: message .{0,60}delayed"
    r"|unzustellbar|nicht zustellbar|non remis|non distribue|no se puede entregar"
    r"|no entregado|nao entregue|nao foi possivel entregar|non recapitabile"
    r"|mancato recapito|onbestelbaar|niet afgeleverd|niet bezorgd"
)
_BOUNCE_TEXT: Final = re.compile(
    r"mail delivery software|could not be delivered|couldn't be delivered"
    r"|wasn't delivered|was not delivered|delivery to the following recipients? failed"
    r"|following address(?:\(es\)|es)? failed|permanent(?:ly)? (?:error|fatal|failed)"
    r"|undeliverable|this is the mail system at|delivery has failed|not yet been delivered"
    r"|failed permanently|message delayed|delivery is delayed|delivery incomplete"
)
_DELAY_TEXT: Final = re.compile(
    r"not yet been delivered|delayed|will (?:continue to )?(?:retry|try)|still (?:trying|being)"
    r"|being retried|temporar\w*|try again later"
)
_PERMANENT_TEXT: Final = re.compile(
    r"permanent|failed permanently|returning message to sender|undeliverable"
    r"|could not be delivered|couldn't be delivered|user unknown|does not exist|no such"
)


class Outcome(enum.Enum):
    """What a delivery report says happened."""

    HARD = "hard"
    SOFT = "soft"
    DELIVERED = "delivered"


@attrs.frozen(kw_only=True)
class DeliveryReport:
    """What a bounce or delivery status notification says."""

    outcome: Outcome
    source: str
    """"a delivery status notification" or "a plain-text bounce"."""
    recipients: tuple[str, ...] = ()
    status_code: str | None = None
    diagnostic: str = ""
    original_message_ids: tuple[str, ...] = ()
    action: str = ""


@attrs.frozen(kw_only=True)
class _Recipient:
    addresses: tuple[str, ...]
    action: str
    status: str | None
    diagnostic: str
    code_class: str | None


def report_type(message: Message) -> tuple[str, Message] | None:
    """The ``report-type`` of the message's ``multipart/report`` (outside attached messages),
    with that part; None when there is none."""
    for part, _ in walk(message, into_messages=False):
        if content_type(part) == "multipart/report":
            kind = param(part, "report-type")
            if not kind:
                kinds = {content_type(child) for child in children(part)}
                kind = (
                    "delivery-status"
                    if kinds & _DSN_TYPES
                    else "disposition-notification"
                    if kinds & _MDN_TYPES
                    else ""
                )
            return kind, part
    return None


def is_read_receipt(message: Message) -> bool:
    """True for a message disposition notification (a read receipt, RFC 8098)."""
    found = report_type(message)
    if found is not None and found[0] == "disposition-notification":
        return True
    return any(content_type(part) in _MDN_TYPES for part, _ in walk(message, into_messages=False))


def _transfer_decoded(text: str, encoding: str) -> str:
    """``text`` decoded from base64 or quoted-printable, leniently (junk characters dropped)."""
    data = text.encode("ascii", "replace")
    try:
        if encoding == "base64":
            letters = re.sub(rb"[^A-Za-z0-9+/]", b"", data)
            data = binascii.a2b_base64(letters + b"=" * (-len(letters) % 4))
        else:
            data = quopri.decodestring(data)
    except (binascii.Error, ValueError):
        return text
    return decode_bytes(data, "utf-8")


def _field_blocks(part: Message) -> list[list[tuple[str, str]]]:
    """The blocks of ``Name: value`` fields of a delivery-status part."""
    parsed = children(part)
    encoding = raw_value(part, "content-transfer-encoding").strip().lower()
    if parsed and encoding not in {"base64", "quoted-printable"}:
        return [
            [(str(name), one_line(str(value))) for name, value in block.raw_items()]
            for block in parsed
        ]
    if parsed:  # the parser split the still-encoded text as if it were fields: rejoin it
        pieces = []
        for block in parsed:
            lines = [f"{name}:{value}" for name, value in block.raw_items()]
            payload = block.get_payload()
            pieces.append("\n".join([*lines, payload if isinstance(payload, str) else ""]))
        text = _transfer_decoded("\n\n".join(pieces), encoding)
    else:
        text = leaf_text(part)
    return _blocks_in_text(text)


def _blocks_in_text(text: str) -> list[list[tuple[str, str]]]:
    blocks: list[list[tuple[str, str]]] = []
    fields: list[tuple[str, str]] = []
    for line in text[:MAX_REPORT_CHARS].splitlines():
        if not line.strip():
            if fields:
                blocks.append(fields)
            fields = []
        elif line[0] in " \t" and fields:
            name, value = fields[-1]
            fields[-1] = (name, f"{value} {line.strip()}")
        elif match := _FIELD.match(line):
            fields.append((match.group(1), one_line(match.group(2))))
    if fields:
        blocks.append(fields)
    return blocks


def _code_class(status: str | None, diagnostic: str, action: str) -> str | None:
    if status and status[0] in "45":
        return status[0]
    for pattern in (_ENHANCED_CODE, _BASIC_CODE):
        found = pattern.search(diagnostic)
        if found is not None and found.group(1) in "45":
            return found.group(1)
    return {"failed": "5", "delayed": "4"}.get(action, "2" if action in _SUCCESS_ACTIONS else None)


def _address_field(value: str) -> str | None:
    """The address of a ``Final-Recipient``/``Original-Recipient`` value (``rfc822; a@b``)."""
    _, _, address = value.rpartition(";")
    return normalise_address(address.strip() or value)


def _recipient(fields: list[tuple[str, str]]) -> _Recipient | None:
    named: dict[str, str] = {}
    for name, value in fields:
        named.setdefault(name.lower(), value)
    if not {"final-recipient", "original-recipient", "action", "status"} & set(named):
        return None
    addresses = [
        address
        for key in ("original-recipient", "final-recipient")
        if key in named and (address := _address_field(named[key])) is not None
    ]
    action = named.get("action", "").strip().lower().split(" ", 1)[0]
    status_match = _ENHANCED_CODE.search(named.get("status", ""))
    status = ".".join(status_match.groups()) if status_match else None
    diagnostic = named.get("diagnostic-code", "")
    _, semicolon, after = diagnostic.partition(";")
    diagnostic = (after if semicolon else diagnostic).strip()
    if status is None and (code := _ENHANCED_CODE.search(diagnostic)):
        status = ".".join(code.groups())
    return _Recipient(
        addresses=tuple(dict.fromkeys(addresses)),
        action=action,
        status=status,
        diagnostic=diagnostic[:MAX_DIAGNOSTIC_CHARS],
        code_class=_code_class(status, diagnostic, action),
    )


def _failed_recipient_header(message: Message) -> list[str]:
    found: list[str] = []
    for value in raw_values(message, "x-failed-recipients"):
        for piece in value.split(","):
            if (address := normalise_address(piece)) is not None:
                found.append(address)
    return found


def _ids_in_text(text: str) -> list[str]:
    ids: list[str] = []
    for match in _MESSAGE_ID_LINE.finditer(text[: MAX_REPORT_CHARS * 5]):
        ids.extend(message_ids(match.group(1)))
    return ids


def original_message_ids(report: Message) -> tuple[str, ...]:
    """Message-IDs of the returned message: from a ``message/rfc822`` part, returned headers,
    or headers quoted in the text of the report."""
    ids: list[str] = []
    for part, _ in walk(report, into_messages=False):
        kind = content_type(part)
        if kind in _ORIGINAL_MESSAGE_TYPES:
            inner = children(part)
            if inner:
                ids.extend(message_ids(raw_value(inner[0], "message-id")))
            else:
                ids.extend(_ids_in_text(leaf_text(part)))
        elif kind in _ORIGINAL_HEADER_TYPES:
            ids.extend(_ids_in_text(leaf_text(part)))
    if not ids:
        for part, _ in walk(report, into_messages=False):
            if content_type(part) == "text/plain" and not part.is_multipart():
                ids.extend(_ids_in_text(leaf_text(part)))
    return tuple(dict.fromkeys(ids))


def _judge(recipients: Iterable[_Recipient]) -> tuple[Outcome, list[_Recipient]] | None:
    listed = list(recipients)
    for wanted, outcome in (("5", Outcome.HARD), ("4", Outcome.SOFT)):
        chosen = [r for r in listed if r.code_class == wanted and r.action not in _SUCCESS_ACTIONS]
        if chosen:
            return outcome, chosen
    delivered = [r for r in listed if r.action in _SUCCESS_ACTIONS or r.code_class == "2"]
    if delivered:
        return Outcome.DELIVERED, delivered
    return None


def delivery_status_report(message: Message) -> DeliveryReport | None:
    """What an RFC 3464 delivery status notification in ``message`` says, or None when the
    message has none (or one without a single readable recipient block)."""
    found = report_type(message)
    container = found[1] if found is not None else message
    status_parts = [
        part for part, _ in walk(container, into_messages=False) if content_type(part) in _DSN_TYPES
    ]
    if not status_parts or (found is not None and found[0] not in {"delivery-status", ""}):
        return None
    blocks = _field_blocks(status_parts[0])
    recipients = [recipient for block in blocks if (recipient := _recipient(block)) is not None]
    # Gmail names the returned message in the per-message block
    stated_ids = [
        message_id
        for name, value in (blocks[0] if blocks else [])
        if name.lower() in {"x-original-message-id", "original-message-id"}
        for message_id in message_ids(value)
    ]
    judged = _judge(recipients)
    if judged is None:
        return None
    outcome, chosen = judged
    addresses = [address for r in chosen for address in r.addresses]
    if outcome is not Outcome.DELIVERED:
        addresses += _failed_recipient_header(message)
    first = chosen[0]
    return DeliveryReport(
        outcome=outcome,
        source="a delivery status notification",
        recipients=tuple(dict.fromkeys(addresses))[:MAX_RECIPIENTS],
        status_code=first.status,
        diagnostic=first.diagnostic,
        original_message_ids=tuple(dict.fromkeys([*original_message_ids(container), *stated_ids])),
        action=first.action,
    )


def _from_mail_system(message: Message) -> bool:
    sender = raw_value(message, "from")
    address = normalise_address(sender) or ""
    if address.partition("@")[0] in _MAIL_SYSTEM_LOCALS:
        return True
    if re.search(r"mail delivery (?:system|subsystem)", fold(sender)):
        return True
    return raw_value(message, "return-path").strip() == "<>"


def report_text(text: str) -> str:
    """The explanation part of a bounce's text: up to the returned copy of the message."""
    marker = _COPY_MARKERS.search(text, 0, MAX_REPORT_CHARS)
    return text[: marker.start()] if marker else text[:MAX_REPORT_CHARS]


def _recipients_in_text(text: str) -> list[str]:
    found: list[tuple[int, str]] = []
    for pattern in _RECIPIENT_LINES:
        for match in pattern.finditer(text):
            if (address := normalise_address(match.group(1))) is not None:
                found.append((match.start(), address))
    addresses = [address for _, address in sorted(found)]
    return [a for a in addresses if a.partition("@")[0] not in _MAIL_SYSTEM_LOCALS]


def _plain_outcome(text: str) -> tuple[Outcome, str | None, str]:
    """Outcome, enhanced status code and the diagnostic line of a plain-text bounce.

    The first 4.x.x or 5.x.x status code decides, else the first 4xx or 5xx reply code, else
    the words: a text that says delivery is delayed or will be retried, and nothing
    permanent, is soft; any other bounce is hard (a mail system returns a message when it
    gives up on it)."""
    enhanced = next(
        (m for m in _ENHANCED_CODE.finditer(text) if m.group(1) in "45"),
        None,
    )
    basic = next((m for m in _BASIC_CODE.finditer(text) if m.group(1) in "45"), None)
    code = enhanced or basic
    diagnostic = ""
    if code is not None:
        start = text.rfind("\n", 0, code.start()) + 1
        end = text.find("\n", code.end())
        diagnostic = one_line(text[start : end if end >= 0 else len(text)])
        outcome = Outcome.HARD if code.group(1) == "5" else Outcome.SOFT
    else:
        folded = fold(text)
        delayed = _DELAY_TEXT.search(folded) and not _PERMANENT_TEXT.search(folded)
        outcome = Outcome.SOFT if delayed else Outcome.HARD
    status = ".".join(enhanced.groups()) if enhanced else None
    return outcome, status, diagnostic[:MAX_DIAGNOSTIC_CHARS]


def plain_text_bounce(message: Message, subject: str, text: str) -> DeliveryReport | None:
    """What a bounce written as plain text says, or None when ``message`` does not read as
    one. ``text`` is the message's body text (with any returned copy of the original)."""
    header_recipients = _failed_recipient_header(message)
    report = report_text(text)
    folded = fold(report)
    bounce_subject = _BOUNCE_SUBJECT.search(own_subject(subject)) is not None
    bounce_text = _BOUNCE_TEXT.search(folded) is not None
    if not (
        header_recipients
        or (_from_mail_system(message) and (bounce_subject or bounce_text))
        or (bounce_subject and bounce_text)
    ):
        return None
    outcome, status, diagnostic = _plain_outcome(report)
    recipients = header_recipients + _recipients_in_text(report)
    ids = _ids_in_text(text) or list(original_message_ids(message))
    delayed = outcome is Outcome.SOFT and _DELAY_TEXT.search(folded) is not None
    return DeliveryReport(
        outcome=outcome,
        source="a plain-text bounce",
        action="delayed" if delayed else "",
        recipients=tuple(dict.fromkeys(recipients))[:MAX_RECIPIENTS],
        status_code=status,
        diagnostic=diagnostic,
        original_message_ids=tuple(dict.fromkeys(ids)),
    )
