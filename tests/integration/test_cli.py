"""The ``starlight`` command through its real entry point, on a temporary SQLite file."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from starlight_sequences import _cli_inputs, shapes
from starlight_sequences._cli_inputs import read_leads
from starlight_sequences._cli_output import DraftingProgress
from starlight_sequences.adapters.clock import SettableClock
from starlight_sequences.adapters.sqlite import SQLiteStorage
from starlight_sequences.cli import main
from starlight_sequences.credits import MAX_CREDITS
from starlight_sequences.ids import CampaignId, WorkspaceId
from starlight_sequences.leads import import_leads_csv
from starlight_sequences.service import CampaignService
from tests.html_tree import parse

MONDAY = dt.datetime(2026, 11, 30, 6, 0, tzinfo=dt.UTC)
BRIEF = "Nimbus cuts cloud bills by 30% for data teams. We want a 20-minute call."

GOOD_CSV = """\
id,first_name,last_name,company,email,linkedin,country,timezone
maya,Maya,Cohen,Tidal Labs,maya@tidal.example.com,https://www.linkedin.com/in/maya-cohen,IL,Asia/Jerusalem
james,James,Porter,Quarry,james@quarry.example.com,https://www.linkedin.com/in/jamesporter,US,America/New_York
lukas,Lukas,Becker,Fernweh,,https://de.linkedin.com/in/lukas-becker/,DE,Europe/Berlin
sam,Sam,Nobody,Unreachable,,,US,America/Chicago
"""

BAD_ROWS = """\
bad,Bad,Row,X,not-an-email,,XX,America/New_York
worse,Worse,Row,Y,worse@example.com,https://www.linkedin.com/in/worse,FR,Mars/Base
"""


UNSUBSCRIBE_MAILTO = "unsubscribe@acme.example.com"


class CLI:
    """Runs ``main`` with a test clock against one database and captures what it wrote."""

    def __init__(self, folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
        self.folder = folder
        self.db = folder / "data" / "starlight.sqlite3"
        self.clock = SettableClock(MONDAY)
        self.capsys = capsys
        self.out = ""
        self.err = ""

    def __call__(self, *argv: str, db: bool = True) -> int:
        self.capsys.readouterr()
        code = main([*argv, *(["--db", str(self.db)] if db else [])], clock=self.clock)
        self.out, self.err = self.capsys.readouterr()
        return code

    def write(self, name: str, text: str) -> Path:
        path = self.folder / name
        path.write_text(text, encoding="utf-8")
        return path

    def create(self, campaign: str = "q1", *extra: str, leads: Path | None = None) -> int:
        leads = leads or self.write("leads.csv", GOOD_CSV)
        return self(
            "create",
            "--name",
            "Q1 cloud costs",
            "--brief",
            BRIEF,
            "--shape",
            "email-linkedin",
            "--leads",
            str(leads),
            "--mailbox",
            "ada@nimbus.example.com",
            "--mailbox-name",
            "Ada",
            "--linkedin-account",
            "ada-li",
            "--campaign-id",
            campaign,
            *extra,
        )


@pytest.fixture
def cli(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> CLI:
    monkeypatch.setenv("STARLIGHT_UNSUBSCRIBE_MAILTO", UNSUBSCRIBE_MAILTO)
    return CLI(tmp_path, capsys)


@pytest.fixture
def funded(cli: CLI) -> CLI:
    assert cli("credits", "top-up", "500") == 0
    return cli


@pytest.fixture
def created(funded: CLI) -> CLI:
    assert funded.create() == 0, funded.err
    return funded


@pytest.fixture
def approved(created: CLI) -> CLI:
    assert created("approve", "q1") == 0, created.err
    return created


def assert_one_line_error(cli: CLI, *words: str) -> None:
    lines = cli.err.strip().splitlines()
    assert "Traceback" not in cli.err
    assert lines, "no error message"
    assert lines[-1].startswith("starlight "), lines[-1]
    for word in words:
        assert word in lines[-1], (word, lines[-1])


# --------------------------------------------------------------------------- import, estimate


def test_import_writes_the_good_leads_and_reports_every_bad_row_by_row_and_field(
    cli: CLI,
) -> None:
    source = cli.write("mixed.csv", GOOD_CSV + BAD_ROWS)
    target = cli.folder / "good.json"

    code = cli("import", str(source), "--out", str(target), db=False)

    assert code == 1
    assert "4 lead(s) imported, 2 row(s) with problems" in cli.out
    assert "row 6 (lead 'bad'): email:" in cli.err
    assert "row 6 (lead 'bad'): country:" in cli.err
    assert "row 7 (lead 'worse'): timezone:" in cli.err
    assert "Traceback" not in cli.err
    written = read_leads(target)
    assert written.problems == ()
    assert written.leads == import_leads_csv(io.StringIO(GOOD_CSV)).leads


def test_import_of_a_clean_csv_exits_zero_and_the_lead_file_feeds_create(cli: CLI) -> None:
    source = cli.write("leads.csv", GOOD_CSV)

    assert cli("import", str(source), db=False) == 0
    lead_file = cli.folder / "leads.leads.json"
    assert lead_file.exists()
    assert "By country: DE 1, IL 1, US 2" in cli.out

    assert cli("credits", "top-up", "100") == 0
    assert cli.create(leads=lead_file) == 0, cli.err
    assert "3 enrolled, 1 excluded" in cli.out


def test_estimate_prints_drafting_and_maximum_send_costs_without_a_database(cli: CLI) -> None:
    leads = cli.write("leads.csv", GOOD_CSV)

    code = cli("estimate", "--shape", "email-linkedin", "--leads", str(leads), db=False)

    assert code == 0, cli.err
    # maya, james: 2 drafts (email, message), 3 sends; lukas: 1 draft (message), 2 sends.
    assert "Drafting:          5 messages         20 credits" in cli.out
    assert "Sends (max):       8 sends            16 credits" in cli.out
    assert "Total (max):" in cli.out
    assert "36 credits" in cli.out
    assert "sam: lead 'sam' has neither an email address nor a LinkedIn profile" in cli.out


def test_estimate_per_lead_lists_each_lead_and_shows_the_balance(funded: CLI) -> None:
    leads = funded.write("leads.csv", GOOD_CSV)

    assert funded("estimate", "--shape", "cold-email", "--leads", str(leads), "--per-lead") == 0
    lines = funded.out.splitlines()
    assert any(line.split()[:2] == ["maya", "1"] for line in lines)
    assert "Balance of workspace 'default': 500 available" in funded.out


# --------------------------------------------------------------------------- create and review


def test_create_drafts_with_a_progress_bar_on_stderr_and_stores_the_campaign(funded: CLI) -> None:
    assert funded.create() == 0, funded.err

    assert "Created campaign q1 (Q1 cloud costs), shape email-linkedin" in funded.out
    assert "3 enrolled, 1 excluded, 5 messages drafted (20 credits)" in funded.out
    assert "excluded sam:" in funded.out
    progress = [line for line in funded.err.splitlines() if line.startswith("Drafting:")]
    assert progress[-1] == "Drafting: 100% (5/5 messages)"
    storage = SQLiteStorage(funded.db)
    try:
        campaign = storage.get_campaign(WorkspaceId("default"), CampaignId("q1"))
        assert campaign.status.value == "draft"
    finally:
        storage.close()


def test_progress_bar_redraws_one_line_with_carriage_returns_on_a_terminal() -> None:
    stream = io.StringIO()
    bar = DraftingProgress(stream, tty=True, width=10)

    for done in range(0, 101):
        bar(done, 100)

    text = stream.getvalue()
    assert text.count("\n") == 1
    assert text.endswith("\n")
    frames = text.rstrip("\n").split("\r")[1:]
    assert frames[0] == "Drafting [----------]   0%  0/100 messages"
    assert frames[-1] == "Drafting [##########] 100%  100/100 messages"
    assert len(frames) == 101  # the percentage changes every call


def test_progress_bar_writes_one_line_per_tenth_when_not_a_terminal() -> None:
    stream = io.StringIO()
    bar = DraftingProgress(stream, tty=False)

    for done in range(0, 1001, 7):
        bar(done, 1000)
    bar(1000, 1000)
    bar.finish()

    lines = stream.getvalue().splitlines()
    assert [line.split()[1] for line in lines] == [f"{p}%" for p in range(10, 101, 10)]
    assert lines[-1] == "Drafting: 100% (1000/1000 messages)"


def test_progress_bar_of_nothing_to_draft_writes_nothing() -> None:
    stream = io.StringIO()
    bar = DraftingProgress(stream, tty=True)
    bar(0, 0)
    bar.finish()
    assert stream.getvalue() == ""


def test_preview_shows_each_step_in_local_time_and_utc_and_the_full_drafts_of_a_lead(
    created: CLI,
) -> None:
    assert created("preview", "q1") == 0
    assert "3 recipient(s), 1 excluded" in created.out
    # Maya is in Israel: Monday 09:00 Jerusalem is 07:00 UTC.
    assert "Mon 2026-11-30 09:00 Asia/Jerusalem  2026-11-30 07:00 UTC" in created.out
    assert "sam: lead 'sam' has neither" in created.out

    assert created("preview", "q1", "--lead", "maya") == 0
    assert "Subject: " in created.out
    assert "    | Hi Maya," in created.out
    assert "james" not in created.out


def test_edit_replaces_a_draft_and_a_bad_edit_is_refused_leaving_the_draft(
    created: CLI,
) -> None:
    assert created("edit", "q1", "maya", "1", "--subject", "Tidal's cloud bill") == 0
    assert "saved (version 2)" in created.out

    body = created.write("body.txt", "Hi Maya,\n\nShort and sweet.\n\nAda")
    assert created("edit", "q1", "maya", "1", "--body-file", str(body)) == 0
    assert created("edit", "q1", "maya", "1", "--subject", "two\nlines") == 1
    assert_one_line_error(created, "subject must be one line")

    assert created("preview", "q1", "--lead", "maya") == 0
    assert "Subject: Tidal's cloud bill" in created.out
    assert "    | Short and sweet." in created.out


def test_edit_without_a_change_is_a_usage_error(created: CLI) -> None:
    assert created("edit", "q1", "maya", "1") == 2
    assert_one_line_error(created, "needs --subject, --body or --body-file")


def test_regenerate_drafts_again_and_charges_one_draft(created: CLI) -> None:
    assert created("credits") == 0
    before = created.out.splitlines()[0]
    assert "480 available" in before

    assert created("regenerate", "q1", "james", "1") == 0
    assert "redrafted (version 2), ready" in created.out
    assert created("credits") == 0
    assert "476 available" in created.out.splitlines()[0]


def test_exclude_leaves_a_recipient_out_and_approve_schedules_the_rest(created: CLI) -> None:
    assert created("exclude", "q1", "james", "--reason", "talked already") == 0
    assert "james excluded from q1: talked already" in created.out

    assert created("approve", "q1") == 0
    # maya: 3 sends (6 credits); lukas: connect + message (4 credits).
    assert "Campaign q1 is active" in created.out
    assert "10 credits reserved" in created.out

    assert created("status", "q1") == 0
    rows = {line.split()[0]: line for line in created.out.splitlines() if line[:1].islower()}
    assert "excluded" in rows["james"]
    assert "scheduled" in rows["maya"]
    assert "Mon 2026-11-30 09:00 Europe/Berlin" in rows["lukas"]
    assert "2026-11-30 08:00 UTC" in rows["lukas"]


def test_approve_one_recipient_marks_it_reviewed(created: CLI) -> None:
    assert created("approve", "q1", "--lead", "maya") == 0
    assert "maya approved in q1" in created.out


def test_pause_resume_cancel_and_the_campaign_list(approved: CLI) -> None:
    assert approved("pause", "q1") == 0
    assert "Campaign q1 is paused" in approved.out
    assert approved("resume", "q1") == 0
    assert "Campaign q1 is active" in approved.out
    assert approved("campaigns") == 0
    assert approved.out.splitlines()[1].split()[:2] == ["q1", "Q1"]
    assert approved("cancel", "q1") == 0
    assert approved("credits") == 0
    assert ", 0 reserved" in approved.out.splitlines()[0]
    assert approved("pause", "q1") == 1
    assert_one_line_error(approved, "cancelled")


# --------------------------------------------------------------------------- running and events


def test_run_once_sends_what_is_due_to_the_outbox_and_the_linkedin_task_file(
    approved: CLI,
) -> None:
    approved.clock.set(dt.datetime(2026, 11, 30, 14, 45, tzinfo=dt.UTC))

    assert approved("run", "--once", "--worker-id", "test") == 0
    assert approved.out.startswith("2026-11-30 14:45 UTC  ")
    assert " sent" in approved.out
    # A second pass later sends what the mailbox's spacing may have deferred.
    approved.clock.set(dt.datetime(2026, 11, 30, 15, 0, tzinfo=dt.UTC))
    assert approved("run", "--once", "--worker-id", "test") == 0

    outbox = approved.db.parent / "outbox"
    assert len(list(outbox.glob("*.eml"))) == 2
    tasks = (approved.db.parent / "linkedin-tasks.jsonl").read_text().splitlines()
    assert [json.loads(line)["lead_id"] for line in tasks] == ["lukas"]


def test_run_once_with_sends_in_flight_sends_the_email_and_the_linkedin_task_due(
    approved: CLI,
) -> None:
    approved.clock.set(dt.datetime(2026, 11, 30, 14, 45, tzinfo=dt.UTC))

    assert approved("run", "--once", "--in-flight", "4") == 0

    assert len(list((approved.db.parent / "outbox").glob("*.eml"))) == 1
    assert (approved.db.parent / "linkedin-tasks.jsonl").read_text().count("\n") == 1


def test_run_refuses_in_flight_below_one_or_above_the_batch(approved: CLI) -> None:
    assert approved("run", "--once", "--in-flight", "0") != 0
    assert_one_line_error(approved, "--in-flight")
    assert approved("run", "--once", "--batch", "2", "--in-flight", "3") != 0
    assert_one_line_error(approved, "--in-flight")


def test_run_once_writes_to_the_folders_given(approved: CLI) -> None:
    approved.clock.set(dt.datetime(2026, 11, 30, 14, 45, tzinfo=dt.UTC))
    outbox, task_file = approved.folder / "mail", approved.folder / "li.jsonl"

    code = approved("run", "--once", "--outbox", str(outbox), "--tasks", str(task_file))

    assert code == 0
    assert list(outbox.glob("*.eml"))
    assert task_file.exists()


def test_tasks_lists_waiting_on_connections_and_pending_tasks_and_done_marks_one(
    approved: CLI,
) -> None:
    approved.clock.set(dt.datetime(2026, 11, 30, 14, 45, tzinfo=dt.UTC))
    assert approved("run", "--once") == 0

    assert approved("tasks") == 0
    assert "Waiting on connections (1)" in approved.out
    waiting = next(line for line in approved.out.splitlines() if "lukas" in line)
    assert "Lukas Becker" in waiting
    assert "Europe/Berlin" in waiting
    assert "Pending LinkedIn tasks (1)" in approved.out
    task_id = next(
        line.split()[0] for line in approved.out.splitlines() if line.strip().startswith("li-")
    )

    assert approved("tasks", "done", task_id) == 0
    assert f"Task {task_id} done: connection request to Lukas Becker" in approved.out
    assert approved("tasks") == 0
    assert "Pending LinkedIn tasks (0)" in approved.out

    assert approved("tasks", "done", "li-nope") == 1
    assert_one_line_error(approved, "li-nope")


def test_tasks_of_one_workspace_are_neither_listed_nor_completed_from_another(
    approved: CLI,
) -> None:
    approved.clock.set(dt.datetime(2026, 11, 30, 14, 45, tzinfo=dt.UTC))
    assert approved("run", "--once") == 0
    assert approved("tasks") == 0
    assert "Pending LinkedIn tasks (1)" in approved.out
    task_id = next(
        line.split()[0] for line in approved.out.splitlines() if line.strip().startswith("li-")
    )

    assert approved("--workspace", "rival", "tasks") == 0
    assert "Pending LinkedIn tasks (0)" in approved.out
    for private in ("Lukas", "lukas-becker", "Nimbus", task_id):
        assert private not in approved.out

    assert approved("--workspace", "rival", "tasks", "done", task_id) == 1
    assert_one_line_error(approved, task_id, "rival")
    assert approved("tasks") == 0
    assert "Pending LinkedIn tasks (1)" in approved.out


def test_a_task_file_from_before_workspaces_stays_scoped(approved: CLI) -> None:
    approved.clock.set(dt.datetime(2026, 11, 30, 14, 45, tzinfo=dt.UTC))
    assert approved("run", "--once") == 0
    task_file = approved.db.parent / "linkedin-tasks.jsonl"
    lines = [json.loads(line) for line in task_file.read_text().splitlines()]
    for line in lines:
        line.pop("workspace_id", None)  # as older versions wrote it
    task_file.write_text("".join(json.dumps(line) + "\n" for line in lines))

    assert approved("--workspace", "rival", "tasks") == 0
    assert "Pending LinkedIn tasks (0)" in approved.out
    assert approved("tasks") == 0
    assert "Pending LinkedIn tasks (1)" in approved.out
    assert approved("tasks", "done", lines[0]["id"]) == 0
    assert json.loads(task_file.read_text().splitlines()[-1])["workspace_id"] == "default"


def test_report_events_stop_release_and_pause_contacts(approved: CLI) -> None:
    approved.clock.set(dt.datetime(2026, 11, 30, 14, 45, tzinfo=dt.UTC))
    assert approved("run", "--once") == 0

    assert approved("report", "reply", "james", "--campaign", "q1") == 0
    assert "q1 / james: replied" in approved.out
    assert approved("report", "reply", "james", "--campaign", "q1") == 0
    assert "already reported; nothing changed" in approved.out

    approved.clock.set(dt.datetime(2026, 12, 1, 10, 0, tzinfo=dt.UTC))
    assert approved("report", "accepted", "lukas", "--at", "2026-12-01T09:30:00+01:00") == 0
    assert "q1 / lukas: active" in approved.out
    assert approved("tasks") == 0
    assert "Waiting on connections (0)" in approved.out

    assert approved("report", "ooo", "maya", "--return-date", "2026-12-14") == 0
    assert "out of office until 2026-12-14" in approved.out

    assert approved("status", "q1") == 0
    assert "replied" in approved.out
    assert "out_of_office" in approved.out


def test_status_html_writes_the_monitoring_page_as_well_as_the_table(approved: CLI) -> None:
    approved.clock.set(dt.datetime(2026, 11, 30, 14, 45, tzinfo=dt.UTC))
    assert approved("run", "--once") == 0
    page = approved.folder / "status.html"

    assert approved("status", "q1", "--html", str(page)) == 0, approved.err

    assert f"Monitoring page written to {page}" in approved.out
    assert "LEAD" in approved.out, "the table is still printed"
    _, tree = parse(page.read_text(encoding="utf-8"))
    rows = tree.find("section", id="contacts").find("tbody").find_all("tr")
    assert [row.attrs["data-lead"] for row in rows] == ["maya", "james", "lukas"]
    james = tree.find("section", id="contacts").find("tr", data_lead="james")
    # His first email is staggered to 09:48 New York time, still to come at 14:45 UTC.
    assert "Mon 2026-11-30 09:48 America/New_York Mon 2026-11-30 14:48 UTC" in james.text
    assert tree.find("section", id="waiting")
    assert len(tree.find_all("section", class_="lead")) == 3
    assert "As of Mon 2026-11-30 14:45 UTC" in tree.text, "now is the command's clock"


def test_status_html_with_json_writes_the_page_and_prints_only_json(approved: CLI) -> None:
    page = approved.folder / "status.html"

    assert approved("status", "q1", "--json", "--html", str(page), "--limit", "1") == 0

    assert json.loads(approved.out)["campaign"]["id"] == "q1"
    _, tree = parse(page.read_text(encoding="utf-8"))
    assert len(tree.find_all("section", class_="lead")) == 1, "--limit bounds the timelines"
    assert "2 more contact(s) have a timeline" in tree.text


def test_status_html_into_a_directory_is_a_one_line_error_with_exit_code_1(
    approved: CLI,
) -> None:
    assert approved("status", "q1", "--html", str(approved.folder)) == 1

    assert_one_line_error(approved, "--html", "cannot write the monitoring page there")
    assert approved.out == ""
    missing = approved.folder / "no-such-folder" / "page.html"
    assert approved("status", "q1", "--html", str(missing)) == 1
    assert_one_line_error(approved, str(missing), "No such file or directory")


def test_timeline_prints_the_shape_or_a_lead_and_writes_svg(approved: CLI) -> None:
    assert approved("timeline", "q1") == 0
    assert approved.out.splitlines()[0] == "Email + LinkedIn (email-linkedin)"
    assert "waits for acceptance, then 1 business day" in approved.out

    svg = approved.folder / "maya.svg"
    assert approved("timeline", "q1", "--lead", "maya", "--svg", str(svg)) == 0
    assert approved.out.splitlines()[0] == "Maya Cohen"
    assert "[scheduled Mon 2026-11-30 09:00 Asia/Jerusalem]" in approved.out
    assert svg.read_text().lstrip().startswith(("<svg", "<?xml"))


def test_credits_shows_the_balance_and_every_movement(approved: CLI) -> None:
    assert approved("credits") == 0
    lines = approved.out.splitlines()
    assert lines[0] == "Workspace 'default': 464 available, 16 reserved"
    assert lines[2].split() == ["KIND", "AMOUNT", "CAMPAIGN", "LEAD", "NOTE"]
    assert any(line.split()[:3] == ["draft", "20", "q1"] for line in lines)
    assert any(line.split()[:3] == ["reserve", "16", "q1"] for line in lines)


def test_workspaces_keep_their_own_credits(funded: CLI) -> None:
    assert funded("credits", "--workspace", "acme") == 0
    assert "Workspace 'acme': 0 available" in funded.out
    assert funded("--workspace", "acme", "credits", "top-up", "7") == 0
    assert funded("credits", "--workspace", "acme") == 0
    assert "Workspace 'acme': 7 available" in funded.out
    assert funded("credits") == 0
    assert "Workspace 'default': 500 available" in funded.out


# --------------------------------------------------------------------------- errors


def test_an_unknown_shape_is_a_one_line_error(funded: CLI) -> None:
    assert funded.create("q2", "--shape", "carrier-pigeon") == 1
    assert_one_line_error(funded, "no send shape 'carrier-pigeon'", "cold-email")


def test_an_invalid_shape_file_is_a_one_line_error(funded: CLI) -> None:
    shape = funded.write("shape.json", '{"key": "x", "steps": []')
    assert funded.create("q2", "--shape", str(shape)) == 1
    assert_one_line_error(funded, "not valid JSON")


def test_a_missing_lead_file_is_a_one_line_error(funded: CLI) -> None:
    assert funded.create("q2", leads=funded.folder / "nope.csv") == 1
    assert_one_line_error(funded, "nope.csv", "No such file")


def test_bad_rows_stop_create_with_every_row_listed_unless_skipped(funded: CLI) -> None:
    leads = funded.write("mixed.csv", GOOD_CSV + BAD_ROWS)

    assert funded.create("q2", leads=leads) == 1
    assert "row 6 (lead 'bad'): email:" in funded.err
    assert "row 7 (lead 'worse'): timezone:" in funded.err
    assert_one_line_error(funded, "--skip-invalid")
    assert funded("campaigns") == 0
    assert "No campaigns" in funded.out

    assert funded.create("q2", "--skip-invalid", leads=leads) == 0
    assert "3 enrolled, 1 excluded" in funded.out


def test_an_unknown_campaign_is_a_one_line_error(funded: CLI) -> None:
    for command in (["status", "nope"], ["preview", "nope"], ["approve", "nope"]):
        assert funded(*command) == 1
        assert_one_line_error(funded, "no campaign 'nope'")


def test_insufficient_credits_is_a_one_line_error_and_nothing_is_stored(cli: CLI) -> None:
    assert cli("credits", "top-up", "5") == 0
    assert cli.create() == 1
    assert_one_line_error(cli, "20 credits needed", "5 available")
    assert cli("campaigns") == 0
    assert "No campaigns" in cli.out


def test_a_naive_report_time_is_a_usage_error(approved: CLI) -> None:
    assert approved("report", "reply", "maya", "--at", "2026-12-01T10:00") == 2
    assert_one_line_error(approved, "has no UTC offset")


def test_an_unknown_contact_is_a_one_line_error(approved: CLI) -> None:
    assert approved("report", "bounce", "nobody") == 1
    assert_one_line_error(approved, "never enrolled lead 'nobody'")


def test_no_database_is_a_usage_error_and_a_missing_one_is_not_created(
    cli: CLI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("STARLIGHT_DB", raising=False)
    assert cli("status", "q1", db=False) == 2
    assert_one_line_error(cli, "--db PATH or set STARLIGHT_DB")

    assert cli("status", "q1") == 1
    assert_one_line_error(cli, "no database at")
    assert not cli.db.exists()


def test_the_openai_drafter_needs_a_base_url_and_a_model(funded: CLI) -> None:
    assert funded.create("q2", "--drafter", "openai", "--model", "m") == 2
    assert_one_line_error(funded, "--drafter openai needs --base-url and --model")


def test_a_bad_command_line_exits_2(cli: CLI) -> None:
    assert cli("approve") == 2
    assert "usage: starlight approve" in cli.err
    assert cli("frobnicate", db=False) == 2


def test_a_failing_create_leaves_the_earlier_campaign_and_credits_intact(created: CLI) -> None:
    assert created("preview", "q1", "--limit", "0") == 0
    preview_before = created.out
    assert created("credits") == 0
    credits_before = created.out
    mixed = created.write("mixed.csv", GOOD_CSV + BAD_ROWS)
    failures = [
        created.create("q1"),  # the id exists
        created.create("q2", "--shape", "nope"),
        created.create("q2", leads=mixed),
        created.create("q2", leads=created.folder / "missing.csv"),
        created.create("q2", "--default-timezone", "Mars/Base"),
    ]
    assert created("credits", "top-up", "0") == 2  # amounts are positive

    assert all(code != 0 for code in failures), failures
    assert created("preview", "q1", "--limit", "0") == 0
    assert created.out == preview_before
    assert created("credits") == 0
    assert created.out == credits_before
    assert created("approve", "q1") == 0


# --------------------------------------------------------------------------- text from users


def assert_no_raw_controls(cli: CLI) -> None:
    for stream in (cli.out, cli.err):
        raw = [c for c in stream if c not in "\n" and (ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F)]
        assert raw == [], raw


def test_a_lead_id_with_an_escape_character_is_refused_and_printed_escaped(cli: CLI) -> None:
    source = cli.write(
        "evil.csv",
        "id,first_name,email,country,timezone\n"
        "evil\x1b]0;pwned\x07,Eve,eve@example.com,US,America/New_York\n"
        "wipe\x1b[2J,Wes,wes@example.com,US,America/New_York\n"
        "ann,Ann\x1b[31m,ann@example.com,US,America/New_York\n"
        "maya,Maya,maya@example.com,IL,Asia/Jerusalem\n",
    )

    code = cli("import", str(source), db=False)

    assert code == 1
    assert "1 lead(s) imported, 3 row(s) with problems" in cli.out
    assert "row 2 (lead 'evil\\x1b]0;pwned\\x07'): id: contains a control character" in cli.err
    assert "row 3 (lead 'wipe\\x1b[2J'): id:" in cli.err
    assert "row 4 (lead 'ann'): first_name: contains a control character (U+001B)" in cli.err
    assert_no_raw_controls(cli)


def test_a_lead_id_from_the_task_file_is_printed_escaped(approved: CLI) -> None:
    approved.clock.set(dt.datetime(2026, 11, 30, 14, 45, tzinfo=dt.UTC))
    assert approved("run", "--once") == 0
    task_file = approved.db.parent / "linkedin-tasks.jsonl"
    # The task file is a plain file people and tools edit: what it holds is untrusted.
    task = json.loads(task_file.read_text().splitlines()[0])
    task.update(
        lead_id="lukas\x1b[2J\x1b]0;pwned\x07",
        recipient_name="Lukas\x9b31m",
        workspace_id="default",  # an edited line keeps its workspace, or it is nobody's
    )
    task_file.write_text(json.dumps(task) + "\n")

    assert approved("tasks") == 0

    assert "lukas\\x1b[2J\\x1b]0;pwned\\x07, step" in approved.out
    assert "connection request to Lukas\\x9b31m" in approved.out
    assert_no_raw_controls(approved)


def test_a_mailbox_name_with_a_trailing_newline_is_tidied_and_one_with_a_header_is_refused(
    funded: CLI,
) -> None:
    leads = funded.write("leads.csv", GOOD_CSV)
    base = ["create", "--name", "Q1", "--brief", BRIEF, "--shape", "cold-email"]
    base += ["--leads", str(leads), "--mailbox", "ada@nimbus.example.com"]

    assert (
        funded(*base, "--mailbox-name", "Ada\nBcc: victim@evil.example", "--campaign-id", "x") == 1
    )
    assert_one_line_error(funded, "sender identity", "display_name", "line break (U+000A)")

    assert funded(*base, "--mailbox-name", "Ada\n", "--campaign-id", "q1") == 0, funded.err
    storage = SQLiteStorage(funded.db)
    try:
        campaign = storage.get_campaign(WorkspaceId("default"), CampaignId("q1"))
    finally:
        storage.close()
    assert campaign.email_identity is not None
    assert campaign.email_identity.display_name == "Ada"


# --------------------------------------------------------------------------- real processes


# --------------------------------------------------------------------------- bounded input


def assert_only_one_line(cli: CLI, *words: str) -> None:
    assert_one_line_error(cli, *words)
    assert len(cli.err.strip().splitlines()) == 1, cli.err


DEEP_JSON = "[" * 100_000 + "]" * 100_000


def test_a_shape_file_nested_100000_levels_deep_is_a_one_line_error(funded: CLI) -> None:
    shape = funded.write("deep-shape.json", DEEP_JSON)
    assert funded.create("q2", "--shape", str(shape)) == 1
    assert_only_one_line(funded, "deep-shape.json", "nested deeper than the limit of 50 levels")
    assert funded("campaigns") == 0
    assert "No campaigns" in funded.out


def test_a_lead_file_nested_100000_levels_deep_is_a_one_line_error(cli: CLI) -> None:
    leads = cli.write("deep-leads.json", '{"leads": ' + DEEP_JSON + "}")
    assert cli("estimate", "--shape", "cold-email", "--leads", str(leads), db=False) == 1
    assert_only_one_line(cli, "deep-leads.json", "nested deeper than the limit of 50 levels")


def test_brackets_inside_json_strings_do_not_count_as_nesting(cli: CLI) -> None:
    record = {"id": "ann", "email": "ann@example.com", "country": "US"}
    record["timezone"] = "America/New_York"
    record["company"] = "[" * 1000 + "{" * 1000 + '"\\'
    leads = cli.write("brackets.json", json.dumps([record]))
    assert cli("estimate", "--shape", "cold-email", "--leads", str(leads), db=False) == 0, cli.err


def test_a_json_file_larger_than_the_limit_is_a_one_line_error(
    cli: CLI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_cli_inputs, "MAX_JSON_BYTES", 1024 * 1024)
    leads = cli.write("big.json", json.dumps([{"id": "x" * (1024 * 1024)}]))
    assert cli("estimate", "--shape", "cold-email", "--leads", str(leads), db=False) == 1
    assert_only_one_line(cli, "big.json", "larger than the limit of 1 MiB")


def test_a_json_number_too_long_to_read_is_a_one_line_error(cli: CLI) -> None:
    shape = cli.write("long-number.json", '{"schema_version": ' + "9" * 5000 + "}")
    assert cli("estimate", "--shape", str(shape), "--leads", str(shape), db=False) == 1
    assert_only_one_line(cli, "long-number.json", "not readable as JSON")


def test_a_wait_past_the_maximum_in_a_shape_file_stops_create_before_any_charge(
    funded: CLI,
) -> None:
    data = shapes.get("email-sequence").to_dict()
    data["steps"][1]["wait_days"] = 10**9
    shape = funded.write("slow.json", json.dumps(data))
    assert funded.create("q2", "--shape", str(shape)) == 1
    assert_only_one_line(funded, "step 2", "wait_days", "maximum of 260 business days")
    assert funded("credits") == 0
    assert "Workspace 'default': 500 available, 0 reserved" in funded.out


def test_a_top_up_past_the_credit_maximum_is_a_one_line_error(funded: CLI) -> None:
    assert funded("credits", "top-up", str(2**63)) == 1
    assert_only_one_line(funded, "amount must be a whole number of credits from 0 to")
    assert funded("credits", "top-up", str(MAX_CREDITS - 500)) == 0
    assert funded("credits", "top-up", "1") == 1
    assert_only_one_line(funded, "past the maximum of 9007199254740991 credits")
    assert funded("credits") == 0
    assert f"{MAX_CREDITS} available" in funded.out


def _break_campaign_listing(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(self: CampaignService, workspace_id: WorkspaceId) -> list[object]:
        raise RuntimeError("the disk is on fire\nand so is the second line")

    monkeypatch.setattr(CampaignService, "campaigns", broken)


def test_an_unexpected_error_is_one_line_and_exit_1_without_a_traceback(
    funded: CLI, monkeypatch: pytest.MonkeyPatch
) -> None:
    _break_campaign_listing(monkeypatch)
    assert funded("campaigns") == 1
    assert_only_one_line(funded, "starlight campaigns: error: RuntimeError: the disk is on fire")
    assert "and so is the second line" in funded.err
    assert "--debug" in funded.err


@pytest.mark.parametrize("where", ["before", "after"])
def test_debug_shows_the_traceback_of_an_unexpected_error_then_the_line(
    funded: CLI, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    _break_campaign_listing(monkeypatch)
    argv = ["--debug", "campaigns"] if where == "before" else ["campaigns", "--debug"]
    assert funded(*argv) == 1
    assert funded.err.startswith("Traceback (most recent call last):")
    assert "RuntimeError: the disk is on fire" in funded.err
    last = funded.err.strip().splitlines()[-1]
    assert last.startswith("starlight campaigns: error: RuntimeError: the disk is on fire")


def test_debug_shows_the_traceback_of_a_known_error_which_keeps_its_line_and_code(
    funded: CLI,
) -> None:
    assert funded("status", "nope") == 1
    line = funded.err
    assert funded("--debug", "status", "nope") == 1
    assert "Traceback (most recent call last):" in funded.err
    assert funded.err.endswith(line)
    assert funded("--debug", "approve") == 2  # a usage error is argparse's, as before


def test_an_unreadable_database_is_a_one_line_error(cli: CLI) -> None:
    cli.db.parent.mkdir(parents=True)
    cli.db.write_bytes(b"SQLite format 3\0" + b"\xff" * 4096)
    assert cli("campaigns") == 1
    assert_only_one_line(cli, "starlight campaigns: error:", "not a database")


def test_the_program_reports_a_deep_json_file_in_one_line(tmp_path: Path) -> None:
    shape = tmp_path / "deep.json"
    shape.write_text(DEEP_JSON, encoding="utf-8")
    command = [sys.executable, "-m", "starlight_sequences.cli", "estimate"]
    result = subprocess.run(
        [*command, "--shape", str(shape), "--leads", str(shape)],
        env=_env(tmp_path / "s.sqlite3"),
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1, result.stderr
    assert "nested deeper than the limit of 50 levels" in result.stderr


def _env(db: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["STARLIGHT_DB"] = str(db)
    env["STARLIGHT_UNSUBSCRIBE_MAILTO"] = UNSUBSCRIBE_MAILTO
    env.pop("STARLIGHT_WORKSPACE", None)
    return env


def test_the_module_runs_as_a_program_with_the_database_from_the_environment(
    tmp_path: Path,
) -> None:
    db = tmp_path / "s.sqlite3"
    leads = tmp_path / "leads.csv"
    leads.write_text(GOOD_CSV, encoding="utf-8")
    command = [sys.executable, "-m", "starlight_sequences.cli"]

    top_up = subprocess.run(
        [*command, "credits", "top-up", "50"],
        env=_env(db),
        capture_output=True,
        text=True,
        check=False,
    )
    assert top_up.returncode == 0, top_up.stderr
    assert "50 available" in top_up.stdout

    unknown = subprocess.run(
        [*command, "estimate", "--shape", "nope", "--leads", str(leads)],
        env=_env(db),
        capture_output=True,
        text=True,
        check=False,
    )
    assert unknown.returncode == 1
    assert unknown.stderr.count("\n") == 1
    assert unknown.stderr.startswith("starlight estimate: error: no send shape 'nope'")


def test_run_stops_gracefully_on_sigterm(tmp_path: Path) -> None:
    db = tmp_path / "s.sqlite3"
    command = [sys.executable, "-m", "starlight_sequences.cli"]
    subprocess.run(
        [*command, "credits", "top-up", "1"], env=_env(db), check=True, capture_output=True
    )
    worker = subprocess.Popen(
        [*command, "run", "--poll", "0.05", "--worker-id", "w1"],
        env=_env(db),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert worker.stdout is not None
        first = worker.stdout.readline()
        assert first.startswith("Worker w1 dispatching from")
        time.sleep(0.2)
        worker.send_signal(signal.SIGTERM)
        out, err = worker.communicate(timeout=20)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    assert worker.returncode == 0, err
    assert "Stopped after" in out
    assert "Traceback" not in err


def test_ingest_reads_a_reply_to_a_sent_email_and_stops_that_lead(approved: CLI) -> None:
    approved.clock.set(dt.datetime(2026, 11, 30, 14, 45, tzinfo=dt.UTC))
    assert approved("run", "--once") == 0
    sent = sorted((approved.db.parent / "outbox").glob("*.eml"))[0]
    original = email.message_from_bytes(sent.read_bytes(), policy=email.policy.default)
    lead_address = str(original["To"].addresses[0].addr_spec)
    reply = approved.write(
        "reply.eml",
        f"From: {lead_address}\nTo: {original['From']}\nSubject: Re: {original['Subject']}\n"
        f"Message-ID: <reply-1@client.example>\nIn-Reply-To: {original['Message-ID']}\n"
        f"References: {original['Message-ID']}\nDate: Mon, 30 Nov 2026 15:00:00 +0000\n\n"
        "Happy to talk next week.\n",
    )
    assert approved("ingest", str(reply)) == 0, approved.err
    assert ": reply from " in approved.out
    assert "(message_id); reply applied" in approved.out
    assert approved("ingest", str(reply)) == 0
    assert "nothing changed" in approved.out
    garbage = approved.write("junk.eml", "\x00\x01 not mail")
    assert approved("ingest", str(garbage)) == 0
    assert "unmatched from nobody" in approved.out
    assert approved("status", "q1") == 0
    assert "replied" in approved.out


def test_approving_email_without_an_unsubscribe_target_names_the_options(
    created: CLI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("STARLIGHT_UNSUBSCRIBE_MAILTO")
    assert created("approve", "q1") != 0
    assert_one_line_error(created, "--unsubscribe-url", "--unsubscribe-mailto", "--no-unsubscribe")
    assert created("approve", "q1", "--unsubscribe-mailto", "optout@acme.example.com") == 0
    assert "is active" in created.out


def test_run_refuses_to_start_without_an_unsubscribe_target(
    approved: CLI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("STARLIGHT_UNSUBSCRIBE_MAILTO")
    assert approved("run", "--once") != 0
    assert_one_line_error(approved, "unsubscribe target")
    assert approved("run", "--once", "--no-unsubscribe") == 0
