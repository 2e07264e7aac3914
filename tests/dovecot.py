"""A real IMAP server for the tests: Dovecot, started on 127.0.0.1 with a throwaway configuration.

Needs the ``dovecot`` binary (Debian/Ubuntu package ``dovecot-imapd``) and ``openssl`` (for the
test certificate). Without them the IMAP tests skip, unless ``STARLIGHT_REQUIRE_IMAP=1`` (CI)
makes them fail.

Everything lives in one temporary directory: the configuration, its own ``base_dir`` and
``state_dir``, a passwd-file with the test users, the maildirs, the certificate and the log.
The server listens on two free ports of 127.0.0.1: one plain (STARTTLS offered, plain logins
allowed) and one TLS from the first byte. It runs in the foreground (``dovecot -F``) as a
child process and is stopped at the end; nothing is installed or started system-wide, and a
system Dovecot on 143/993 does not matter. As root, mail is stored as the ``dovenull`` user
(Dovecot never gives mail access to root); otherwise as the user running the tests.
"""

from __future__ import annotations

import contextlib
import getpass
import grp
import imaplib
import os
import pwd
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import pytest

REQUIRE_VARIABLE: Final = "STARLIGHT_REQUIRE_IMAP"
PACKAGE: Final = "dovecot-imapd"
PASSWORD: Final = "s3cret-imap-password"
START_TIMEOUT: Final = 15.0
USERS: Final = 100
"""Users each server has (a test takes a fresh one, so tests never see each other's mail)."""
_SEARCH_PATH: Final = os.pathsep.join(
    [os.environ.get("PATH", ""), "/usr/sbin", "/usr/local/sbin", "/sbin"]
)


def required() -> bool:
    """True when a missing Dovecot must fail the tests (CI) instead of skipping them."""
    return os.environ.get(REQUIRE_VARIABLE, "") not in ("", "0")


def _missing(what: str) -> None:
    """Skip (or, when required, fail) the calling test for want of ``what``."""
    if required():
        pytest.fail(f"{REQUIRE_VARIABLE}=1 but {what}", pytrace=False)
    pytest.skip(what)


def binaries() -> tuple[str, str, str]:
    """The paths of ``dovecot``, ``doveadm`` and ``openssl`` (skips or fails without them)."""
    dovecot = shutil.which("dovecot", path=_SEARCH_PATH)
    doveadm = shutil.which("doveadm", path=_SEARCH_PATH)
    if dovecot is None or doveadm is None:
        _missing(
            f"the IMAP tests need Dovecot: install the {PACKAGE} package "
            f"(apt-get install {PACKAGE}); dovecot was not found on PATH or in /usr/sbin"
        )
    openssl = shutil.which("openssl", path=_SEARCH_PATH)
    if openssl is None:
        _missing("the IMAP tests need openssl to make a test certificate")
    assert dovecot is not None
    assert doveadm is not None
    assert openssl is not None
    return dovecot, doveadm, openssl


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _mail_owner() -> tuple[int, int, str]:
    """uid, gid and name the mail is stored as (never root: Dovecot refuses that)."""
    if os.geteuid() != 0:
        return os.getuid(), os.getgid(), getpass.getuser()
    for name in ("dovenull", "nobody"):
        with contextlib.suppress(KeyError):
            entry = pwd.getpwnam(name)
            return entry.pw_uid, entry.pw_gid, name
    raise RuntimeError("running as root, but there is no dovenull or nobody user to own mail")


