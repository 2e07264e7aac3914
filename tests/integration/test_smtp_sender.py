"""SMTPEmailSender against a real SMTP server (aiosmtpd) on loopback."""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import email
import email.message
import email.policy
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

aiosmtpd_controller = pytest.importorskip("aiosmtpd.controller")
aiosmtpd_smtp = pytest.importorskip("aiosmtpd.smtp")

from starlight_sequences.adapters.smtp import (  # noqa: E402
    SMTPEmailSender,
    SMTPSecurity,
    compose_email,
    message_id_for,
)
from starlight_sequences.errors import AdapterError, InvalidInput  # noqa: E402
from starlight_sequences.ids import CampaignId, LeadId, SenderId  # noqa: E402
from starlight_sequences.ports.senders import (  # noqa: E402
    OutgoingEmail,
    SendFailure,
    SendReceipt,
)

MESSAGE = OutgoingEmail(
    idempotency_key="stl-0123456789abcdef",
    sender_id=SenderId("mailbox-1"),
    from_address="sam@starlight.example",
    from_name="Sam Lee",
    to_address="ana@acme.example",
    to_name="Ana Silva",
    subject="An idea for Acme",
    body="Hi Ana,\n\nA short note.\n.\nA line with a lone dot above.\n\nBest,\nSam",
    campaign_id=CampaignId("c1"),
    lead_id=LeadId("ana"),
    step=1,
    unsubscribe="https://starlight.example/u/abc",
)


class Handler:
    """Accepts mail and notes what it saw.

    RCPT answers by the local part: tempfail → 450, reject → 550, closing → 421 (and the
    connection closes). ``per_connection`` > 0 answers 421 to a connection's RCPT once it has
    carried that many messages; ``hang_up_after_data`` closes each connection after accepting a
    message; ``hang_up_in_data`` keeps the message and closes without answering; ``data_delay``
    makes DATA slow (seconds).
    """

    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.data_reply = "250 Message accepted for delivery"
        self.peers: list[tuple[str, int]] = []
        self.closing_attempts = 0
        self.quits = 0
        self.per_connection = 0
        self.hang_up_after_data = False
        self.hang_ups = 0
        self.hang_up_in_data = False
        self.data_delay = 0.0
        self.in_flight: collections.Counter[str] = collections.Counter()
        self.max_in_flight = 0
        self.max_in_flight_per_mailbox = 0
        self._delivered: collections.Counter[tuple[str, int]] = collections.Counter()

    @property
    def connections(self) -> int:
        """How many connections carried at least one recipient."""
        return len(set(self.peers))

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any
    ) -> str:
        self.peers.append(session.peer)
        local = address.split("@")[0]
        if local.startswith("closing") or (
            self.per_connection and self._delivered[session.peer] >= self.per_connection
        ):
            self.closing_attempts += 1
            return "421 4.7.0 Closing this connection, try again"
        if local.startswith("tempfail"):
            return "450 4.2.0 Mailbox busy, try later"
        if local.startswith("reject"):
            return "550 5.1.1 No such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        mailbox = envelope.mail_from
        self.in_flight[mailbox] += 1
        self.max_in_flight = max(self.max_in_flight, sum(self.in_flight.values()))
        self.max_in_flight_per_mailbox = max(
            self.max_in_flight_per_mailbox, self.in_flight[mailbox]
        )
        try:
            if self.data_delay:
                await asyncio.sleep(self.data_delay)
        finally:
            self.in_flight[mailbox] -= 1
        if not self.data_reply.startswith("250"):
            return self.data_reply
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(parsed, email.message.EmailMessage)
        self.messages.append(parsed)
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        self._delivered[session.peer] += 1
        if self.hang_up_in_data:
            server.transport.close()
        elif self.hang_up_after_data:
            # After the reply is written (close() still sends what is buffered).
            asyncio.get_running_loop().call_soon(self._hang_up, server)
        return self.data_reply

    def _hang_up(self, server: Any) -> None:
        server.transport.close()
        self.hang_ups += 1

    def wait_for_hang_ups(self, count: int) -> None:
        deadline = time.monotonic() + 5
        while self.hang_ups < count and time.monotonic() < deadline:
            time.sleep(0.005)
        assert self.hang_ups >= count

    async def handle_QUIT(self, server: Any, session: Any, envelope: Any) -> str:
        self.quits += 1
        return "221 Bye"

    def message_ids(self) -> list[str]:
        return [str(m["Message-ID"]) for m in self.messages]


