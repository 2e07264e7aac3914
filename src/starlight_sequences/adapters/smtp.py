"""Email over SMTP (standard library), and the RFC 5322 message every email adapter writes.

:func:`compose_email` turns an :class:`~starlight_sequences.ports.OutgoingEmail` into an
:class:`email.message.EmailMessage`: ``Message-ID`` derived from the idempotency key,
``List-Unsubscribe`` (and one-click ``List-Unsubscribe-Post`` for https URLs), and no way for
any field to add or break a header. :class:`SMTPEmailSender` delivers it and maps what the
server says onto the port's outcomes.
"""

from __future__ import annotations

import email.policy
import email.utils
import enum
import hashlib
import re
import smtplib
import ssl
import threading
from email.headerregistry import Address
from email.message import EmailMessage
from typing import Final

from starlight_sequences.errors import AdapterError, InvalidInput
from starlight_sequences.ports.clock import Clock
from starlight_sequences.ports.senders import OutgoingEmail, SendFailure, SendReceipt

__all__ = [
    "SMTPEmailSender",
    "SMTPSecurity",
    "compose_email",
    "message_id_for",
]

_DOT_ATOM: Final = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
)
_MESSAGE_ID_LEFT_MAX: Final = 64
# One address, nothing else: no quoting, comments, lists or routes (the lead module accepts no
# more than this either); non-ASCII local parts go out with SMTPUTF8.
_LOCAL_PART: Final = re.compile(r"[^\s@\"(),:;<>\[\]\\.][^\s@\"(),:;<>\[\]\\]*(?<!\.)")
_DOMAIN: Final = re.compile(
    r"(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z0-9-]{2,63}"
)
# Characters that end or fold a header line somewhere along the way (the email package, an MTA
# or a mail client): CR, LF and every other control character, and Unicode line separators.
_HEADER_BREAKERS: Final = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]")
_UNSUBSCRIBE: Final = re.compile(r"(https?://|mailto:)[^\s<>]+", re.IGNORECASE)
_EXPECTED_HEADERS: Final = (
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    "MIME-Version",
    "Content-Type",
    "Content-Transfer-Encoding",
)


def _unsendable(key: str, field: str, reason: str) -> InvalidInput:
    return InvalidInput(f"email {key!r}: {field}: {reason}")


class SMTPSecurity(enum.StrEnum):
    """How the connection to the SMTP server is protected."""

    PLAIN = "plain"
    """No TLS (a local relay only)."""
    STARTTLS = "starttls"
    """Connect in plain text, then upgrade with STARTTLS (usually port 587)."""
    SSL = "ssl"
    """TLS from the first byte ("SMTPS", usually port 465)."""


_DEFAULT_PORTS: Final = {SMTPSecurity.PLAIN: 25, SMTPSecurity.STARTTLS: 587, SMTPSecurity.SSL: 465}


def _ascii_domain(domain: str) -> str:
    if domain.isascii():
        return domain.lower()
    try:
        return domain.encode("idna").decode("ascii")
    except UnicodeError:
        return hashlib.sha256(domain.encode()).hexdigest()[:16] + ".invalid"


def message_id_for(idempotency_key: str, from_address: str) -> str:
    """The ``Message-ID`` of the email sent with that key: ``<key@domain of the From address>``.

    A key that is not a valid left part (characters outside RFC 5322 ``dot-atom-text``, or
    longer than 64 characters) is replaced by its SHA-256 hex digest, so the id stays valid and
    still the same for every attempt.
    """
    left = idempotency_key
    if not _DOT_ATOM.fullmatch(left) or len(left) > _MESSAGE_ID_LEFT_MAX:
        left = hashlib.sha256(idempotency_key.encode()).hexdigest()[:40]
    domain = from_address.rpartition("@")[2] or "localhost"
    domain = _ascii_domain(domain)
    if not _DOT_ATOM.fullmatch(domain):
        domain = "localhost"
    return f"<{left}@{domain}>"


def _check_header_fields(message: OutgoingEmail) -> None:
    for field in (
        "idempotency_key",
        "from_address",
        "from_name",
        "to_address",
        "to_name",
        "subject",
        "unsubscribe",
    ):
        value: str = getattr(message, field)
        found = _HEADER_BREAKERS.search(value)
        if found:
            raise _unsendable(
                message.idempotency_key,
                field,
                f"contains {found.group()!r}; header fields must be one line without control "
                "characters",
            )
    if message.unsubscribe and not _UNSUBSCRIBE.fullmatch(message.unsubscribe):
        raise _unsendable(
            message.idempotency_key,
            "unsubscribe",
            f"{message.unsubscribe!r} is not an http(s) URL or mailto: address",
        )


