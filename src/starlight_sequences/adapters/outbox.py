"""An email sender that writes each message to a folder as an ``.eml`` file (the demo's default).

Nothing leaves the machine: open the files in a mail client to see exactly what would have been
sent, or hand the folder to a tool that delivers them.
"""

from __future__ import annotations

import email.policy
import email.utils
import hashlib
import os
import re
import tempfile
import threading
from pathlib import Path
from typing import Final

from starlight_sequences.adapters.smtp import compose_email, message_id_for
from starlight_sequences.errors import AdapterError, InvalidInput
from starlight_sequences.ports.clock import Clock
from starlight_sequences.ports.senders import OutgoingEmail, SendFailure, SendReceipt

__all__ = ["OutboxEmailSender"]

_SAFE_NAME: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
_SUFFIX: Final = ".eml"


def _file_name(idempotency_key: str) -> str:
    """``<key>.eml`` when the key is a safe file name; else a readable prefix plus a digest."""
    if _SAFE_NAME.fullmatch(idempotency_key) and not idempotency_key.endswith("."):
        return idempotency_key + _SUFFIX
    prefix = re.sub(r"[^A-Za-z0-9_-]+", "-", idempotency_key)[:40].strip("-")
    digest = hashlib.sha256(idempotency_key.encode()).hexdigest()[:24]
    return f"{prefix}-{digest}{_SUFFIX}" if prefix else f"key-{digest}{_SUFFIX}"


class OutboxEmailSender:
    """Writes each email as an RFC 5322 ``.eml`` file in ``folder``, once per idempotency key.

    The file is named from the idempotency key (``<key>.eml``; keys that are not safe file
    names get a digest-based name) and written atomically: a temporary file in the same folder,
    flushed to disk, then renamed into place, so a reader never sees half a message. Sending a
    key that already has a file writes nothing and returns the same receipt (the ``Message-ID``
    derived from the key). The message is the one :func:`~starlight_sequences.adapters.smtp.
    compose_email` builds for SMTP, with the same header checks.

    Args:
        folder: where the files go; created (with parents) if missing.
        clock: for the ``Date`` header (the demo's simulated clock); None: the system clock.

    Raises:
        AdapterError: the folder cannot be created, or a file cannot be written.
    """

    def __init__(self, folder: str | os.PathLike[str], *, clock: Clock | None = None) -> None:
        self._folder = Path(folder)
        self._clock = clock
        self._lock = threading.Lock()
        try:
            self._folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise AdapterError(
                f"outbox: cannot create folder {str(self._folder)!r}: {exc}"
            ) from exc

    @property
    def folder(self) -> Path:
        """The folder the ``.eml`` files are written to."""
        return self._folder

    def path_for(self, idempotency_key: str) -> Path:
        """The file a message with that key is (or would be) written to."""
        return self._folder / _file_name(idempotency_key)

    def messages(self) -> list[Path]:
        """Every ``.eml`` file in the folder, sorted by name."""
        return sorted(self._folder.glob(f"*{_SUFFIX}"))

    def send_email(self, message: OutgoingEmail) -> SendReceipt | SendFailure:
        """Write ``message`` once; a key seen before returns its receipt without writing."""
        receipt = SendReceipt(
            message_id=message_id_for(message.idempotency_key, message.from_address)
        )
        target = self.path_for(message.idempotency_key)
        with self._lock:
            if target.exists():
                return receipt
            date = None
            if self._clock is not None:
                date = email.utils.format_datetime(self._clock.now(), usegmt=True)
            try:
                composed = compose_email(message, date=date)
            except InvalidInput as exc:
                return SendFailure(permanent=True, reason=str(exc))
            self._write(target, composed.as_bytes(policy=email.policy.SMTPUTF8))
        return receipt

    def _write(self, target: Path, data: bytes) -> None:
        try:
            fd, temp_name = tempfile.mkstemp(dir=self._folder, prefix=".outbox-", suffix=".tmp")
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(data)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(temp_name, target)
            except BaseException:
                Path(temp_name).unlink(missing_ok=True)
                raise
        except OSError as exc:
            raise AdapterError(f"outbox: cannot write {str(target)!r}: {exc}") from exc