class Controller(aiosmtpd_controller.Controller):
    """aiosmtpd's controller, hanging up on its clients before it stops (its own ``stop``
    leaves their sockets open, as a crashed server would not)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sessions: list[Any] = []

    def factory(self) -> Any:
        smtp = super().factory()
        self.sessions.append(smtp)
        return smtp

    def stop(self, no_assert: bool = False) -> None:
        async def hang_up() -> None:
            for smtp in self.sessions:
                if smtp.transport is not None:
                    # abort: at once, without waiting for a TLS close_notify from the client.
                    smtp.transport.abort()
            await asyncio.sleep(0.05)

        if self.loop.is_running():
            asyncio.run_coroutine_threadsafe(hang_up(), self.loop).result(timeout=5)
        super().stop(no_assert)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@attrs.define
class Server:
    handler: Handler
    port: int
    options: dict[str, Any]
    controller: Controller | None = None

    def start(self) -> None:
        """Listen (again) on the same port with the same handler."""
        self.controller = Controller(
            self.handler, hostname="127.0.0.1", port=self.port, **self.options
        )
        self.controller.start()

    def stop(self) -> None:
        """Go away: every connection is closed and nothing listens on the port."""
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


def _serve(**kwargs: Any) -> Iterator[Server]:
    server = Server(handler=Handler(), port=_free_port(), options=kwargs)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def server() -> Iterator[Server]:
    yield from _serve()


def _authenticate(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> Any:
    ok = auth_data.login == b"sam" and auth_data.password == b"s3cret"
    return aiosmtpd_smtp.AuthResult(success=ok, handled=False)


@pytest.fixture
def auth_server() -> Iterator[Server]:
    yield from _serve(authenticator=_authenticate, auth_require_tls=False)


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def _server_context(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(certificate[0]), str(certificate[1]))
    return context


def _client_context(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(certificate[0]))


_OPEN: list[SMTPEmailSender] = []


@pytest.fixture(autouse=True)
def _close_senders() -> Iterator[None]:
    """Senders keep their connections open: every test's senders are closed after it."""
    yield
    while _OPEN:
        _OPEN.pop().close()


def _sender(port: int, **kwargs: Any) -> SMTPEmailSender:
    options: dict[str, Any] = {"security": SMTPSecurity.PLAIN, "timeout": 5.0}
    options.update(kwargs)
    sender = SMTPEmailSender(host="127.0.0.1", port=port, **options)
    _OPEN.append(sender)
    return sender