def _address(message: OutgoingEmail, field: str, name: str, address: str) -> Address:
    username, at, domain = address.rpartition("@")
    ascii_domain = _ascii_domain(domain)
    if (
        not at
        or not _LOCAL_PART.fullmatch(username)
        or ".." in username
        or not _DOMAIN.fullmatch(ascii_domain)
    ):
        raise _unsendable(
            message.idempotency_key, field, f"{address!r} is not exactly one plain address"
        )
    try:
        return Address(display_name=name, username=username, domain=ascii_domain)
    except (ValueError, TypeError) as exc:
        raise _unsendable(message.idempotency_key, field, str(exc)) from None


def compose_email(message: OutgoingEmail, *, date: str | None = None) -> EmailMessage:
    """The RFC 5322 message for ``message`` (plain-text UTF-8 body).

    Headers: From, To, Subject, Date, ``Message-ID`` (:func:`message_id_for`),
    ``List-Unsubscribe`` when ``message.unsubscribe`` is set, and
    ``List-Unsubscribe-Post: List-Unsubscribe=One-Click`` when that is an https URL (RFC 8058).
    After composing, the serialised message is parsed back and must hold exactly these headers:
    nothing a field contains can add one.

    Args:
        message: what to send.
        date: the ``Date`` header value (RFC 5322 form); None: now.

    Raises:
        InvalidInput: naming the field, when a header field holds a line break or a control
            character, an address cannot be used, or the unsubscribe value is not an http(s)
            or mailto: URL.
    """
    _check_header_fields(message)
    composed = EmailMessage(policy=email.policy.SMTP)
    composed["From"] = _address(message, "from_address", message.from_name, message.from_address)
    composed["To"] = _address(message, "to_address", message.to_name, message.to_address)
    composed["Subject"] = message.subject
    composed["Date"] = date if date is not None else email.utils.formatdate(usegmt=True)
    composed["Message-ID"] = message_id_for(message.idempotency_key, message.from_address)
    if message.unsubscribe:
        composed["List-Unsubscribe"] = f"<{message.unsubscribe}>"
        if message.unsubscribe.lower().startswith("https://"):
            composed["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    composed.set_content(message.body)
    _check_round_trip(message, composed)
    return composed


def _check_round_trip(message: OutgoingEmail, composed: EmailMessage) -> None:
    """Belt and braces: what goes on the wire parses back to the headers we set, no more."""
    try:
        wire = composed.as_bytes(policy=email.policy.SMTPUTF8)
    except (ValueError, TypeError, UnicodeError) as exc:
        raise _unsendable(message.idempotency_key, "headers", str(exc)) from None
    parsed = email.message_from_bytes(wire, policy=email.policy.default)
    names = [name for name in parsed if name]
    if any(name not in _EXPECTED_HEADERS for name in names) or len(names) != len(set(names)):
        raise _unsendable(
            message.idempotency_key, "headers", f"the composed message has headers {names}"
        )


def _said(text: bytes | str) -> str:
    return text.decode("utf-8", "replace") if isinstance(text, bytes) else text


def _failure(code: int, text: bytes | str, what: str) -> SendFailure:
    said = _said(text)
    reason = f"{what}: {code} {said}".strip()
    return SendFailure(permanent=code >= 500, reason=reason)


class SMTPEmailSender:
    """Sends each email over one SMTP connection (opened per message, closed after).

    Idempotency: the ``Message-ID`` is derived from the idempotency key, so a retry after a
    crash carries the same id (receiving systems and our reply matching see one message); within
    one process a key already accepted by the server is not sent again and gets its first
    receipt. Outcomes:

    * accepted → :class:`SendReceipt` with the ``Message-ID``;
    * recipient, sender or data refused with a 5xx code, or a header field that holds a line
      break → ``SendFailure(permanent=True)``;
    * 4xx codes, a dropped or refused connection, timeouts → ``SendFailure(permanent=False)``;
    * rejected credentials, a server without STARTTLS when it is required, a certificate that
      does not verify, a From address the server refuses with 5xx → :class:`AdapterError`
      (the sender cannot work at all).

    Args:
        host: the SMTP server.
        port: its port; None: 25 (plain), 587 (starttls) or 465 (ssl).
        security: plain, starttls (default) or ssl.
        username, password: for AUTH; "" to skip authentication.
        timeout: seconds for connecting and for each command.
        ssl_context: for starttls and ssl; None: the system's default, which verifies the
            server's certificate.
        local_hostname: the name sent in EHLO; None: this machine's FQDN.
        clock: for the ``Date`` header; None: the system clock.
    """

    def __init__(
        self,
        *,
        host: str,
        port: int | None = None,
        security: SMTPSecurity | str = SMTPSecurity.STARTTLS,
        username: str = "",
        password: str = "",
        timeout: float = 30.0,
        ssl_context: ssl.SSLContext | None = None,
        local_hostname: str | None = None,
        clock: Clock | None = None,
    ) -> None:
        try:
            self._security = SMTPSecurity(security)
        except ValueError:
            raise AdapterError(
                f"SMTP sender: security {security!r} is not one of plain, starttls, ssl"
            ) from None
        if timeout <= 0:
            raise AdapterError(f"SMTP sender: timeout must be positive, not {timeout!r}")
        self._host = host
        self._port = port if port is not None else _DEFAULT_PORTS[self._security]
        self._username = username
        self._password = password
        self._timeout = timeout
        self._ssl_context = ssl_context
        self._local_hostname = local_hostname
        self._clock = clock
        self._lock = threading.Lock()
        self._sent: dict[str, SendReceipt] = {}

    def send_email(self, message: OutgoingEmail) -> SendReceipt | SendFailure:
        """Send ``message`` once (see the class docstring for the outcomes)."""
        with self._lock:
            earlier = self._sent.get(message.idempotency_key)
        if earlier is not None:
            return earlier
        date = None
        if self._clock is not None:
            date = email.utils.format_datetime(self._clock.now(), usegmt=True)
        try:
            composed = compose_email(message, date=date)
        except InvalidInput as exc:
            return SendFailure(permanent=True, reason=str(exc))
        result = self._deliver(composed, message)
        if isinstance(result, SendReceipt):
            with self._lock:
                result = self._sent.setdefault(message.idempotency_key, result)
        return result

    def _connect(self) -> smtplib.SMTP:
        context = self._ssl_context or ssl.create_default_context()
        if self._security is SMTPSecurity.SSL:
            return smtplib.SMTP_SSL(
                self._host,
                self._port,
                local_hostname=self._local_hostname,
                timeout=self._timeout,
                context=context,
            )
        client = smtplib.SMTP(
            self._host, self._port, local_hostname=self._local_hostname, timeout=self._timeout
        )
        try:
            if self._security is SMTPSecurity.STARTTLS:
                client.ehlo()
                if not client.has_extn("starttls"):
                    raise AdapterError(
                        f"SMTP server {self._host}:{self._port} does not offer STARTTLS; "
                        "use security='ssl' or (for a local relay only) 'plain'"
                    )
                client.starttls(context=context)
                client.ehlo()
        except BaseException:
            client.close()
            raise
        return client

    def _deliver(self, composed: EmailMessage, message: OutgoingEmail) -> SendReceipt | SendFailure:
        where = f"{self._host}:{self._port}"
        try:
            with self._connect() as client:
                if self._username:
                    client.login(self._username, self._password)
                client.send_message(composed)
        except smtplib.SMTPAuthenticationError as exc:
            raise AdapterError(
                f"SMTP server {where} rejected the credentials of {self._username!r}: "
                f"{exc.smtp_code} {_said(exc.smtp_error)}"
            ) from exc
        except smtplib.SMTPRecipientsRefused as exc:
            code, text = next(iter(exc.recipients.values()), (550, b"refused"))
            return _failure(code, text, f"recipient {message.to_address} refused")
        except smtplib.SMTPSenderRefused as exc:
            if exc.smtp_code >= 500:
                raise AdapterError(
                    f"SMTP server {where} refuses the sender {message.from_address}: "
                    f"{exc.smtp_code} {_said(exc.smtp_error)}"
                ) from exc
            return _failure(exc.smtp_code, exc.smtp_error, "sender refused for now")
        except smtplib.SMTPNotSupportedError as exc:
            # Raised by send_message for a non-ASCII address the server cannot carry.
            return SendFailure(
                permanent=True, reason=f"{where} cannot deliver to {message.to_address}: {exc}"
            )
        except smtplib.SMTPServerDisconnected as exc:
            return SendFailure(permanent=False, reason=f"{where} disconnected: {exc}")
        except smtplib.SMTPResponseException as exc:
            # SMTPDataError, SMTPConnectError, SMTPHeloError and plain response errors. A server
            # refusing to talk to us (connect/HELO) is never the recipient's fault: transient.
            if isinstance(exc, smtplib.SMTPConnectError | smtplib.SMTPHeloError):
                return SendFailure(
                    permanent=False,
                    reason=f"{where} refused the session: {exc.smtp_code} {_said(exc.smtp_error)}",
                )
            return _failure(exc.smtp_code, exc.smtp_error, f"{where} refused the message")
        except ssl.SSLCertVerificationError as exc:
            raise AdapterError(f"SMTP server {where}: certificate does not verify: {exc}") from exc
        except smtplib.SMTPException as exc:
            return SendFailure(permanent=False, reason=f"{where}: {exc}")
        except TimeoutError as exc:
            return SendFailure(permanent=False, reason=f"{where} timed out: {exc}")
        except OSError as exc:
            # Refused or reset connections, DNS failures, TLS errors on the wire.
            return SendFailure(permanent=False, reason=f"cannot reach {where}: {exc}")
        return SendReceipt(message_id=str(composed["Message-ID"]))
