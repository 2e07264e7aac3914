"""Implementations of the ports that ship with the library.

Everything here needs only the standard library. The PostgreSQL adapter needs the ``postgres``
extra and is imported from :mod:`starlight_sequences.adapters.postgres` directly.
"""

from __future__ import annotations

from starlight_sequences.adapters.clock import SettableClock, SystemClock
from starlight_sequences.adapters.imap import IMAPInbox, IMAPSecurity
from starlight_sequences.adapters.linkedin_tasks import (
    InMemoryLinkedInTaskQueue,
    LinkedInTask,
    LinkedInTaskFile,
    LinkedInTaskQueue,
    LinkedInTaskSender,
    TaskStatus,
)
from starlight_sequences.adapters.memory import (
    InMemoryCreditLedger,
    InMemoryStorage,
    RecordingEmailSender,
    RecordingLinkedInSender,
)
from starlight_sequences.adapters.openai_drafter import OpenAICompatibleDrafter
from starlight_sequences.adapters.outbox import OutboxEmailSender
from starlight_sequences.adapters.smtp import SMTPEmailSender, SMTPSecurity
from starlight_sequences.adapters.sqlite import SQLiteCreditLedger, SQLiteStorage
from starlight_sequences.adapters.template_drafter import TemplateDrafter

__all__ = [
    "IMAPInbox",
    "IMAPSecurity",
    "InMemoryCreditLedger",
    "InMemoryLinkedInTaskQueue",
    "InMemoryStorage",
    "LinkedInTask",
    "LinkedInTaskFile",
    "LinkedInTaskQueue",
    "LinkedInTaskSender",
    "OpenAICompatibleDrafter",
    "OutboxEmailSender",
    "RecordingEmailSender",
    "RecordingLinkedInSender",
    "SMTPEmailSender",
    "SMTPSecurity",
    "SQLiteCreditLedger",
    "SQLiteStorage",
    "SettableClock",
    "SystemClock",
    "TaskStatus",
    "TemplateDrafter",
]