def test_a_message_arrives_with_its_headers_and_body(server: Server) -> None:
    result = _sender(server.port).send_email(MESSAGE)
    assert result == SendReceipt(message_id="<stl-0123456789abcdef@starlight.example>")
    (received,) = server.handler.messages
    assert received["Message-ID"] == "<stl-0123456789abcdef@starlight.example>"
    assert received["From"] == "Sam Lee <sam@starlight.example>"
    assert received["To"] == "Ana Silva <ana@acme.example>"
    assert received["Subject"] == "An idea for Acme"
    assert received["List-Unsubscribe"] == "<https://starlight.example/u/abc>"
    assert received["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert received["Date"] is not None
    assert received.get_content().replace("\r\n", "\n") == MESSAGE.body + "\n"
    assert server.handler.envelopes == [("sam@starlight.example", ["ana@acme.example"])]


def test_a_mailto_unsubscribe_has_no_one_click_header(server: Server) -> None:
    message = attrs.evolve(MESSAGE, unsubscribe="mailto:unsubscribe@starlight.example")
    assert isinstance(_sender(server.port).send_email(message), SendReceipt)
    (received,) = server.handler.messages
    assert received["List-Unsubscribe"] == "<mailto:unsubscribe@starlight.example>"
    assert received["List-Unsubscribe-Post"] is None


def test_no_unsubscribe_means_no_list_headers(server: Server) -> None:
    assert isinstance(
        _sender(server.port).send_email(attrs.evolve(MESSAGE, unsubscribe="")), SendReceipt
    )
    (received,) = server.handler.messages
    assert received["List-Unsubscribe"] is None


def test_a_unicode_subject_and_names_arrive_intact(server: Server) -> None:
    subject = "Ideas para Acme — café, 東京, and a subject long enough to need folding " * 2
    message = attrs.evolve(MESSAGE, subject=subject.strip(), to_name="José Müller-Łukasz")
    assert isinstance(_sender(server.port).send_email(message), SendReceipt)
    (received,) = server.handler.messages
    assert received["Subject"] == subject.strip()
    assert received["To"].addresses[0].display_name == "José Müller-Łukasz"


def test_the_same_key_is_not_sent_twice_by_one_sender(server: Server) -> None:
    sender = _sender(server.port)
    first = sender.send_email(MESSAGE)
    second = sender.send_email(MESSAGE)
    assert first == second
    assert len(server.handler.messages) == 1


def test_the_message_id_is_the_same_for_every_attempt_of_a_key(server: Server) -> None:
    _sender(server.port).send_email(MESSAGE)
    _sender(server.port).send_email(MESSAGE)
    ids = {m["Message-ID"] for m in server.handler.messages}
    assert ids == {message_id_for(MESSAGE.idempotency_key, MESSAGE.from_address)}


def test_a_key_that_is_not_a_message_id_part_is_hashed_into_one() -> None:
    made = message_id_for("campaign 1/lead <x>@y", "sam@bücher.example")
    assert made.startswith("<")
    assert made.endswith("@xn--bcher-kva.example>")
    assert " " not in made
    assert made.count("@") == 1


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("subject", "Hello\r\nBcc: victim@evil.example"),
        ("subject", "Hello\nX-Injected: yes"),
        ("subject", "Hello\rX-Injected: yes"),
        ("subject", "Hello\u2028X-Injected: yes"),
        ("subject", "Hello\x00"),
        ("to_name", "Ana\r\nBcc: victim@evil.example"),
        ("from_name", "Sam\nBcc: victim@evil.example"),
        ("to_address", "ana@acme.example\r\nBcc: victim@evil.example"),
        ("to_address", "ana@acme.example, victim@evil.example"),
        ("from_address", "sam@starlight.example\nBcc: x@evil.example"),
        ("unsubscribe", "https://x.example/u\r\nBcc: victim@evil.example"),
        ("unsubscribe", "https://x.example/u>, <https://evil.example"),
        ("unsubscribe", "javascript:alert(1)"),
        ("idempotency_key", "stl-1\r\nBcc: victim@evil.example"),
    ],
)
def test_header_injection_is_a_permanent_failure_naming_the_field(
    server: Server, field: str, value: str
) -> None:
    message = attrs.evolve(MESSAGE, **{field: value})
    result = _sender(server.port).send_email(message)
    assert isinstance(result, SendFailure)
    assert result.permanent
    assert field in result.reason or "headers" in result.reason or "address" in result.reason
    assert server.handler.messages == []


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=25)
@given(
    subject=st.text(min_size=1, max_size=200),
    name=st.text(max_size=80),
)
def test_no_field_can_add_a_header(server: Server, subject: str, name: str) -> None:
    message = attrs.evolve(MESSAGE, subject=subject, to_name=name, from_name=name)
    try:
        composed = compose_email(message)
    except InvalidInput:
        return
    parsed = email.message_from_bytes(
        composed.as_bytes(policy=email.policy.SMTPUTF8), policy=email.policy.default
    )
    assert sorted(parsed.keys()) == sorted(composed.keys())
    assert parsed["Bcc"] is None
    assert parsed["Cc"] is None
    assert parsed["To"].addresses[0].addr_spec == "ana@acme.example"


def test_a_550_recipient_is_a_permanent_failure(server: Server) -> None:
    result = _sender(server.port).send_email(
        attrs.evolve(MESSAGE, to_address="reject@acme.example")
    )
    assert isinstance(result, SendFailure)
    assert result.permanent
    assert "550" in result.reason


def test_a_450_recipient_is_a_transient_failure(server: Server) -> None:
    result = _sender(server.port).send_email(
        attrs.evolve(MESSAGE, to_address="tempfail@acme.example")
    )
    assert isinstance(result, SendFailure)
    assert not result.permanent
    assert "450" in result.reason


def test_data_refused_with_4xx_is_transient_and_with_5xx_permanent(server: Server) -> None:
    server.handler.data_reply = "451 4.3.0 Try again later"
    transient = _sender(server.port).send_email(MESSAGE)
    server.handler.data_reply = "554 5.7.1 Message rejected as spam"
    permanent = _sender(server.port).send_email(attrs.evolve(MESSAGE, idempotency_key="stl-2"))
    assert isinstance(transient, SendFailure)
    assert not transient.permanent
    assert isinstance(permanent, SendFailure)
    assert permanent.permanent


