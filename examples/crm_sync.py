"""Mirror what starlight_sequences does into a CRM: a consumer of the activity journal.

It polls :meth:`CampaignService.activities_since` from a cursor it keeps durably in the
storage itself (``load_cursor`` / ``save_cursor``), mirrors each activity into a CRM (here a
fake one: a JSON file), and saves the cursor only once the CRM has the page. A crash between
the two sends the page again, so every update is idempotent: contact fields are set (not
incremented) and each activity is filed under its position, which is unique in the workspace.

Run it against the SQLite file ``starlight demo`` writes::

    starlight demo --out /tmp/demo
    python examples/crm_sync.py --db /tmp/demo/starlight.sqlite3 --workspace demo \\
        --crm /tmp/demo/crm.json

Run it again: it prints ``0 activities mirrored`` until something new happens. ``--follow``
keeps polling (every ``--every`` seconds) until interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from starlight_sequences import ActivityKind, CampaignService, JournalEntry
from starlight_sequences.adapters.clock import SystemClock
from starlight_sequences.adapters.sqlite import SQLiteCreditLedger, SQLiteStorage
from starlight_sequences.adapters.template_drafter import TemplateDrafter
from starlight_sequences.ids import WorkspaceId

CURSOR_NAME = "crm-sync"
"""The name the consumer keeps its cursor under (one per consumer, per workspace)."""

Crm = dict[str, Any]
"""The fake CRM: ``{"contacts": {lead_id: record}, "campaigns": {campaign_id: record}}``."""

_STAGES = {
    ActivityKind.SENT: "in sequence",
    ActivityKind.FAILED: "failed",
    ActivityKind.STOPPED: "stopped",
    ActivityKind.COMPLETED: "finished",
}
"""The stage a contact's campaign record takes on each kind (others leave it as it is)."""

_CAMPAIGN_KINDS = frozenset({*_STAGES, ActivityKind.SKIPPED, ActivityKind.ACCEPTED})
"""The kinds that change a contact's record of one campaign."""


def load_crm(path: Path) -> Crm:
    """The CRM as last written (empty when there is none yet)."""
    if not path.exists():
        return {"contacts": {}, "campaigns": {}}
    loaded: Crm = json.loads(path.read_text(encoding="utf-8"))
    return loaded


def save_crm(path: Path, crm: Crm) -> None:
    """Write the CRM atomically (a temporary file renamed over it): all of it or none."""
    with tempfile.NamedTemporaryFile(
        "w", encoding="utf-8", dir=path.parent, prefix=path.name, delete=False
    ) as tmp:
        json.dump(crm, tmp, indent=2, sort_keys=True)
        tmp.write("\n")
    os.replace(tmp.name, path)


def mirror(crm: Crm, entry: JournalEntry) -> None:
    """Apply one activity to the CRM. Idempotent: applying it twice leaves what once did."""
    activity = entry.activity
    campaign = activity.campaign_id or ""
    if activity.lead_id is None:
        if campaign and activity.kind in (ActivityKind.COMPLETED, ActivityKind.CANCELLED):
            crm["campaigns"][campaign] = {"status": activity.kind.value, "reason": activity.reason}
        return
    contact = crm["contacts"].setdefault(activity.lead_id, {"campaigns": {}, "activities": {}})
    contact["activities"][entry.position] = {
        "kind": activity.kind.value,
        "at": activity.at.isoformat(),
        "campaign": campaign,
        "step": activity.step,
        "reason": activity.reason,
        "detail": activity.detail,
    }
    if not campaign or activity.kind not in _CAMPAIGN_KINDS:
        return  # an inbound event, a draft...: filed above, no stage of its own
    record = contact["campaigns"].setdefault(campaign, {"stage": "enrolled", "steps_sent": []})
    if activity.kind in _STAGES:
        record["stage"] = _STAGES[activity.kind]
    if activity.reason and activity.kind is not ActivityKind.SENT:
        record["reason"] = activity.reason
    if activity.kind is ActivityKind.SENT and activity.step not in record["steps_sent"]:
        record["steps_sent"] = sorted([*record["steps_sent"], activity.step])
    if activity.kind is ActivityKind.ACCEPTED:
        contact["linkedin_connected"] = True


def sync_once(
    service: CampaignService,
    workspace: str,
    crm_path: Path,
    *,
    batch: int = 100,
    cursor_name: str = CURSOR_NAME,
) -> int:
    """Mirror every activity after the saved cursor; returns how many were mirrored.

    Page by page: the CRM is written, then the cursor saved. A crash in between mirrors the
    page again on the next run, which changes nothing (see :func:`mirror`).
    """
    storage = service.storage
    workspace_id = WorkspaceId(workspace)
    mirrored = 0
    while True:
        cursor = storage.load_cursor(workspace_id, cursor_name)
        page = service.activities_since(workspace, cursor, limit=batch)
        if page.entries:
            crm = load_crm(crm_path)
            for entry in page.entries:
                mirror(crm, entry)
            save_crm(crm_path, crm)
            storage.save_cursor(workspace_id, cursor_name, page.cursor)
            mirrored += len(page.entries)
        if not page.more:
            return mirrored


@contextlib.contextmanager
def open_service(database: Path) -> Iterator[CampaignService]:
    """A service on the SQLite file (reading the journal needs no sender), closed after."""
    with SQLiteStorage(database) as storage, SQLiteCreditLedger(database) as ledger:
        yield CampaignService(
            storage=storage, ledger=ledger, drafter=TemplateDrafter(), clock=SystemClock()
        )


def main(argv: Sequence[str] | None = None) -> int:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", type=Path, required=True, help="the starlight SQLite file")
    parser.add_argument("--workspace", required=True, help="whose activities to mirror")
    parser.add_argument("--crm", type=Path, required=True, help="the fake CRM's JSON file")
    parser.add_argument("--batch", type=int, default=100, help="activities per page (1-1000)")
    parser.add_argument("--follow", action="store_true", help="keep polling")
    parser.add_argument("--every", type=float, default=5.0, help="seconds between polls")
    args = parser.parse_args(argv)
    if not args.db.exists():
        print(f"crm_sync: no database at {args.db}", file=sys.stderr)
        return 2
    with open_service(args.db) as service:
        try:
            while True:
                count = sync_once(service, args.workspace, args.crm, batch=args.batch)
                print(f"{count} activities mirrored into {args.crm}")
                if not args.follow:
                    return 0
                time.sleep(args.every)
        except KeyboardInterrupt:
            return 0


if __name__ == "__main__":
    sys.exit(main())
