from __future__ import annotations

import email
import email.policy
from pathlib import Path

import pytest

from starlight_sequences.cli import main


def test_starlight_demo_runs_end_to_end_and_writes_its_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["demo", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "James replied (james-reply.eml); ingest_email read it as a reply matched by " in out
    reply = email.message_from_bytes(
        (tmp_path / "inbox" / "james-reply.eml").read_bytes(), policy=email.policy.default
    )
    originals = {
        str(email.message_from_bytes(p.read_bytes(), policy=email.policy.default)["Message-ID"])
        for p in (tmp_path / "outbox").glob("*.eml")
    }
    assert str(reply["In-Reply-To"]) in originals, "a real reply, threaded to a sent email"
    assert "accepted the connection request" in out
    assert "not accepted within 15 business days" in out
    assert "sam: lead 'sam' has neither an email address nor a LinkedIn profile" in out
    assert (tmp_path / "timeline-maya.svg").read_text().startswith("<svg") or "<svg" in (
        tmp_path / "timeline-maya.svg"
    ).read_text()
    assert list((tmp_path / "outbox").glob("*.eml"))
    assert ", 0 reserved" in out
    # The tasks view a week in: who waits on a connection and when it times out.
    assert "Waiting on connections: 4" in out
    assert "times out Wed 23 Dec 17:00 Europe/Paris" in out
