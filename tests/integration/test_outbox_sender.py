"""OutboxEmailSender writing real files."""

from __future__ import annotations

import datetime as dt
import email
import email.message
import email.policy
from pathlib import Path

import attrs
import pytest

from starlight_sequences.adapters.clock import SettableClock
from starlight_sequences.adapters.outbox import OutboxEmailSender
from starlight_sequences.errors import AdapterError
from starlight_sequences.ids import CampaignId, LeadId, SenderId
from starlight_sequences.ports.senders import OutgoingEmail, SendFailure, SendReceipt

MESSAGE = OutgoingEmail(
    idempotency_key="stl-0123456789abcdef",
    sender_id=SenderId("mailbox-1"),
    from_address="sam@starlight.example",
    from_name="Sam Lee",
    to_address="ana@acme.example",
    to_name="Ana Silva",
    subject="An idea for Acme",
    body="Hi Ana,\n\nA short note, with a café.\n\nBest,\nSam",
    campaign_id=CampaignId("c1"),
    lead_id=LeadId("ana"),
    step=1,
    unsubscribe="https://starlight.example/u/abc",
)


def _read(path: Path) -> email.message.EmailMessage:
    parsed = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert isinstance(parsed, email.message.EmailMessage)
    return parsed


def test_a_message_becomes_one_eml_file_named_from_its_key(tmp_path: Path) -> None:
    sender = OutboxEmailSender(tmp_path / "outbox")
    result = sender.send_email(MESSAGE)
    assert result == SendReceipt(message_id="<stl-0123456789abcdef@starlight.example>")
    assert sender.messages() == [tmp_path / "outbox" / "stl-0123456789abcdef.eml"]
    written = _read(sender.messages()[0])
    assert written["Message-ID"] == "<stl-0123456789abcdef@starlight.example>"
    assert written["To"] == "Ana Silva <ana@acme.example>"
    assert written["Subject"] == "An idea for Acme"
    assert written["List-Unsubscribe"] == "<https://starlight.example/u/abc>"
    assert written["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert written.get_content().replace("\r\n", "\n") == MESSAGE.body + "\n"
    assert b"\r\n" in sender.messages()[0].read_bytes()


def test_sending_a_key_again_returns_the_same_receipt_and_writes_nothing(tmp_path: Path) -> None:
    sender = OutboxEmailSender(tmp_path)
    first = sender.send_email(MESSAGE)
    path = sender.path_for(MESSAGE.idempotency_key)
    before = (path.read_bytes(), path.stat().st_mtime_ns)
    again = OutboxEmailSender(tmp_path).send_email(attrs.evolve(MESSAGE, subject="Changed"))
    assert again == first
    assert (path.read_bytes(), path.stat().st_mtime_ns) == before
    assert len(sender.messages()) == 1


def test_no_temporary_files_are_left_behind(tmp_path: Path) -> None:
    sender = OutboxEmailSender(tmp_path)
    for number in range(5):
        sender.send_email(attrs.evolve(MESSAGE, idempotency_key=f"stl-{number}"))
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"stl-{n}.eml" for n in range(5)]


def test_a_key_that_is_not_a_safe_file_name_still_gets_one_file_of_its_own(
    tmp_path: Path,
) -> None:
    sender = OutboxEmailSender(tmp_path)
    keys = ["../../etc/passwd", "a/b", "a b", "..", "ключ"]
    for key in keys:
        assert isinstance(
            sender.send_email(attrs.evolve(MESSAGE, idempotency_key=key)), SendReceipt
        )
    files = sender.messages()
    assert len(files) == len(keys)
    assert all(path.parent == tmp_path for path in files)


def test_the_date_comes_from_the_clock_when_given(tmp_path: Path) -> None:
    clock = SettableClock(dt.datetime(2026, 12, 1, 9, 30, tzinfo=dt.UTC))
    sender = OutboxEmailSender(tmp_path, clock=clock)
    sender.send_email(MESSAGE)
    assert _read(sender.messages()[0])["Date"].datetime == clock.now()


def test_a_header_injection_is_a_permanent_failure_and_writes_nothing(tmp_path: Path) -> None:
    sender = OutboxEmailSender(tmp_path)
    result = sender.send_email(attrs.evolve(MESSAGE, subject="Hi\r\nBcc: x@evil.example"))
    assert isinstance(result, SendFailure)
    assert result.permanent
    assert "subject" in result.reason
    assert sender.messages() == []


def test_a_folder_that_cannot_be_created_is_an_adapter_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(AdapterError, match="outbox"):
        OutboxEmailSender(blocker / "outbox")
