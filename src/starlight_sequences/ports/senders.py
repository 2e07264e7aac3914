"""The sending ports: email and LinkedIn."""

from __future__ import annotations

import datetime as dt
from typing import Protocol

import attrs

from starlight_sequences.channels import Action
from starlight_sequences.ids import CampaignId, LeadId, SenderId, WorkspaceId

__all__ = [
    "EmailSender",
    "LinkedInAction",
    "LinkedInSender",
    "OutgoingEmail",
    "SendFailure",
    "SendReceipt",
]


@attrs.frozen(kw_only=True)
class OutgoingEmail:
    """An email to send.

    Attributes:
        idempotency_key: the same for every attempt of the same (campaign, lead, step);
            a sender that sees a key again must not deliver twice.
        sender_id: the mailbox identity.
        from_address, from_name: the From header.
        to_address, to_name: the recipient.
        subject, body: the approved draft (plain text).
        campaign_id, lead_id, step: what it belongs to.
        unsubscribe: a URL or ``mailto:`` for ``List-Unsubscribe`` ("" for none).
        workspace_id: the workspace it is sent for (None when built by hand).
        in_reply_to: the Message-ID this email follows up ("" when it starts a thread).
        references: the Message-IDs of the thread so far, oldest first (empty when it starts
            one). A sender writes both as the ``In-Reply-To`` and ``References`` headers.
    """

    idempotency_key: str
    sender_id: SenderId
    from_address: str
    from_name: str
    to_address: str
    to_name: str
    subject: str
    body: str
    campaign_id: CampaignId
    lead_id: LeadId
    step: int
    unsubscribe: str = ""
    workspace_id: WorkspaceId | None = None
    in_reply_to: str = ""
    references: tuple[str, ...] = ()


@attrs.frozen(kw_only=True)
class LinkedInAction:
    """A LinkedIn action to perform.

    Attributes:
        idempotency_key: as for :class:`OutgoingEmail`.
        sender_id: the LinkedIn account.
        action: ``linkedin_connect`` or ``linkedin_message``.
        profile_url: the recipient's canonical profile URL.
        recipient_name: for people doing the task.
        text: the connection note (None: a request without note) or the message.
        campaign_id, lead_id, step: what it belongs to.
        workspace_id: the workspace it is performed for (None when built by hand).
    """

    idempotency_key: str
    sender_id: SenderId
    action: Action
    profile_url: str
    recipient_name: str
    text: str | None
    campaign_id: CampaignId
    lead_id: LeadId
    step: int
    workspace_id: WorkspaceId | None = None


@attrs.frozen(kw_only=True)
class SendReceipt:
    """The sender accepted the message. ``message_id`` identifies it at the provider."""

    message_id: str


@attrs.frozen(kw_only=True)
class SendFailure:
    """The sender did not send.

    Attributes:
        permanent: True for failures a retry cannot fix (bounce, invalid recipient, account
            restricted): the lead's remaining steps stop with ``reason``. False for transient
            ones (timeouts, 4xx, rate limits): retried with backoff inside business hours.
        reason: a sentence for people.
        retry_after: the provider's hint for transient failures (None: our backoff).
    """

    permanent: bool
    reason: str
    retry_after: dt.timedelta | None = None


class EmailSender(Protocol):
    """Sends emails. Implementations: SMTP, outbox folder, recording (tests)."""

    def send_email(self, message: OutgoingEmail) -> SendReceipt | SendFailure:
        """Send ``message`` once.

        Called again with the same ``idempotency_key`` (a retry after a crash), the sender
        must not deliver a second copy: return the first receipt, or use the key as the
        provider's idempotency key / ``Message-ID``. Return a failure rather than raising for
        anything about this message; raise only when the sender cannot work at all.
        """
        ...


class LinkedInSender(Protocol):
    """Performs LinkedIn actions. Implementations: task queue, recording (tests)."""

    def send_linkedin(self, action: LinkedInAction) -> SendReceipt | SendFailure:
        """Perform ``action`` once; idempotent by ``idempotency_key`` as for email."""
        ...
