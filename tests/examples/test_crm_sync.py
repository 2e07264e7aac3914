"""``examples/crm_sync.py``: a CRM mirror of the demo's journal, kept in step by a durable
cursor, idempotent when a page comes again after a crash."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from starlight_sequences.campaigns import EnrolmentStatus, SendStatus
from starlight_sequences.demo import CAMPAIGN, WORKSPACE, run_demo
from starlight_sequences.events import EventKind, InboundEvent
from starlight_sequences.ids import LeadId
from starlight_sequences.service import CampaignService

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "crm_sync.py"


def _load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("crm_sync_example", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


crm_sync = _load_example()


@pytest.fixture(scope="module")
def demo_database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The SQLite file ``starlight demo`` writes (made once; each test copies it)."""
    folder = tmp_path_factory.mktemp("demo")
    run_demo(folder, say=lambda line: None)
    return folder / "starlight.sqlite3"


@pytest.fixture
def database(demo_database: Path, tmp_path: Path) -> Path:
    # The demo leaves part of its writes in the WAL file: copy the database with it.
    for part in demo_database.parent.glob(demo_database.name + "*"):
        shutil.copyfile(part, tmp_path / part.name)
    return tmp_path / demo_database.name


@pytest.fixture
def service(database: Path) -> Iterator[CampaignService]:
    with crm_sync.open_service(database) as opened:
        yield opened


def test_the_script_mirrors_the_demo_into_the_crm_and_then_has_nothing_new(
    database: Path, tmp_path: Path
) -> None:
    crm = tmp_path / "crm.json"
    command = [
        sys.executable,
        str(EXAMPLE),
        "--db",
        str(database),
        "--workspace",
        WORKSPACE,
        "--crm",
        str(crm),
        "--batch",
        "7",
    ]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    first = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
    assert first.stdout.split()[0] != "0"
    mirrored = json.loads(crm.read_text())
    again = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
    assert again.stdout.startswith("0 activities mirrored")
    assert json.loads(crm.read_text()) == mirrored


def test_the_crm_holds_what_the_campaign_did_to_each_contact(
    service: CampaignService, tmp_path: Path
) -> None:
    crm_path = tmp_path / "crm.json"
    crm_sync.sync_once(service, WORKSPACE, crm_path, batch=5)
    crm = json.loads(crm_path.read_text())
    assert crm["campaigns"][CAMPAIGN]["status"] == "completed"
    for enrolment in service.storage.list_enrolments(WORKSPACE, CAMPAIGN):
        record = crm["contacts"][enrolment.lead_id]["campaigns"][CAMPAIGN]
        sent = sorted(
            s.step
            for s in service.storage.list_sends(WORKSPACE, CAMPAIGN, enrolment.lead_id)
            if s.status is SendStatus.SENT
        )
        assert record["steps_sent"] == sent, enrolment.lead_id
        stage = "stopped" if enrolment.status is EnrolmentStatus.REPLIED else "finished"
        assert record["stage"] == stage, enrolment.lead_id


def test_a_page_mirrored_again_after_a_crash_changes_nothing(
    service: CampaignService, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    crm_path = tmp_path / "crm.json"
    cleanly = tmp_path / "clean.json"
    crm_sync.sync_once(service, WORKSPACE, cleanly, batch=1000, cursor_name="clean")
    monkeypatch.setattr(service.storage, "save_cursor", _crash)
    with pytest.raises(SystemExit):  # wrote the CRM, died before saving the cursor
        crm_sync.sync_once(service, WORKSPACE, crm_path, batch=1000)
    monkeypatch.undo()
    assert service.storage.load_cursor(WORKSPACE, crm_sync.CURSOR_NAME) is None
    crm_sync.sync_once(service, WORKSPACE, crm_path, batch=1000)  # the page comes again
    assert json.loads(crm_path.read_text()) == json.loads(cleanly.read_text())


def _crash(*args: object) -> None:
    raise SystemExit("killed")


def test_new_activities_are_mirrored_from_the_saved_cursor_only(
    service: CampaignService, tmp_path: Path
) -> None:
    crm_path = tmp_path / "crm.json"
    assert crm_sync.sync_once(service, WORKSPACE, crm_path) > 0
    lead = LeadId("maya")
    before = json.loads(crm_path.read_text())["contacts"][lead]["activities"]
    service.report_event(
        WORKSPACE,
        InboundEvent(kind=EventKind.UNSUBSCRIBE, lead_id=lead, at=service.clock.now()),
    )
    assert crm_sync.sync_once(service, WORKSPACE, crm_path) == 1  # maya had finished already
    after = json.loads(crm_path.read_text())["contacts"][lead]["activities"]
    [new] = [after[position] for position in after.keys() - before.keys()]
    assert (new["kind"], new["detail"]) == ("event", "unsubscribe")