def test_a_transient_failure_does_not_block_a_later_retry(server: Server) -> None:
    sender = _sender(server.port)
    server.handler.data_reply = "451 4.3.0 Try again later"
    assert isinstance(sender.send_email(MESSAGE), SendFailure)
    server.handler.data_reply = "250 OK"
    assert isinstance(sender.send_email(MESSAGE), SendReceipt)
    assert len(server.handler.messages) == 1


def test_a_refused_connection_is_transient() -> None:
    result = _sender(_free_port()).send_email(MESSAGE)
    assert isinstance(result, SendFailure)
    assert not result.permanent


def test_a_server_that_never_answers_times_out_as_transient() -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        port = silent.getsockname()[1]
        result = _sender(port, timeout=0.3).send_email(MESSAGE)
    assert isinstance(result, SendFailure)
    assert not result.permanent


# aiosmtpd itself sets the deprecated Session.login_data after a successful AUTH.
@pytest.mark.filterwarnings("ignore:Session.login_data is deprecated:DeprecationWarning")
def test_good_credentials_log_in_and_send(auth_server: Server) -> None:
    sender = _sender(auth_server.port, username="sam", password="s3cret", allow_plaintext_auth=True)
    assert isinstance(sender.send_email(MESSAGE), SendReceipt)
    assert len(auth_server.handler.messages) == 1


def test_rejected_credentials_raise_adapter_error(auth_server: Server) -> None:
    sender = _sender(auth_server.port, username="sam", password="wrong", allow_plaintext_auth=True)
    with pytest.raises(AdapterError, match="rejected the credentials"):
        sender.send_email(MESSAGE)
    assert auth_server.handler.messages == []


def test_starttls_upgrades_the_connection(certificate: tuple[Path, Path]) -> None:
    for server in _serve(tls_context=_server_context(certificate), require_starttls=True):
        sender = _sender(
            server.port,
            security=SMTPSecurity.STARTTLS,
            ssl_context=_client_context(certificate),
        )
        assert isinstance(sender.send_email(MESSAGE), SendReceipt)
        assert len(server.handler.messages) == 1


def test_starttls_required_but_not_offered_raises_adapter_error(server: Server) -> None:
    sender = _sender(server.port, security="starttls")
    with pytest.raises(AdapterError, match="STARTTLS"):
        sender.send_email(MESSAGE)


def test_ssl_from_the_first_byte(certificate: tuple[Path, Path]) -> None:
    for server in _serve(ssl_context=_server_context(certificate)):
        sender = _sender(
            server.port, security=SMTPSecurity.SSL, ssl_context=_client_context(certificate)
        )
        assert isinstance(sender.send_email(MESSAGE), SendReceipt)
        assert len(server.handler.messages) == 1


def test_a_certificate_that_does_not_verify_raises_adapter_error(
    certificate: tuple[Path, Path],
) -> None:
    for server in _serve(ssl_context=_server_context(certificate)):
        sender = _sender(server.port, security=SMTPSecurity.SSL)
        with pytest.raises(AdapterError, match="certificate"):
            sender.send_email(MESSAGE)


def test_an_unknown_security_mode_is_a_configuration_error() -> None:
    with pytest.raises(AdapterError, match="security"):
        SMTPEmailSender(host="127.0.0.1", security="tls-please")


def test_a_non_ascii_address_goes_out_with_smtputf8_and_an_idna_domain(server: Server) -> None:
    message = attrs.evolve(MESSAGE, to_address="josé@bücher.example")
    assert isinstance(_sender(server.port).send_email(message), SendReceipt)
    assert server.handler.envelopes[0][1] == ["josé@xn--bcher-kva.example"]


# --------------------------------------------------------------------------- plaintext AUTH


def test_credentials_over_plain_smtp_are_refused_when_the_sender_is_made() -> None:
    with pytest.raises(AdapterError, match="allow_plaintext_auth") as raised:
        SMTPEmailSender(host="127.0.0.1", security="plain", username="sam", password="s3cret")
    assert "security='plain'" in str(raised.value)
    assert "s3cret" not in str(raised.value)


