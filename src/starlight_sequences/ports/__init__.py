"""Ports: the ``typing.Protocol`` interfaces the service talks to the world through.

Each docstring states the contract an implementation must keep. The shipped implementations
live in :mod:`starlight_sequences.adapters`.
"""

from __future__ import annotations

from starlight_sequences.ports.clock import Clock
from starlight_sequences.ports.credits import CreditLedger
from starlight_sequences.ports.drafter import (
    DraftedMessage,
    Drafter,
    DraftFailure,
    DraftRequest,
    EarlierTouch,
)
from starlight_sequences.ports.senders import (
    EmailSender,
    LinkedInAction,
    LinkedInSender,
    OutgoingEmail,
    SendFailure,
    SendReceipt,
)
from starlight_sequences.ports.storage import Changes, Storage

__all__ = [
    "Changes",
    "Clock",
    "CreditLedger",
    "DraftFailure",
    "DraftRequest",
    "DraftedMessage",
    "Drafter",
    "EarlierTouch",
    "EmailSender",
    "LinkedInAction",
    "LinkedInSender",
    "OutgoingEmail",
    "SendFailure",
    "SendReceipt",
    "Storage",
]
