"""The host's own email sender: an ``EmailSender`` that posts each email to an ESP's HTTP API.

This is the adapter a host writes for its email service provider (SendGrid, Postmark,
Mailgun, SES...). The library calls :meth:`ESPEmailSender.send_email` from the dispatcher's
thread with an :class:`~starlight_sequences.ports.senders.OutgoingEmail`; the sender turns it
into one HTTP request and the provider's answer into a receipt or a failure, as the port's
contract asks (``docs/ports.md``):

- **Never twice.** The idempotency key goes to the provider as its ``Idempotency-Key`` header,
  and the ``Message-ID`` is derived from the key, so a retry after a crash names the same
  message and the provider drops the copy.
- **The receipt is the Message-ID.** Replies quote it in ``In-Reply-To``/``References``;
  ``ingest_email`` matches them to the send by it. Follow-ups carry the thread headers the
  library hands over.
- **Failures, not exceptions.** A refused recipient is a permanent failure (the lead's
  remaining steps stop); a rate limit, a server error or a network fault is transient (retried
  with backoff inside business hours), with the provider's ``Retry-After`` when it gives one.

The HTTP client is ``httpx.Client``; its transport is injectable, so tests (and a staging
host) pass ``httpx.MockTransport`` and read what would have been posted.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import threading
from collections import OrderedDict

import httpx

from starlight_sequences.ports.senders import OutgoingEmail, SendFailure, SendReceipt

__all__ = ["ESPEmailSender", "message_id_for"]

_DOMAIN = re.compile(r"^[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*$")
# What the ESP says when it will not take a recipient at all: retrying cannot help.
_PERMANENT = frozenset({400, 404, 410, 422})
# Receipts remembered for a repeat in this process; beyond them the provider's idempotency key
# (and the Message-ID derived from the key) keeps a repeat from becoming a second email.
_REMEMBERED = 10_000


def message_id_for(idempotency_key: str, from_address: str) -> str:
    """The ``Message-ID`` of the email sent with ``idempotency_key``: the same for every
    attempt, ``<sha256-prefix@domain of the From address>``."""
    left = hashlib.sha256(idempotency_key.encode("utf-8")).hexdigest()[:40]
    domain = from_address.rpartition("@")[2].lower()
    return f"<{left}@{domain if _DOMAIN.fullmatch(domain) else 'localhost'}>"


class ESPEmailSender:
    """Sends each email with one ``POST {base_url}/v1/messages`` to an ESP's HTTP API.

    Safe to call from several threads (``httpx.Client`` is; the receipts seen are kept under a
    lock). Close it with :meth:`close` when the app stops.

    Args:
        base_url: the provider's API root, e.g. ``https://api.esp.example``.
        api_key: the provider's key (from the environment; never logged).
        transport: an ``httpx`` transport; None for real network I/O.
        timeout: seconds for connecting and for the answer; keep it under the worker's lease.
    """

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 30.0,
    ) -> None:
        self._client = httpx.Client(
            base_url=base_url,
            headers={"Authorization": f"Bearer {api_key}"},
            transport=transport,
            timeout=timeout,
        )
        self._lock = threading.Lock()
        self._receipts: OrderedDict[str, SendReceipt] = OrderedDict()

    def close(self) -> None:
        """Close the HTTP connections."""
        self._client.close()

    def send_email(self, message: OutgoingEmail) -> SendReceipt | SendFailure:
        """Post ``message`` once; a key this object sent recently returns its first receipt."""
        with self._lock:
            known = self._receipts.get(message.idempotency_key)
        if known is not None:
            return known
        message_id = message_id_for(message.idempotency_key, message.from_address)
        try:
            response = self._client.post(
                "/v1/messages",
                json=_payload(message, message_id),
                headers={"Idempotency-Key": message.idempotency_key},
            )
        except httpx.HTTPError as exc:  # timeouts, refused connections, TLS errors
            return SendFailure(permanent=False, reason=f"ESP unreachable: {type(exc).__name__}")
        if response.is_success:
            receipt = SendReceipt(message_id=message_id)
            with self._lock:
                self._receipts[message.idempotency_key] = receipt
                if len(self._receipts) > _REMEMBERED:
                    self._receipts.popitem(last=False)
            return receipt
        return _failure(response)


def _payload(message: OutgoingEmail, message_id: str) -> dict[str, object]:
    headers = {"Message-ID": message_id}
    if message.in_reply_to:
        headers["In-Reply-To"] = message.in_reply_to
    if message.references:
        headers["References"] = " ".join(message.references)
    if message.unsubscribe:
        # RFC 8058 one-click unsubscribe: the link is the library's signed URL.
        headers["List-Unsubscribe"] = f"<{message.unsubscribe}>"
        headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    return {
        "from": {"email": message.from_address, "name": message.from_name},
        "to": [{"email": message.to_address, "name": message.to_name}],
        "subject": message.subject,
        "text": message.body,
        "headers": headers,
        "metadata": {
            "campaign_id": message.campaign_id,
            "lead_id": message.lead_id,
            "step": message.step,
        },
    }


def _failure(response: httpx.Response) -> SendFailure:
    detail = response.text[:200].replace("\n", " ")
    reason = f"ESP answered {response.status_code}: {detail}"
    if response.status_code in _PERMANENT:
        return SendFailure(permanent=True, reason=reason)
    return SendFailure(permanent=False, reason=reason, retry_after=_retry_after(response))


def _retry_after(response: httpx.Response) -> dt.timedelta | None:
    value = response.headers.get("Retry-After", "")
    if value.isdigit():
        return dt.timedelta(seconds=min(int(value), 86_400))
    return None
