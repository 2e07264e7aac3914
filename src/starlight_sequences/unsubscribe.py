"""One-click unsubscribe: signed links a host's endpoint can verify (pure; no I/O).

Bulk senders must offer one-click unsubscribe (RFC 8058; the Gmail and Yahoo sender rules).
Every email the service sends carries ``List-Unsubscribe`` with the target that the service's
``unsubscribe_url`` builds for it, and — for an https target —
``List-Unsubscribe-Post: List-Unsubscribe=One-Click``. :class:`UnsubscribeLinks` builds that
target: the host's https endpoint with a token that names the workspace, campaign and lead,
signed with HMAC-SHA256 under a secret only the host knows. The endpoint verifies the token
(:meth:`UnsubscribeLinks.verify`) and reports the unsubscribe
(:meth:`UnsubscribeLinks.event` gives the ``InboundEvent``)::

    links = UnsubscribeLinks(base_url="https://app.example.com/unsubscribe", secret=SECRET)
    service = CampaignService(..., unsubscribe_url=links)

    # in the endpoint that receives GET or POST https://app.example.com/unsubscribe?t=...
    workspace_id, event = links.event(token, at=now)
    service.report_event(workspace_id, event)

A token cannot be forged or altered without the secret; it does not expire (a recipient may
unsubscribe from an old email), and reporting it twice changes nothing.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import re
import urllib.parse

import attrs

from starlight_sequences.campaigns import ScheduledSend
from starlight_sequences.errors import InvalidSettings, InvalidUnsubscribeToken
from starlight_sequences.events import EventKind, InboundEvent
from starlight_sequences.ids import CampaignId, LeadId, WorkspaceId

__all__ = [
    "MIN_SECRET_BYTES",
    "UnsubscribeLinks",
    "UnsubscribeRequest",
    "check_unsubscribe_target",
]

MIN_SECRET_BYTES = 16
"""The shortest secret accepted (128 bits)."""

_MAX_TARGET = 2000
_CONTEXT = b"starlight-unsubscribe-v1\x00"
_SEPARATOR = "\x1f"
_MAILTO = re.compile(r"mailto:[^\s<>\"@]+@[^\s<>\"@]+", re.IGNORECASE)


def check_unsubscribe_target(target: str, *, subject: str = "unsubscribe target") -> str:
    """``target`` if it can go in a ``List-Unsubscribe`` header: an https URL with a host, or
    a ``mailto:`` address; at most 2,000 characters, no spaces, angle brackets or control
    characters.

    Raises:
        InvalidSettings: names ``subject`` and what is wrong.
    """
    if not isinstance(target, str) or not target:
        raise InvalidSettings(f"{subject}: must be an https URL or a mailto: address")
    if len(target) > _MAX_TARGET:
        raise InvalidSettings(f"{subject}: longer than {_MAX_TARGET} characters")
    if any(c.isspace() or c in '<>"' or ord(c) < 32 or ord(c) == 127 for c in target):
        raise InvalidSettings(
            f"{subject}: {target[:80]!r} holds a space, quote, angle bracket or control character"
        )
    if target.lower().startswith("mailto:"):
        if not _MAILTO.fullmatch(target):
            raise InvalidSettings(f"{subject}: {target[:80]!r} is not a mailto: address")
        return target
    parts = urllib.parse.urlsplit(target)
    if parts.scheme.lower() != "https" or not parts.hostname:
        raise InvalidSettings(
            f"{subject}: {target[:80]!r} is neither an https URL nor a mailto: address "
            "(one-click unsubscribe needs https)"
        )
    return target


@attrs.frozen(kw_only=True)
class UnsubscribeRequest:
    """Whom a verified unsubscribe token names."""

    workspace_id: WorkspaceId
    campaign_id: CampaignId
    lead_id: LeadId


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _check_secret(secret: bytes) -> bytes:
    if not isinstance(secret, bytes) or len(secret) < MIN_SECRET_BYTES:
        raise InvalidSettings(
            f"UnsubscribeLinks.secret: must be at least {MIN_SECRET_BYTES} random bytes "
            "(e.g. secrets.token_bytes(32))"
        )
    return secret


@attrs.frozen(kw_only=True, repr=False)
class UnsubscribeLinks:
    """Builds a signed one-click unsubscribe URL per send, and verifies it.

    Pass an instance as ``CampaignService(unsubscribe_url=...)``: it is called with each email
    send and returns ``<base_url>?<parameter>=<token>``.

    Attributes:
        base_url: the host's https endpoint (it may carry a query of its own).
        secret: the HMAC key, at least 16 bytes; keep it out of source control. Rotating it
            invalidates the links of emails already sent.
        parameter: the query parameter that carries the token.
    """

    base_url: str = attrs.field()
    secret: bytes = attrs.field(converter=_check_secret)
    parameter: str = "t"

    @base_url.validator
    def _check_base(self, attribute: attrs.Attribute[str], value: str) -> None:
        check_unsubscribe_target(value, subject="UnsubscribeLinks.base_url")
        if value.lower().startswith("mailto:"):
            raise InvalidSettings("UnsubscribeLinks.base_url: must be an https URL")

    def __repr__(self) -> str:  # never show the secret
        return f"UnsubscribeLinks(base_url={self.base_url!r}, secret=<{len(self.secret)} bytes>)"

    def token(self, workspace_id: str, campaign_id: str, lead_id: str) -> str:
        """The signed token naming one lead of one campaign.

        Raises:
            InvalidSettings: an id is empty or holds the control character U+001F.
        """
        for name, value in (
            ("workspace", workspace_id),
            ("campaign", campaign_id),
            ("lead", lead_id),
        ):
            if not value or _SEPARATOR in value:
                raise InvalidSettings(
                    f"unsubscribe token: the {name} id {value!r} cannot be signed"
                )
        payload = _SEPARATOR.join((workspace_id, campaign_id, lead_id)).encode("utf-8")
        mac = hmac.new(self.secret, _CONTEXT + payload, hashlib.sha256).digest()
        return f"{_b64(payload)}.{_b64(mac)}"

    def __call__(self, send: ScheduledSend) -> str:
        """The unsubscribe URL of one email send."""
        token = self.token(send.workspace_id, send.campaign_id, send.lead_id)
        joiner = "&" if urllib.parse.urlsplit(self.base_url).query else "?"
        return f"{self.base_url}{joiner}{self.parameter}={token}"

    def verify(self, token: str) -> UnsubscribeRequest:
        """Whom a token names, if this secret signed it.

        Raises:
            InvalidUnsubscribeToken: malformed, altered, or signed with another secret.
        """
        if not isinstance(token, str) or token.count(".") != 1 or len(token) > 4096:
            raise InvalidUnsubscribeToken("unsubscribe token: malformed")
        encoded, signature = token.split(".")
        try:
            payload, mac = _unb64(encoded), _unb64(signature)
        except (binascii.Error, ValueError):
            raise InvalidUnsubscribeToken("unsubscribe token: malformed") from None
        expected = hmac.new(self.secret, _CONTEXT + payload, hashlib.sha256).digest()
        if not hmac.compare_digest(mac, expected):
            raise InvalidUnsubscribeToken("unsubscribe token: the signature does not match")
        parts = payload.decode("utf-8", errors="replace").split(_SEPARATOR)
        if len(parts) != 3 or not all(parts):
            raise InvalidUnsubscribeToken("unsubscribe token: malformed")
        return UnsubscribeRequest(
            workspace_id=WorkspaceId(parts[0]),
            campaign_id=CampaignId(parts[1]),
            lead_id=LeadId(parts[2]),
        )

    def event(self, token: str, *, at: dt.datetime) -> tuple[WorkspaceId, InboundEvent]:
        """The workspace and the unsubscribe event a verified token reports (keyed by the
        token, so a second click changes nothing).

        Raises:
            InvalidUnsubscribeToken: as :meth:`verify`.
        """
        request = self.verify(token)
        return request.workspace_id, InboundEvent(
            kind=EventKind.UNSUBSCRIBE,
            lead_id=request.lead_id,
            campaign_id=request.campaign_id,
            at=at,
            key=f"unsubscribe-link:{token.split('.')[1]}",
            detail="one-click unsubscribe link",
        )
