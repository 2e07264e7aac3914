"""``starlight status`` shows a mailbox the bounce breaker holds; ``starlight resume-sender``
lets it send again."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from starlight_sequences.adapters.sqlite import SQLiteStorage
from starlight_sequences.bounce_breaker import SenderHold
from starlight_sequences.ids import CampaignId, WorkspaceId
from starlight_sequences.ports.storage import Changes
from tests.integration.test_cli import CLI, MONDAY, UNSUBSCRIBE_MAILTO, assert_one_line_error

WS = WorkspaceId("default")


@pytest.fixture
def approved(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> CLI:
    """An approved campaign q1 (as ``tests/integration/test_cli.py`` makes it)."""
    monkeypatch.setenv("STARLIGHT_UNSUBSCRIBE_MAILTO", UNSUBSCRIBE_MAILTO)
    cli = CLI(tmp_path, capsys)
    assert cli("credits", "top-up", "500") == 0
    assert cli.create() == 0, cli.err
    assert cli("approve", "q1") == 0, cli.err
    return cli


def hold_mailbox(cli: CLI) -> str:
    """Store a hold of campaign q1's mailbox, as the breaker would after two hard bounces."""
    with SQLiteStorage(cli.db) as storage:
        identity = storage.get_campaign(WS, CampaignId("q1")).email_identity
        assert identity is not None
        hold = SenderHold(
            workspace_id=WS,
            sender_id=identity.id,
            held_at=MONDAY,
            sends=20,
            hard_bounces=2,
            threshold=0.05,
        )
        storage.commit(WS, Changes(sender_holds=(hold,)))
    return identity.id


def test_status_says_which_sender_is_held_and_why(approved: CLI) -> None:
    sender = hold_mailbox(approved)

    assert approved("status", "q1") == 0, approved.err

    assert (
        f"Sender {sender} is held by the bounce breaker since 2026-11-30 06:00 UTC: "
        "2 hard bounces in its last 20 sends (10.0%, above 5.0%); nothing goes out from it "
        f"until `starlight resume-sender {sender}`"
    ) in approved.out


def test_status_json_lists_the_held_senders(approved: CLI) -> None:
    assert approved("status", "q1", "--json") == 0
    assert json.loads(approved.out)["held_senders"] == []
    sender = hold_mailbox(approved)

    assert approved("status", "q1", "--json") == 0

    (held,) = json.loads(approved.out)["held_senders"]
    assert held == {
        "sender_id": sender,
        "held_utc": "2026-11-30T06:00:00Z",
        "sends": 20,
        "hard_bounces": 2,
        "threshold": 0.05,
        "reason": "2 hard bounces in its last 20 sends (10.0%, above 5.0%)",
    }


def test_resume_sender_lets_the_mailbox_send_again(approved: CLI) -> None:
    sender = hold_mailbox(approved)

    assert approved("resume-sender", sender) == 0, approved.err

    assert f"Sender {sender} resumed" in approved.out
    assert approved("status", "q1") == 0
    assert "held by the bounce breaker" not in approved.out
    with SQLiteStorage(approved.db) as storage:
        assert storage.list_sender_holds(WS)[0].resumed_at == MONDAY


def test_resuming_a_sender_that_is_not_held_is_a_one_line_error(approved: CLI) -> None:
    assert approved("resume-sender", "nobody@example.com") == 1
    assert_one_line_error(approved, "'nobody@example.com' is not held")