def test_plain_smtp_without_credentials_or_with_an_explicit_opt_in_is_allowed() -> None:
    SMTPEmailSender(host="127.0.0.1", security="plain")
    SMTPEmailSender(
        host="127.0.0.1",
        security="plain",
        username="sam",
        password="s3cret",
        allow_plaintext_auth=True,
    )
    SMTPEmailSender(host="127.0.0.1", security="starttls", username="sam", password="s3cret")


# --------------------------------------------------------------------------- connections


def _message(n: int, mailbox: int = 1) -> OutgoingEmail:
    return attrs.evolve(
        MESSAGE,
        idempotency_key=f"stl-m{mailbox}-{n}",
        sender_id=SenderId(f"mailbox-{mailbox}"),
        from_address=f"sender{mailbox}@starlight.example",
    )


def test_one_connection_carries_every_message_of_a_mailbox(server: Server) -> None:
    sender = _sender(server.port)
    results = [sender.send_email(_message(n)) for n in range(5)]
    assert all(isinstance(r, SendReceipt) for r in results)
    assert len(server.handler.messages) == 5
    assert server.handler.connections == 1


def test_each_mailbox_keeps_its_own_connection(server: Server) -> None:
    sender = _sender(server.port)
    for n in range(3):
        for mailbox in (1, 2):
            assert isinstance(sender.send_email(_message(n, mailbox)), SendReceipt)
    assert len(server.handler.messages) == 6
    assert server.handler.connections == 2


def test_refusals_keep_the_connection(server: Server) -> None:
    sender = _sender(server.port)
    assert isinstance(sender.send_email(_message(1)), SendReceipt)
    server.handler.data_reply = "451 4.3.0 Try again later"
    assert not _failure_of(sender.send_email(_message(2))).permanent
    server.handler.data_reply = "250 OK"
    rejected = attrs.evolve(_message(3), to_address="reject@acme.example")
    assert _failure_of(sender.send_email(rejected)).permanent
    assert isinstance(sender.send_email(_message(4)), SendReceipt)
    assert server.handler.connections == 1


def _failure_of(result: SendReceipt | SendFailure) -> SendFailure:
    assert isinstance(result, SendFailure), result
    return result


def test_a_connection_the_server_dropped_is_replaced_and_each_message_sent_once(
    server: Server,
) -> None:
    server.handler.hang_up_after_data = True
    sender = _sender(server.port)
    for n in range(4):
        assert isinstance(sender.send_email(_message(n)), SendReceipt)
        server.handler.wait_for_hang_ups(n + 1)
    assert sorted(server.handler.message_ids()) == sorted(
        message_id_for(_message(n).idempotency_key, _message(n).from_address) for n in range(4)
    )
    assert server.handler.connections == 4


def test_an_idle_connection_the_server_timed_out_is_replaced() -> None:
    for server in _serve(timeout=0.3):
        sender = _sender(server.port)
        assert isinstance(sender.send_email(_message(1)), SendReceipt)
        time.sleep(0.8)  # the server says 421 and closes the idle connection
        assert isinstance(sender.send_email(_message(2)), SendReceipt)
        assert len(server.handler.messages) == 2
        assert server.handler.connections == 2


def test_a_421_on_a_kept_connection_is_retried_once_on_a_new_one(server: Server) -> None:
    server.handler.per_connection = 2  # the server closes a connection after two messages
    sender = _sender(server.port)
    results = [sender.send_email(_message(n)) for n in range(5)]
    assert all(isinstance(r, SendReceipt) for r in results), results
    assert len(server.handler.messages) == 5
    assert server.handler.connections == 3


def test_a_server_that_keeps_answering_421_is_a_transient_failure_and_the_sender_recovers(
    server: Server,
) -> None:
    sender = _sender(server.port)
    assert isinstance(sender.send_email(_message(1)), SendReceipt)
    closing = attrs.evolve(_message(2), to_address="closing@acme.example")
    failure = _failure_of(sender.send_email(closing))
    assert not failure.permanent
    assert "421" in failure.reason
    # Once on the kept connection, once on a new one: no more.
    assert server.handler.closing_attempts == 2
    assert isinstance(sender.send_email(_message(3)), SendReceipt)
    assert len(server.handler.messages) == 2


