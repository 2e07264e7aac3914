"""Inbound mail classification (pure): replies, out-of-office answers, bounces, unsubscribes.

``classify_message`` reads one raw RFC 5322 message and returns an
:class:`InboundClassification`: what it is (:class:`InboundKind`), why, and the ids and
addresses that tell whom it concerns. No I/O and no clock: the day a message arrived comes in
as an argument. Bad input never raises; it is ``UNMATCHED`` with a reason. See
``docs/inbound.md``.
"""

from __future__ import annotations

from starlight_sequences.inbound._classify import classify_message
from starlight_sequences.inbound._headers import normalise_address, normalise_message_id
from starlight_sequences.inbound._html import html_to_text
from starlight_sequences.inbound._model import (
    MAX_MESSAGE_BYTES,
    MAX_MIME_DEPTH,
    InboundClassification,
    InboundKind,
)
from starlight_sequences.inbound._quotes import reply_text, strip_quoted_text

__all__ = [
    "MAX_MESSAGE_BYTES",
    "MAX_MIME_DEPTH",
    "InboundClassification",
    "InboundKind",
    "classify_message",
    "html_to_text",
    "normalise_address",
    "normalise_message_id",
    "reply_text",
    "strip_quoted_text",
]
