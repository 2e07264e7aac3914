"""``classify_message``: one raw inbound message in, one :class:`InboundClassification` out."""

from __future__ import annotations

import datetime as dt
import hashlib
from email.message import Message
from typing import Any, Final

import attrs

from starlight_sequences.errors import InvalidInput
from starlight_sequences.inbound._autoreply import (
    Automation,
    HeaderEvidence,
    body_phrase,
    header_evidence,
    own_subject,
    self_declared,
    subject_phrase,
)
from starlight_sequences.inbound._bounces import (
    DeliveryReport,
    Outcome,
    delivery_status_report,
    is_read_receipt,
    plain_text_bounce,
    report_text,
    report_type,
)
from starlight_sequences.inbound._dates import find_return_date
from starlight_sequences.inbound._headers import (
    decoded_text,
    message_ids,
    normalise_address,
    raw_value,
    raw_values,
    sent_at,
)
from starlight_sequences.inbound._mime import Unreadable, body_text, parse
from starlight_sequences.inbound._model import (
    MAX_MESSAGE_BYTES,
    InboundClassification,
    InboundKind,
)
from starlight_sequences.inbound._quotes import SplitReply, split_reply
from starlight_sequences.inbound._unsubscribe import request_phrase

_INTERNAL_ERROR: Final = "internal error"
_REPORT_TYPES: Final = {
    "feedback-report": "an abuse or feedback report (ARF), which names no reply or bounce",
    "tlsrpt": "a TLS reporting message (SMTP TLS report), not about any send",
}


@attrs.frozen(kw_only=True)
class _Read:
    """What every classification carries, read once from the parsed message."""

    message_id: str
    in_reply_to: tuple[str, ...]
    references: tuple[str, ...]
    from_address: str | None
    subject: str
    sent_at: dt.datetime | None

    @property
    def answers_something(self) -> bool:
        return bool(self.in_reply_to or self.references)


def _hash_id(raw: bytes) -> str:
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def _read(message: Message, raw: bytes) -> _Read:
    own_ids = message_ids(raw_value(message, "message-id"))
    return _Read(
        message_id=own_ids[0] if own_ids else _hash_id(raw),
        in_reply_to=message_ids(" ".join(raw_values(message, "in-reply-to"))),
        references=message_ids(" ".join(raw_values(message, "references"))),
        from_address=normalise_address(raw_value(message, "from")),
        subject=decoded_text(raw_value(message, "subject")),
        sent_at=sent_at(message),
    )


def _result(read: _Read, kind: InboundKind, reason: str, **fields: Any) -> InboundClassification:
    base = InboundClassification(
        kind=kind,
        reason=reason,
        message_id=read.message_id,
        in_reply_to=read.in_reply_to,
        references=read.references,
        from_address=read.from_address,
        subject=read.subject,
        sent_at=read.sent_at,
    )
    return attrs.evolve(base, **fields) if fields else base


def _bounce(read: _Read, report: DeliveryReport, text: str) -> InboundClassification:
    who = ", ".join(report.recipients) if report.recipients else "a recipient it does not name"
    why = report.status_code or report.diagnostic[:120] or "no status code stated"
    if report.outcome is Outcome.HARD:
        kind = InboundKind.BOUNCE_HARD
        reason = f"{report.source}: delivery to {who} failed permanently ({why})"
    else:
        kind = InboundKind.BOUNCE_SOFT
        verb = "is delayed" if report.action == "delayed" else "failed for now"
        reason = f"{report.source}: delivery to {who} {verb} ({why}); the mail system may retry"
    return _result(
        read,
        kind,
        reason,
        failed_recipients=report.recipients,
        original_message_ids=report.original_message_ids,
        status_code=report.status_code,
        diagnostic=report.diagnostic,
        text=text,
    )