def test_a_connection_lost_after_the_data_is_not_retried_at_once(server: Server) -> None:
    # The server kept the message but hung up before answering: trying again now could
    # deliver it twice, so the send is a transient failure (retried later with the same key,
    # so the same Message-ID).
    sender = _sender(server.port)
    assert isinstance(sender.send_email(_message(1)), SendReceipt)
    server.handler.hang_up_in_data = True
    failure = _failure_of(sender.send_email(_message(2)))
    assert not failure.permanent
    assert len(server.handler.messages) == 2
    assert server.handler.connections == 1
    server.handler.hang_up_in_data = False
    assert isinstance(sender.send_email(_message(2)), SendReceipt)
    ids = server.handler.message_ids()
    assert ids.count(message_id_for(_message(2).idempotency_key, _message(2).from_address)) == 2


def test_a_server_that_goes_away_gives_transient_failures_until_it_is_back(
    server: Server,
) -> None:
    sender = _sender(server.port, timeout=2.0)
    assert isinstance(sender.send_email(_message(1)), SendReceipt)
    server.stop()
    for n in (2, 3):
        assert not _failure_of(sender.send_email(_message(n))).permanent
    server.start()
    for n in (2, 3, 4):
        assert isinstance(sender.send_email(_message(n)), SendReceipt)
    assert sorted(server.handler.message_ids()) == sorted(
        message_id_for(_message(n).idempotency_key, _message(n).from_address) for n in (1, 2, 3, 4)
    )
    assert server.handler.connections == 2


def test_close_quits_every_connection_and_the_sender_can_send_again(server: Server) -> None:
    with _sender(server.port) as sender:
        assert isinstance(sender.send_email(_message(1, 1)), SendReceipt)
        assert isinstance(sender.send_email(_message(1, 2)), SendReceipt)
    assert server.handler.quits == 2
    assert isinstance(sender.send_email(_message(2, 1)), SendReceipt)
    assert server.handler.connections == 3


def test_concurrent_sends_for_several_mailboxes_are_each_delivered_once(server: Server) -> None:
    server.handler.data_delay = 0.02
    sender = _sender(server.port)
    messages = [_message(n, mailbox) for mailbox in range(4) for n in range(8)]
    # Every message twice, from different threads at once: still one delivery each.
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(sender.send_email, messages + messages[::-1]))
    assert all(isinstance(r, SendReceipt) for r in results), results
    expected = {message_id_for(m.idempotency_key, m.from_address) for m in messages}
    received = server.handler.message_ids()
    assert sorted(received) == sorted(expected)
    assert server.handler.connections == 4
    assert server.handler.max_in_flight_per_mailbox == 1
    assert server.handler.max_in_flight >= 2  # mailboxes do not wait for each other


def test_threads_sharing_one_mailbox_take_turns_and_reconnect_when_the_server_drops_it(
    server: Server,
) -> None:
    # Against the rules (a dispatcher keeps one send per mailbox in flight), eight threads send
    # from one mailbox while the server ends each connection after three messages.
    server.handler.per_connection = 3
    server.handler.data_delay = 0.01
    sender = _sender(server.port)
    messages = [_message(n) for n in range(24)]
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(sender.send_email, messages))
    assert all(isinstance(r, SendReceipt) for r in results), results
    expected = [message_id_for(m.idempotency_key, m.from_address) for m in messages]
    assert sorted(server.handler.message_ids()) == sorted(expected)  # each exactly once
    assert server.handler.max_in_flight_per_mailbox == 1  # they took turns on one connection
    assert server.handler.connections == 8  # each dropped connection replaced once


def test_the_ssl_context_is_built_once_per_sender(
    certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    built: list[ssl.SSLContext] = []
    create = ssl.create_default_context

    def counted(*args: Any, **kwargs: Any) -> ssl.SSLContext:
        context = create(*args, **kwargs)
        context.load_verify_locations(cafile=str(certificate[0]))
        built.append(context)
        return context

    monkeypatch.setattr(ssl, "create_default_context", counted)
    for server in _serve(tls_context=_server_context(certificate), require_starttls=True):
        server.handler.hang_up_after_data = True  # a new connection (and handshake) each time
        sender = _sender(server.port, security=SMTPSecurity.STARTTLS)
        for n in range(3):
            assert isinstance(sender.send_email(_message(n)), SendReceipt)
            server.handler.wait_for_hang_ups(n + 1)
        assert server.handler.connections == 3
    assert len(built) == 1
