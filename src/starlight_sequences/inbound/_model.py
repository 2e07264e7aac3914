"""What the inbound classifier decides: the kinds of message and the value it returns."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Final

import attrs

from starlight_sequences.events import EventKind

MAX_MESSAGE_BYTES: Final = 10 * 1024 * 1024
"""The default size cap: a larger message is unmatched before it is parsed (10 MiB)."""

MAX_MIME_DEPTH: Final = 20
"""How deep the classifier walks nested MIME parts; anything deeper is not looked at."""


class InboundKind(enum.StrEnum):
    """What an inbound message is, as far as a campaign is concerned."""

    REPLY = "reply"
    """A person wrote: stops the contact's remaining steps."""
    AUTO_REPLY = "auto_reply"
    """An out-of-office or other automatic answer: pauses the contact (until ``return_date``)."""
    BOUNCE_HARD = "bounce_hard"
    """Delivery failed for good (a 5.x.x status): stops the contact and suppresses it."""
    BOUNCE_SOFT = "bounce_soft"
    """Delivery failed for now or is delayed (a 4.x.x status): noted, nothing changes."""
    UNSUBSCRIBE = "unsubscribe"
    """A reply that only asks to be taken off the list: stops and suppresses the contact."""
    UNMATCHED = "unmatched"
    """Nothing a campaign can act on; ``reason`` says why."""

    @property
    def event_kind(self) -> EventKind | None:
        """The :class:`~starlight_sequences.EventKind` to report, or None (soft bounce,
        unmatched: nothing to report)."""
        return _EVENT_KINDS.get(self)


_EVENT_KINDS: Final = {
    InboundKind.REPLY: EventKind.REPLY,
    InboundKind.AUTO_REPLY: EventKind.OUT_OF_OFFICE,
    InboundKind.BOUNCE_HARD: EventKind.BOUNCE,
    InboundKind.UNSUBSCRIBE: EventKind.UNSUBSCRIBE,
}


@attrs.frozen(kw_only=True)
class InboundClassification:
    """What one raw inbound message is, and what identifies whom it concerns.

    Every text field is clean Unicode (no lone surrogates, no control characters in the one-line
    fields). Message-IDs are normalised by :func:`normalise_message_id`: ``<left@domain>`` with
    the domain lower-cased, so they compare equal to the ids the SMTP and outbox senders store.

    Attributes:
        kind: what the message is.
        reason: one sentence saying why; for ``UNMATCHED``, why nothing can be done.
        message_id: the message's own ``Message-ID``, or ``sha256:<hex>`` of the raw bytes when
            it has none: the key that makes ingesting the same message twice change nothing.
        in_reply_to: the ids in ``In-Reply-To`` (usually one).
        references: the ids in ``References``, oldest first, as the header lists them.
        from_address: the sender's address, lower-case with an ASCII (IDNA) domain; None when
            the message has no usable ``From``.
        subject: the decoded ``Subject`` on one line ("" when absent).
        sent_at: the ``Date`` header as an aware datetime (``-0000`` is read as UTC); None when
            absent or unreadable.
        failed_recipients: for bounces, the addresses delivery failed (or was delayed) for,
            lower-case; the original recipient before the final one when a DSN names both.
        original_message_ids: for bounces, the ``Message-ID`` of the message that bounced, as
            found in the returned message, its returned headers or its headers quoted in the
            text.
        status_code: for bounces, the RFC 3463 status (``"5.1.1"``) when one is stated.
        diagnostic: for bounces, what the remote server said (``Diagnostic-Code`` or the
            equivalent line of a plain-text bounce), at most 500 characters; else "".
        return_date: for auto-replies, the date the text says the person is back; None when it
            states none (the campaign's default pause applies).
        text: the message's own text: quoted history and signature removed, HTML turned into
            text. Left out of ``repr``.
    """

    kind: InboundKind
    reason: str
    message_id: str
    in_reply_to: tuple[str, ...] = ()
    references: tuple[str, ...] = ()
    from_address: str | None = None
    subject: str = ""
    sent_at: dt.datetime | None = None
    failed_recipients: tuple[str, ...] = ()
    original_message_ids: tuple[str, ...] = ()
    status_code: str | None = None
    diagnostic: str = ""
    return_date: dt.date | None = None
    text: str = attrs.field(default="", repr=False)

    @property
    def related_message_ids(self) -> tuple[str, ...]:
        """The ids to look the sends up by, in the order to try them, without repeats.

        ``In-Reply-To`` first, then ``References`` newest first, then (for bounces) the ids of
        the original message.
        """
        ordered = (*self.in_reply_to, *reversed(self.references), *self.original_message_ids)
        return tuple(dict.fromkeys(ordered))