def _reports(message: Message, read: _Read, body: str) -> InboundClassification | None:
    """The classification of a read receipt, DSN or plain-text bounce; None for other mail."""
    if is_read_receipt(message):
        return _result(
            read,
            InboundKind.UNMATCHED,
            "a read receipt (message disposition notification): it says a message was "
            "displayed, not that anyone answered",
        )
    found = report_type(message)
    if found is not None and found[0] in _REPORT_TYPES:
        return _result(read, InboundKind.UNMATCHED, _REPORT_TYPES[found[0]])
    report = delivery_status_report(message)
    if report is not None and report.outcome is Outcome.DELIVERED:
        return _result(
            read,
            InboundKind.UNMATCHED,
            f"a delivery status notification that reports success (Action: "
            f"{report.action or 'delivered'}), not a bounce",
            original_message_ids=report.original_message_ids,
        )
    if report is None:
        report = plain_text_bounce(message, read.subject, body)
    if report is not None:
        return _bounce(read, report, report_text(body).strip())
    if found is not None and found[0] == "delivery-status":
        return _result(
            read,
            InboundKind.UNMATCHED,
            "a delivery status notification with no readable recipient, status or action",
        )
    if found is not None and found[0] != "":
        return _result(
            read, InboundKind.UNMATCHED, f"a report of type {found[0]!r}, not a delivery status"
        )
    return None


def _auto_reply_evidence(evidence: HeaderEvidence, read: _Read, own: str) -> str | None:
    """Why the message is an automatic reply, or None when it is not one."""
    if evidence.automation is Automation.AUTO_REPLY:
        return f"the header {evidence.header}"
    if evidence.list_header and not read.answers_something:
        return None  # a newsletter or list post, whatever its text says
    in_subject = subject_phrase(read.subject)
    in_text = body_phrase(own)
    declared = self_declared(own)
    if evidence.automation is Automation.AUTOMATIC:
        if in_subject or in_text or declared or read.answers_something:
            return f"the header {evidence.header}"
        return None
    if in_subject:
        return f"the subject ({in_subject!r})"
    if in_text and declared:
        return f"the text ({in_text!r}, {declared!r})"
    if in_text and evidence.suppresses_auto_responses:
        return f"the text ({in_text!r}) and the header X-Auto-Response-Suppress"
    return None


def _automatic_unanswered(evidence: HeaderEvidence, read: _Read) -> str | None:
    """Why this is machine or list mail that answers nothing, or None."""
    if evidence.list_header and not read.answers_something:
        return f"mail sent to a list ({evidence.list_header}), not an answer to a message"
    if evidence.automation is Automation.AUTOMATIC:
        return (
            f"an automatic message ({evidence.header}) that answers no message and does not "
            "read as an out-of-office"
        )
    return None


def _subject_request(read: _Read, split: SplitReply) -> str | None:
    """An unsubscribe request made in the subject ("unsubscribe", as a ``mailto:``
    ``List-Unsubscribe`` link sends it), with no more than a line of text."""
    if len(split.own) > 200:
        return None
    return request_phrase(own_subject(read.subject))


def _person(
    message: Message, read: _Read, body: str, reference: dt.date | None
) -> InboundClassification:
    """Classify a message that is neither a report nor a bounce."""
    split = split_reply(body)
    if read.from_address is None:
        return _result(
            read,
            InboundKind.UNMATCHED,
            "the message has no sender address (From), so it concerns nobody we can find",
            text=split.own,
        )
    evidence = header_evidence(message)
    why_auto = _auto_reply_evidence(evidence, read, split.own)
    if why_auto is not None:
        text = split.own or body
        returning = find_return_date(f"{read.subject}\n{text}", reference=reference)
        stated = f"back on {returning.isoformat()}" if returning else "no return date stated"
        return _result(
            read,
            InboundKind.AUTO_REPLY,
            f"an automatic reply, by {why_auto}; {stated}",
            return_date=returning,
            text=split.own,
        )
    why_unanswered = _automatic_unanswered(evidence, read)
    if why_unanswered is not None:
        return _result(read, InboundKind.UNMATCHED, why_unanswered, text=split.own)
    request = request_phrase(split.own) if split.own else None
    request = request or _subject_request(read, split)
    if request is not None:
        return _result(
            read,
            InboundKind.UNSUBSCRIBE,
            f"a reply that only asks to be taken off the list ({request!r})",
            text=split.own,
        )
    if read.answers_something:
        answered = read.in_reply_to[0] if read.in_reply_to else read.references[-1]
        reason = f"a reply from {read.from_address} to {answered}"
    else:
        reason = (
            f"a message from {read.from_address} with no thread headers; match it by the "
            "sender's address"
        )
    if not split.own:
        reason += " (it has no text of its own)"
    return _result(read, InboundKind.REPLY, reason, text=split.own)


