from __future__ import annotations

import email
import email.policy
from pathlib import Path

import pytest

from starlight_sequences.cli import main
from tests.html_tree import parse


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


def test_starlight_demo_writes_the_monitoring_page_and_says_where(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["demo", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out

    assert f"Monitoring page (open it in a browser): {tmp_path / 'monitoring.html'}" in out
    assert f"The monitoring page of this moment: {tmp_path / 'monitoring-week-1.html'}" in out
    _, final = parse((tmp_path / "monitoring.html").read_text(encoding="utf-8"))
    assert "As of Mon 2026-12-28 06:00 UTC" in final.text
    stops = final.find("section", id="stops")
    assert "reply" in stops.find("tr", data_lead="james").text
    assert len(final.find_all("section", class_="lead")) == 9
    _, week = parse((tmp_path / "monitoring-week-1.html").read_text(encoding="utf-8"))
    waiting = week.find("section", id="waiting")
    assert waiting.find("h2").text == "Waiting on connections (4)"
    assert "Wed 2026-12-23 17:00 Europe/Paris" in waiting.find("tr", data_lead="chloe").text
