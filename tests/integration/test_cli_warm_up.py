"""``starlight create --warm-up``: a mailbox's ramp from the command line, and its errors."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from starlight_sequences import WarmUp
from starlight_sequences.adapters.sqlite import SQLiteStorage
from starlight_sequences.ids import CampaignId, WorkspaceId
from tests.integration.test_cli import CLI, assert_one_line_error


@pytest.fixture
def funded(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> CLI:
    monkeypatch.setenv("STARLIGHT_UNSUBSCRIBE_MAILTO", "unsubscribe@acme.example.com")
    cli = CLI(tmp_path, capsys)
    assert cli("credits", "top-up", "500") == 0
    return cli


def stored_mailbox(cli: CLI, campaign: str = "q1"):  # type: ignore[no-untyped-def]
    with SQLiteStorage(cli.db) as storage:
        workspace = storage.list_campaigns(WorkspaceId("default"))
        assert workspace, "no campaign in the default workspace"
        return storage.get_campaign(WorkspaceId("default"), CampaignId(campaign)).email_identity


def test_warm_up_sets_the_mailbox_ramp_and_the_preview_shows_the_last_send(funded: CLI) -> None:
    code = funded.create(
        "q1",
        "--warm-up",
        "10:2:40",
        "--warm-up-since",
        "2026-11-27",
        "--mailbox-country",
        "us",
        "--mailbox-timezone",
        "America/New_York",
    )
    assert code == 0, funded.err
    mailbox = stored_mailbox(funded)
    assert mailbox.warm_up == WarmUp(
        start=10, step=2, ceiling=40, since=dt.date(2026, 11, 27), country="US"
    )
    assert mailbox.daily_cap == 40
    assert mailbox.timezone == "America/New_York"
    assert funded("preview", "q1", "--limit", "0") == 0
    assert (
        "mailbox ada@nimbus.example.com warming up: 10 a day from 2026-11-27, "
        "+2 each business day, at most 40"
    ) in funded.out
    assert "Last send (forecast): 2026-12-" in funded.out
    assert funded("preview", "q1", "--json") == 0
    assert json.loads(funded.out)["last_send_utc"].startswith("2026-12-")


def test_the_ramp_starts_today_in_the_mailbox_timezone_by_default(funded: CLI) -> None:
    # 06:00 UTC on Monday 30 November is still Sunday the 29th in Los Angeles.
    code = funded.create("q1", "--warm-up", "5:5:40", "--mailbox-timezone", "America/Los_Angeles")
    assert code == 0, funded.err
    mailbox = stored_mailbox(funded)
    assert mailbox.warm_up is not None
    assert mailbox.warm_up.since == dt.date(2026, 11, 29)
    assert mailbox.warm_up.country is None


@pytest.mark.parametrize(
    ("extra", "code", "words"),
    [
        (["--warm-up", "10:2"], 2, ["START:STEP:CEILING", "'10:2'"]),
        (["--warm-up", "ten:2:40"], 2, ["START:STEP:CEILING"]),
        (["--warm-up", "10:2:5"], 1, ["warm-up ramp", "ceiling", "below start 10"]),
        (["--warm-up", "0:2:40"], 1, ["warm-up ramp", "start", "at least 1"]),
        (["--warm-up", "10:2:40", "--mailbox-country", "XX"], 1, ["country", "'XX'"]),
        (["--mailbox-country", "US"], 2, ["--mailbox-country needs --warm-up"]),
        (["--warm-up-since", "2026-11-30"], 2, ["--warm-up-since needs --warm-up"]),
        (["--warm-up-since", "2026-13-01"], 2, ["not an ISO date"]),
    ],
)
def test_a_bad_warm_up_is_one_clear_line_and_creates_nothing(
    funded: CLI, extra: list[str], code: int, words: list[str]
) -> None:
    assert funded.create("q1", *extra) == code
    assert_one_line_error(funded, *words)
    assert funded("campaigns") == 0
    assert "q1" not in funded.out