class Dovecot:
    """One Dovecot server with its own directory, ports and users."""

    def __init__(self, *, extra_config: str = "") -> None:
        self.dovecot, self.doveadm, openssl = binaries()
        # Not under pytest's tmp_path: as root, the mail user must be able to reach the
        # directory, and pytest makes its temporary directories private to the test user.
        self.root = Path(tempfile.mkdtemp(prefix="starlight-dovecot-"))
        self.root.chmod(0o755)
        self.plain_port = free_port()
        self.tls_port = free_port()
        self.certificate = self.root / "cert.pem"
        self.config = self.root / "dovecot.conf"
        self.log = self.root / "dovecot.log"
        self._users = self.root / "users"
        self._process: subprocess.Popen[bytes] | None = None
        self._uid, self._gid, _ = _mail_owner()
        self._make_certificate(openssl)
        mail = self.root / "mail"
        mail.mkdir()
        os.chown(mail, self._uid, self._gid)
        # Written once, before the start: Dovecot may not see a passwd-file change at once.
        self._fresh = [f"user{n:03d}" for n in range(1, USERS + 1)]
        self._users.write_text(
            "".join(
                f"{name}:{{PLAIN}}{PASSWORD}:{self._uid}:{self._gid}::{mail / name}\n"
                for name in self._fresh
            )
        )
        self.config.write_text(self._configuration(extra_config))

    def _make_certificate(self, openssl: str) -> None:
        subprocess.run(
            [
                openssl,
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                str(self.root / "key.pem"),
                "-out",
                str(self.certificate),
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
        (self.root / "key.pem").chmod(0o644)  # read by Dovecot's login processes

    def _configuration(self, extra: str) -> str:
        root = self.root
        lines = [
            f"base_dir = {root}/run",
            f"state_dir = {root}/state",
            f"instance_name = starlight-test-{uuid.uuid4().hex[:8]}",
            "listen = 127.0.0.1",
            "protocols = imap",
            f"log_path = {self.log}",
            "ssl = yes",
            f"ssl_cert = <{self.certificate}",
            f"ssl_key = <{root}/key.pem",
            # Plain logins on the plain port: the poller's opt-in is what the tests check.
            "disable_plaintext_auth = no",
            "auth_mechanisms = plain login",
            f"mail_location = maildir:{root}/mail/%u",
            f"first_valid_uid = {self._uid}",
            f"last_valid_uid = {self._uid}",
            "passdb {",
            "  driver = passwd-file",
            f"  args = scheme=PLAIN username_format=%u {self._users}",
            "}",
            "userdb {",
            "  driver = passwd-file",
            f"  args = username_format=%u {self._users}",
            "}",
            "service imap-login {",
            f"  inet_listener imap {{\n    port = {self.plain_port}\n  }}",
            f"  inet_listener imaps {{\n    port = {self.tls_port}\n    ssl = yes\n  }}",
            "}",
        ]
        if os.geteuid() != 0:
            # Without root every process runs as this user, and nothing can chroot.
            user = getpass.getuser()
            group = grp.getgrgid(os.getgid()).gr_name
            lines += [
                f"default_internal_user = {user}",
                f"default_internal_group = {group}",
                f"default_login_user = {user}",
                "service anvil {\n  chroot =\n}",
                "service imap-login {\n  chroot =\n}",
            ]
        return "\n".join([*lines, extra, ""])

    # -- users ----------------------------------------------------------------------------

    def add_user(self) -> str:
        """A user nobody used yet, with an empty mailbox (password :data:`PASSWORD`)."""
        if not self._fresh:
            raise RuntimeError(f"all {USERS} test users of this server are taken")
        return self._fresh.pop(0)

    # -- the process ----------------------------------------------------------------------

    def start(self) -> None:
        with self.log.open("ab") as log:
            self._process = subprocess.Popen(
                [self.dovecot, "-F", "-c", str(self.config)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + START_TIMEOUT
        for port in (self.plain_port, self.tls_port):
            while not _accepts(port):
                if self._process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"Dovecot did not start:\n{self.log_tail()}")
                time.sleep(0.02)

    def stop(self) -> None:
        """Stop the server and every process it started, at once (``SIGKILL``).

        A test server needs no graceful shutdown (maildirs survive a kill), and Dovecot's own
        takes seconds; its clients' ``imap`` processes would also outlive a master stopped on
        its own, and keep serving the connections they have.
        """
        process, self._process = self._process, None
        if process is None:
            return
        # The master runs in a session of its own: its process group is everything it started.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)
        deadline = time.monotonic() + 10
        while (_accepts(self.plain_port) or _accepts(self.tls_port)) and (
            time.monotonic() < deadline
        ):
            time.sleep(0.02)

    def restart(self) -> None:
        self.stop()
        self.start()

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def log_tail(self, lines: int = 30) -> str:
        if not self.log.exists():
            return "(no log)"
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def kick(self, user: str) -> None:
        """Drop every connection of ``user`` (``doveadm kick``) and wait until they are gone."""
        subprocess.run(
            [self.doveadm, "-c", str(self.config), "kick", user],
            check=True,
            capture_output=True,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            who = subprocess.run(
                [self.doveadm, "-c", str(self.config), "who", "-1", user],
                capture_output=True,
                text=True,
            )
            if user not in who.stdout:
                return
            time.sleep(0.02)
        raise RuntimeError(f"doveadm kick {user}: connections still open")

    # -- a client for the tests' own set-up and checks --------------------------------------

    @contextlib.contextmanager
    def client(self, user: str) -> Iterator[imaplib.IMAP4]:
        """A logged-in connection over the plain port (the tests deliver mail with it)."""
        conn = imaplib.IMAP4("127.0.0.1", self.plain_port, timeout=10)
        try:
            conn.login(user, PASSWORD)
            yield conn
        finally:
            with contextlib.suppress(imaplib.IMAP4.error, OSError):
                conn.logout()

    def client_context(self) -> ssl.SSLContext:
        """An SSL context that trusts the test certificate."""
        return ssl.create_default_context(cafile=str(self.certificate))


def _accepts(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
        return True
    return False


@contextlib.contextmanager
def running(*, extra_config: str = "") -> Iterator[Dovecot]:
    """A started server, stopped and removed afterwards (skips or fails without Dovecot)."""
    server = Dovecot(extra_config=extra_config)
    try:
        server.start()
        yield server
    finally:
        server.cleanup()