def _classify(raw: bytes, received_on: dt.date | None, max_bytes: int) -> InboundClassification:
    if len(raw) > max_bytes:
        return InboundClassification(
            kind=InboundKind.UNMATCHED,
            reason=f"the message is {len(raw):,} bytes, over the {max_bytes:,}-byte cap; "
            "it was not read",
            message_id=_hash_id(raw),
        )
    if not raw.strip():
        return InboundClassification(
            kind=InboundKind.UNMATCHED, reason="the message is empty", message_id=_hash_id(raw)
        )
    try:
        message = parse(raw)
    except Unreadable as exc:
        return InboundClassification(
            kind=InboundKind.UNMATCHED,
            reason=f"the message cannot be read: {exc}",
            message_id=_hash_id(raw),
        )
    if not any(True for _ in message.raw_items()):
        return InboundClassification(
            kind=InboundKind.UNMATCHED,
            reason="the message has no header fields; it is not an RFC 5322 message",
            message_id=_hash_id(raw),
        )
    read = _read(message, raw)
    reference = received_on or (read.sent_at.date() if read.sent_at else None)
    body = body_text(message)
    return _reports(message, read, body) or _person(message, read, body, reference)


def classify_message(
    raw: bytes,
    *,
    received_on: dt.date | None = None,
    max_bytes: int = MAX_MESSAGE_BYTES,
) -> InboundClassification:
    """Decide what one raw inbound email is and what identifies whom it concerns.

    Pure: no I/O, no clock. Bad input never raises: a message that is empty, over
    ``max_bytes`` (checked before parsing), without headers or without a sender, malformed
    beyond use, a read receipt or a delivery *success* notice is ``UNMATCHED`` with a reason.
    See ``docs/inbound.md`` for every rule.

    Args:
        raw: the message as received (RFC 5322 bytes, as IMAP ``RFC822`` or an ``.eml`` file).
        received_on: the day the message arrived, to resolve a return date written without a
            year (the next such day on or after it). None: the day of its ``Date`` header.
        max_bytes: the size cap; a larger message is not parsed.

    Raises:
        TypeError: ``raw`` is not bytes.
        InvalidInput: ``received_on`` is not a date (a datetime is refused: its day depends on
            a timezone) or ``max_bytes`` is not a positive integer.
    """
    if not isinstance(raw, bytes | bytearray | memoryview):
        raise TypeError(f"classify_message: raw must be bytes, not {type(raw).__name__}")
    if received_on is not None and (
        not isinstance(received_on, dt.date) or isinstance(received_on, dt.datetime)
    ):
        raise InvalidInput(
            f"classify_message: received_on must be a date or None, not "
            f"{type(received_on).__name__}"
        )
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 1:
        raise InvalidInput(
            f"classify_message: max_bytes must be a positive integer, not {max_bytes!r}"
        )
    data = bytes(raw)
    try:
        return _classify(data, received_on, max_bytes)
    except Exception as exc:  # a bug must not stop a mailbox; the property tests hunt for it
        return InboundClassification(
            kind=InboundKind.UNMATCHED,
            reason=f"{_INTERNAL_ERROR} while classifying ({type(exc).__name__}); please report it",
            message_id=_hash_id(data),
        )
