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
import logging
import re
import smtplib
import ssl
import threading
from email.headerregistry import Address
from email.message import EmailMessage
from typing import TYPE_CHECKING, Final

import attrs

from starlight_sequences.errors import AdapterError, InvalidInput
from starlight_sequences.ports.clock import Clock
from starlight_sequences.ports.senders import OutgoingEmail, SendFailure, SendReceipt

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

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
_THREAD_ID: Final = re.compile(r"<[^<>\s@]{1,200}@[^<>\s@]{1,255}>")
"""A Message-ID as a follow-up names it: ``<left@domain>``, no spaces or brackets inside."""

_EXPECTED_HEADERS: Final = (
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "In-Reply-To",
    "References",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    "MIME-Version",
    "Content-Type",
    "Content-Transfer-Encoding",
)


log = logging.getLogger("starlight_sequences.adapters.smtp")


def _fields(message: OutgoingEmail) -> dict[str, object]:
    """The structured ``extra`` of a log line about one message (never its text or the
    password)."""
    return {
        "campaign_id": message.campaign_id,
        "lead_id": message.lead_id,
        "step": message.step,
        "idempotency_key": message.idempotency_key,
        "sender_id": message.sender_id,
    }


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


_CLOSING: Final = 421
"""The reply code of a server closing the transmission channel."""
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
    for field, ids in (("in_reply_to", (message.in_reply_to,)), ("references", message.references)):
        for value in ids:
            if value and not _THREAD_ID.fullmatch(value):
                raise _unsendable(
                    message.idempotency_key, field, f"{value[:80]!r} is not a <left@domain> id"
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
    ``In-Reply-To`` and ``References`` for a follow-up in a thread,
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
    if message.in_reply_to:
        composed["In-Reply-To"] = message.in_reply_to
    if message.references:
        composed["References"] = " ".join(message.references)
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
    # Only the header names matter here: the compat32 policy splits the header lines exactly
    # as the default one does, without building a structured object per value (a third of
    # the sender's CPU time per message).
    parsed = email.message_from_bytes(wire, policy=email.policy.compat32)
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


class _Client(smtplib.SMTP):
    """``smtplib.SMTP`` that notes when the message data began.

    A connection lost before that point delivered nothing; lost after it (the data sent, no
    reply read), the server may have accepted the message.
    """

    data_begun = False

    def data(self, msg: ReadableBuffer | str) -> tuple[int, bytes]:
        self.data_begun = True
        return super().data(msg)


class _SSLClient(_Client, smtplib.SMTP_SSL):
    """``smtplib.SMTP_SSL`` that notes when the message data began (see :class:`_Client`)."""


class _Mailbox:
    """One sender identity's connection, and the lock its sends take turns on."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.client: _Client | None = None


@attrs.frozen
class _Outcome:
    """What one attempt came to, and whether a new connection may try the message again."""

    result: SendReceipt | SendFailure
    retry_on_new_connection: bool = False


class SMTPEmailSender:
    """Sends email over SMTP, keeping one open connection per mailbox.

    **Connections.** Each mailbox (``OutgoingEmail.sender_id``) gets its own connection, opened
    (and logged in) on its first message and kept for the next ones. Sends of one mailbox take
    turns on its lock; sends of different mailboxes go out in parallel from several threads.
    The SSL context is built once, when the sender is made. A kept connection that turns out
    to be gone when the next message uses it (the server closed it, answered ``421``, the
    socket broke or timed out) before the message data was sent is replaced by one new
    connection and the message tried once more on it; a failure on a new connection, or after
    the data was sent (the server may have accepted it), is reported as a transient failure,
    and the next message opens a new connection. :meth:`close` (or leaving a ``with`` block)
    ends every connection; the sender stays usable and reconnects when it sends again.

    **Idempotency.** The ``Message-ID`` is derived from the idempotency key, so every attempt
    of a send carries the same id. Within one sender object a key already accepted by the
    server is not sent again and gets its first receipt. Across processes SMTP offers nothing
    more: a worker that dies after the server accepted a message and before recording it leads
    to a second delivery with the same ``Message-ID`` (at least once; receivers and our reply
    matching can drop the repeat by that id).

    **Outcomes.**

    * accepted → :class:`SendReceipt` with the ``Message-ID``;
    * recipient, sender or data refused with a 5xx code, or a header field that holds a line
      break → ``SendFailure(permanent=True)``;
    * 4xx codes (a ``421`` after the one retry), a dropped or refused connection, timeouts →
      ``SendFailure(permanent=False)``;
    * rejected credentials, a server without AUTH when credentials are given, a server without
      STARTTLS when it is required, a certificate that does not verify, a From address the
      server refuses with 5xx → :class:`AdapterError` (the sender cannot work at all).

    Args:
        host: the SMTP server.
        port: its port; None: 25 (plain), 587 (starttls) or 465 (ssl).
        security: plain, starttls (default) or ssl.
        username: for AUTH; "" to skip authentication.
        password: for AUTH, with ``username``.
        allow_plaintext_auth: with ``security="plain"`` and a username, send the credentials
            unencrypted anyway (a relay on a trusted network only); without it that
            combination is refused when the sender is made.
        timeout: seconds for connecting and for each command.
        ssl_context: for starttls and ssl; None: the system's default, which verifies the
            server's certificate. Built (or taken) once and shared by every connection.
        local_hostname: the name sent in EHLO; None: this machine's FQDN.
        clock: for the ``Date`` header; None: the system clock.

    Raises:
        AdapterError: an unknown security mode, a timeout that is not positive, or credentials
            with ``security="plain"`` without ``allow_plaintext_auth=True``.
    """

    def __init__(
        self,
        *,
        host: str,
        port: int | None = None,
        security: SMTPSecurity | str = SMTPSecurity.STARTTLS,
        username: str = "",
        password: str = "",
        allow_plaintext_auth: bool = False,
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
        if self._security is SMTPSecurity.PLAIN and username and not allow_plaintext_auth:
            raise AdapterError(
                f"SMTP sender: security='plain' would send the password of {username!r} to "
                f"{host} unencrypted; use security='starttls' or 'ssl', or pass "
                "allow_plaintext_auth=True (a relay on a trusted network only)"
            )
        self._host = host
        self._port = port if port is not None else _DEFAULT_PORTS[self._security]
        self._where = f"{host}:{self._port}"
        self._username = username
        self._password = password
        self._timeout = timeout
        self._ssl_context: ssl.SSLContext | None = None
        if self._security is not SMTPSecurity.PLAIN:
            # Loading the system's CA store takes tens of milliseconds: once per sender.
            self._ssl_context = ssl_context or ssl.create_default_context()
        self._local_hostname = local_hostname
        self._clock = clock
        self._lock = threading.Lock()
        self._mailboxes: dict[str, _Mailbox] = {}
        self._sent: dict[str, SendReceipt] = {}

    def __enter__(self) -> SMTPEmailSender:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """End every open connection (``QUIT``); waits for sends in progress to finish.

        The sender can still send afterwards: it opens new connections.
        """
        with self._lock:
            mailboxes = list(self._mailboxes.values())
        for mailbox in mailboxes:
            with mailbox.lock:
                _drop(mailbox, polite=True)

    def send_email(self, message: OutgoingEmail) -> SendReceipt | SendFailure:
        """Send ``message`` once (see the class docstring for the outcomes)."""
        date = None
        if self._clock is not None:
            date = email.utils.format_datetime(self._clock.now(), usegmt=True)
        try:
            composed = compose_email(message, date=date)
        except InvalidInput as exc:
            return SendFailure(permanent=True, reason=str(exc))
        with self._lock:
            mailbox = self._mailboxes.setdefault(message.sender_id, _Mailbox())
        with mailbox.lock:
            # Checked under the mailbox lock: two threads sending one key send it once.
            with self._lock:
                earlier = self._sent.get(message.idempotency_key)
            if earlier is not None:
                return earlier
            # A live kept connection may have gone stale; a new one failing is the server's state.
            reused = mailbox.client is not None and mailbox.client.sock is not None
            outcome = self._attempt(mailbox, composed, message)
            if reused and outcome.retry_on_new_connection:
                log.info(
                    "SMTP %s: the kept connection of mailbox %s is gone; trying a new one",
                    self._host,
                    message.sender_id,
                    extra=_fields(message),
                )
                outcome = self._attempt(mailbox, composed, message)
            result = outcome.result
            if isinstance(result, SendReceipt):
                with self._lock:
                    result = self._sent.setdefault(message.idempotency_key, result)
                log.debug("SMTP %s accepted %s", self._host, message.idempotency_key)
            else:
                log.warning(
                    "SMTP %s refused a message of mailbox %s (%s): %s",
                    self._host,
                    message.sender_id,
                    "permanent" if result.permanent else "transient",
                    result.reason,
                    extra=_fields(message),
                )
            return result

    def _open(self) -> _Client:
        """A new connection: connected, upgraded to TLS if asked, logged in if asked."""
        client: _Client
        if self._security is SMTPSecurity.SSL:
            client = _SSLClient(
                self._host,
                self._port,
                local_hostname=self._local_hostname,
                timeout=self._timeout,
                context=self._ssl_context,
            )
        else:
            client = _Client(
                self._host, self._port, local_hostname=self._local_hostname, timeout=self._timeout
            )
        try:
            if self._security is SMTPSecurity.STARTTLS:
                client.ehlo()
                if not client.has_extn("starttls"):
                    raise AdapterError(
                        f"SMTP server {self._where} does not offer STARTTLS; "
                        "use security='ssl' or (for a local relay only) 'plain'"
                    )
                client.starttls(context=self._ssl_context)
                client.ehlo()
            if self._username:
                self._login(client)
        except BaseException:
            client.close()
            raise
        return client

    def _login(self, client: _Client) -> None:
        try:
            client.login(self._username, self._password)
        except smtplib.SMTPAuthenticationError as exc:
            raise AdapterError(
                f"SMTP server {self._where} rejected the credentials of {self._username!r}: "
                f"{exc.smtp_code} {_said(exc.smtp_error)}"
            ) from exc
        except smtplib.SMTPServerDisconnected:
            raise  # the connection, not the configuration: transient
        except smtplib.SMTPException as exc:
            # No AUTH offered, no mechanism in common: no message can go out this way.
            raise AdapterError(
                f"SMTP server {self._where}: cannot log in as {self._username!r}: {exc}"
            ) from exc

    def _attempt(
        self, mailbox: _Mailbox, composed: EmailMessage, message: OutgoingEmail
    ) -> _Outcome:
        """One try of ``composed`` on the mailbox's connection, opening one if there is none.

        The connection is kept after a receipt and after a refusal smtplib has reset (RSET);
        anything else ends it.
        """
        client = mailbox.client
        if client is not None and client.sock is None:
            # smtplib closed it itself (after a 421 reply).
            mailbox.client = client = None
        where = self._where
        try:
            if client is None:
                try:
                    client = mailbox.client = self._open()
                except smtplib.SMTPResponseException as exc:
                    # Greeting, EHLO or STARTTLS refused: the server's state, never the
                    # recipient's fault, whatever the code.
                    return _Outcome(_session_refused(where, exc))
            client.data_begun = False
            client.send_message(composed)
        except AdapterError:
            _drop(mailbox)
            raise
        except smtplib.SMTPRecipientsRefused as exc:
            code, text = next(iter(exc.recipients.values()), (550, b"refused"))
            failure = _failure(code, text, f"recipient {message.to_address} refused")
            return _refused(mailbox, code, failure)
        except smtplib.SMTPSenderRefused as exc:
            if exc.smtp_code >= 500:
                _drop(mailbox)
                raise AdapterError(
                    f"SMTP server {where} refuses the sender {message.from_address}: "
                    f"{exc.smtp_code} {_said(exc.smtp_error)}"
                ) from exc
            failure = _failure(exc.smtp_code, exc.smtp_error, "sender refused for now")
            return _refused(mailbox, exc.smtp_code, failure)
        except smtplib.SMTPNotSupportedError as exc:
            # Raised by send_message, before any command, for a non-ASCII address the server
            # cannot carry: the connection is still good.
            return _Outcome(
                SendFailure(
                    permanent=True, reason=f"{where} cannot deliver to {message.to_address}: {exc}"
                )
            )
        except smtplib.SMTPServerDisconnected as exc:
            return _lost(mailbox, f"{where} disconnected: {exc}")
        except smtplib.SMTPHeloError as exc:
            # EHLO refused on a kept connection: the session, not the message.
            _drop(mailbox)
            return _Outcome(_session_refused(where, exc))
        except smtplib.SMTPResponseException as exc:
            # SMTPDataError and plain response errors: the message was answered, not accepted.
            failure = _failure(exc.smtp_code, exc.smtp_error, f"{where} refused the message")
            return _refused(mailbox, exc.smtp_code, failure)
        except ssl.SSLCertVerificationError as exc:
            _drop(mailbox)
            raise AdapterError(f"SMTP server {where}: certificate does not verify: {exc}") from exc
        except smtplib.SMTPException as exc:
            _drop(mailbox)
            return _Outcome(SendFailure(permanent=False, reason=f"{where}: {exc}"))
        except TimeoutError as exc:
            return _lost(mailbox, f"{where} timed out: {exc}")
        except OSError as exc:
            # Refused or reset connections, DNS failures, TLS errors on the wire.
            return _lost(mailbox, f"cannot reach {where}: {exc}")
        return _Outcome(SendReceipt(message_id=str(composed["Message-ID"])))


def _session_refused(where: str, exc: smtplib.SMTPResponseException) -> SendFailure:
    return SendFailure(
        permanent=False,
        reason=f"{where} refused the session: {exc.smtp_code} {_said(exc.smtp_error)}",
    )


def _refused(mailbox: _Mailbox, code: int, failure: SendFailure) -> _Outcome:
    """The server answered with a refusal: nothing was accepted. A 421 also ends the connection
    (smtplib closed it), so a new one may try once more."""
    if code == _CLOSING:
        _drop(mailbox)
        return _Outcome(failure, retry_on_new_connection=True)
    return _Outcome(failure)


def _lost(mailbox: _Mailbox, reason: str) -> _Outcome:
    """The connection broke without an answer. Trying again is safe only on a connection that
    was open and had not begun the message data (after that the server may hold the message)."""
    client = mailbox.client
    _drop(mailbox)
    return _Outcome(
        SendFailure(permanent=False, reason=reason),
        retry_on_new_connection=client is not None and not client.data_begun,
    )


def _drop(mailbox: _Mailbox, *, polite: bool = False) -> None:
    """End the mailbox's connection (with ``QUIT`` when ``polite``); errors do not matter."""
    client, mailbox.client = mailbox.client, None
    if client is None:
        return
    try:
        if polite and client.sock is not None:
            client.quit()
    except (smtplib.SMTPException, OSError):
        pass
    finally:
        client.close()
