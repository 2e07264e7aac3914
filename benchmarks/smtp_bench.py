"""SMTP sending throughput: a kept connection per mailbox against a connection per message.

Sends ``--count`` messages from one mailbox to a local aiosmtpd server (in a child process, so
its work does not share this process's GIL) over STARTTLS with a self-signed certificate made
by ``openssl`` (plain SMTP with ``--plain`` or when ``openssl`` is missing). Three ways:

* ``per message`` — what the sender did before: for every message a new default SSL context
  (the system CA store loaded, plus the test certificate), a new connection, STARTTLS, the
  message, QUIT. Emulated with a new ``SMTPEmailSender`` per message, closed after it.
* ``per message, one context`` — a new connection per message but one SSL context: shows
  how much of the cost is the context and how much the connection.
* ``kept connection`` — one ``SMTPEmailSender``: one context, one connection for all.

Each way runs ``--repeat`` times; the median is reported. The server counts what it receives;
every message must arrive exactly once.

    .venv/bin/python benchmarks/smtp_bench.py                  # 200 messages, STARTTLS
    .venv/bin/python benchmarks/smtp_bench.py --count 500 --repeat 5
"""

from __future__ import annotations

import argparse
import multiprocessing
import multiprocessing.sharedctypes
import multiprocessing.synchronize
import platform
import shutil
import socket
import ssl
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from starlight_sequences.adapters.smtp import SMTPEmailSender, SMTPSecurity
from starlight_sequences.ids import CampaignId, LeadId, SenderId
from starlight_sequences.ports.senders import OutgoingEmail, SendReceipt


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _certificate(folder: Path) -> tuple[Path, Path] | None:
    if shutil.which("openssl") is None:
        return None
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes"),
            *("-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=localhost"),
            *("-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def _serve(
    port: int,
    certificate: tuple[Path, Path] | None,
    received: multiprocessing.sharedctypes.Synchronized[int],
    ready: multiprocessing.synchronize.Event,
    stop: multiprocessing.synchronize.Event,
) -> None:
    """The child process: an aiosmtpd server that counts the messages it accepts."""
    from aiosmtpd.controller import Controller

    class Counter:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            with received.get_lock():
                received.value += 1
            return "250 OK"

    options: dict[str, Any] = {}
    if certificate is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(certificate[0]), str(certificate[1]))
        options = {"tls_context": context, "require_starttls": True}
    controller = Controller(Counter(), hostname="127.0.0.1", port=port, **options)
    controller.start()
    ready.set()
    stop.wait()
    controller.stop()


def _message(n: int) -> OutgoingEmail:
    return OutgoingEmail(
        idempotency_key=f"stl-bench-{n:06d}",
        sender_id=SenderId("mailbox-1"),
        from_address="sam@starlight.example",
        from_name="Sam Lee",
        to_address="ana@acme.example",
        to_name="Ana Silva",
        subject=f"An idea for Acme ({n})",
        body="Hi Ana,\n\nA short note about closing the books faster.\n\nBest,\nSam\n" * 3,
        campaign_id=CampaignId("bench"),
        lead_id=LeadId(f"lead-{n}"),
        step=1,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--count", type=int, default=200, help="messages per run (200)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per way; median (3)")
    parser.add_argument("--plain", action="store_true", help="plain SMTP instead of STARTTLS")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        certificate = None if args.plain else _certificate(Path(folder))
        security = SMTPSecurity.PLAIN if certificate is None else SMTPSecurity.STARTTLS
        cafile = None if certificate is None else str(certificate[0])

        def default_context() -> ssl.SSLContext | None:
            # What the sender's default (ssl_context=None) builds: the system CA store, plus
            # the benchmark's self-signed certificate so that it verifies.
            if cafile is None:
                return None
            context = ssl.create_default_context()
            context.load_verify_locations(cafile=cafile)
            return context

        spawn = multiprocessing.get_context("spawn")
        received = spawn.Value("i", 0)
        ready, stop = spawn.Event(), spawn.Event()
        port = _free_port()
        server = spawn.Process(target=_serve, args=(port, certificate, received, ready, stop))
        server.start()
        try:
            if not ready.wait(30):
                raise SystemExit("the aiosmtpd server did not start")

            def sender(context: ssl.SSLContext | None) -> SMTPEmailSender:
                return SMTPEmailSender(
                    host="127.0.0.1", port=port, security=security, ssl_context=context
                )

            def send(one: SMTPEmailSender, n: int) -> None:
                result = one.send_email(_message(n))
                if not isinstance(result, SendReceipt):
                    raise SystemExit(f"message {n} was not sent: {result}")

            shared = default_context()

            def before(count: int) -> None:
                for n in range(count):
                    with sender(default_context()) as one:
                        send(one, n)

            def one_context(count: int) -> None:
                for n in range(count):
                    with sender(shared) as one:
                        send(one, n)

            def kept(count: int) -> None:
                with sender(default_context()) as one:
                    for n in range(count):
                        send(one, n)

            ways: dict[str, Callable[[int], None]] = {"per message (before)": before}
            if cafile is not None:  # plain SMTP has no context to share
                ways["per message, one context"] = one_context
            ways["kept connection (now)"] = kept
            results: dict[str, float] = {}
            for name, way in ways.items():
                times = []
                for _ in range(args.repeat):
                    with received.get_lock():
                        received.value = 0
                    started = time.perf_counter()
                    way(args.count)
                    times.append(time.perf_counter() - started)
                    time.sleep(0.2)
                    if received.value != args.count:
                        raise SystemExit(f"{name}: the server got {received.value} messages")
                results[name] = statistics.median(times)

            context_ms = []
            for _ in range(20):
                started = time.process_time()
                ssl.create_default_context()
                context_ms.append((time.process_time() - started) * 1000)
        finally:
            stop.set()
            server.join(10)

    print(
        f"SMTP over {security.value} to aiosmtpd on 127.0.0.1, {args.count} messages, "
        f"median of {args.repeat} runs"
    )
    print(
        f"machine: {platform.machine()}, {multiprocessing.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, {ssl.OPENSSL_VERSION}"
    )
    print(
        f"ssl.create_default_context(): {statistics.median(context_ms):.1f} ms CPU (median of 20)"
    )
    print()
    base = results["per message (before)"]
    print(f"{'way':<28}{'seconds':>10}{'messages/s':>13}{'vs before':>11}")
    for name, seconds in results.items():
        print(f"{name:<28}{seconds:>10.2f}{args.count / seconds:>13.1f}{base / seconds:>10.1f}×")


if __name__ == "__main__":
    main()
