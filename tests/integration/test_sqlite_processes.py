"""Several real worker processes claiming sends from one SQLite file.

Workers are started with the "spawn" method (a fresh interpreter each, as a dispatcher on one
host would run). Time is simulated: each worker is told "now", so a lease expires exactly when
the test says so, without sleeping.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import multiprocessing
import multiprocessing.synchronize
import os
import signal
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import attrs

from starlight_sequences.adapters.sqlite import MIGRATIONS, SQLiteStorage
from starlight_sequences.campaigns import ScheduledSend, SendStatus
from starlight_sequences.errors import LeaseLost
from starlight_sequences.ports.storage import Changes
from tests.contract.conftest import T0, WS, make_campaign, make_send

SENDS = 2_000
LEASE = dt.timedelta(minutes=5)
BATCH = 20
JOIN_TIMEOUT = 60.0


def _seed(path: Path) -> list[ScheduledSend]:
    """A file holding one active campaign and SENDS sends, all due before T0."""
    campaign = make_campaign()
    sends = [
        make_send(campaign, f"lead-{n:05}", due_at=T0 - dt.timedelta(seconds=n))
        for n in range(SENDS)
    ]
    with SQLiteStorage(path) as storage:
        storage.commit(WS, Changes(campaigns=(campaign,), sends=tuple(sends)))
    return sends


def _send_all(storage: SQLiteStorage, worker: str, now: dt.datetime, log: dict[str, list]) -> None:
    """Claim and finish as SENT until nothing is due at ``now``."""
    while batch := storage.claim_due(now, worker_id=worker, lease=LEASE, limit=BATCH):
        for send in batch:
            _finish(storage, worker, now, send, log)


def _finish(
    storage: SQLiteStorage,
    worker: str,
    now: dt.datetime,
    send: ScheduledSend,
    log: dict[str, list],
) -> None:
    sent = attrs.evolve(
        send, status=SendStatus.SENT, sent_at=now, receipt=worker, revision=send.revision + 1
    )
    try:
        storage.finish_send(sent, worker_id=worker, now=now)
    except LeaseLost:
        log["lease_lost"].append(send.id)
    else:
        log["finished"].append([send.id, send.attempts])


def _write(out: Path, log: dict[str, list]) -> None:
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(log))
    tmp.replace(out)


def claiming_worker(
    path: str, worker: str, out: str, start: multiprocessing.synchronize.Barrier
) -> None:
    """Wait for the others, then claim and send until nothing is due; log what it sent."""
    log: dict[str, list] = {"finished": [], "lease_lost": []}
    with SQLiteStorage(path) as storage:
        start.wait(JOIN_TIMEOUT)
        _send_all(storage, worker, T0, log)
    _write(Path(out), log)


def doomed_worker(
    path: str,
    worker: str,
    out: str,
    start: multiprocessing.synchronize.Barrier,
    holding: multiprocessing.synchronize.Event,
) -> None:
    """Send one batch, claim a second, report it, and wait to be killed while holding it."""
    log: dict[str, list] = {"finished": [], "lease_lost": [], "held": []}
    storage = SQLiteStorage(path)
    start.wait(JOIN_TIMEOUT)
    for send in storage.claim_due(T0, worker_id=worker, lease=LEASE, limit=BATCH):
        _finish(storage, worker, T0, send, log)
    log["held"] = [s.id for s in storage.claim_due(T0, worker_id=worker, lease=LEASE, limit=BATCH)]
    _write(Path(out), log)
    holding.set()
    time.sleep(600)


def surviving_worker(
    path: str,
    worker: str,
    out: str,
    start: multiprocessing.synchronize.Barrier,
    phase: multiprocessing.synchronize.Barrier,
) -> None:
    """Send what is due at T0; then, once every survivor is done, what is due after the lease."""
    log: dict[str, list] = {"finished": [], "lease_lost": []}
    with SQLiteStorage(path) as storage:
        start.wait(JOIN_TIMEOUT)
        _send_all(storage, worker, T0, log)
        phase.wait(JOIN_TIMEOUT)
        _send_all(storage, worker, T0 + LEASE, log)
    _write(Path(out), log)


def _read(out: Path) -> dict[str, list]:
    data: dict[str, list] = json.loads(out.read_text())
    return data


def _join(processes: list[multiprocessing.process.BaseProcess]) -> None:
    for process in processes:
        process.join(JOIN_TIMEOUT)
        assert process.exitcode == 0, f"{process.name} exited with {process.exitcode}"


@contextlib.contextmanager
def _reaped(*processes: multiprocessing.process.BaseProcess) -> Iterator[None]:
    """Start the processes; on the way out, kill any the test left running (it failed)."""
    for process in processes:
        process.start()
    try:
        yield
    finally:
        for process in processes:
            if process.is_alive():
                process.kill()
                process.join()


def test_four_processes_send_every_due_send_exactly_once(tmp_path: Path) -> None:
    path = tmp_path / "dispatch.sqlite3"
    sends = _seed(path)
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Barrier(4)
    outs = [tmp_path / f"w{n}.json" for n in range(4)]
    processes = [
        ctx.Process(
            target=claiming_worker, args=(str(path), f"w{n}", str(out), start), name=f"w{n}"
        )
        for n, out in enumerate(outs)
    ]
    with _reaped(*processes):
        _join(processes)

    logs = [_read(out) for out in outs]
    finished = Counter(send_id for log in logs for send_id, _ in log["finished"])
    assert finished == Counter(s.id for s in sends)
    assert all(log["lease_lost"] == [] for log in logs)
    assert sum(1 for log in logs if log["finished"]) >= 2, "the workers did not overlap"
    with SQLiteStorage(path) as storage:
        stored = storage.list_sends(WS, sends[0].campaign_id)
    assert {s.status for s in stored} == {SendStatus.SENT}
    assert {s.attempts for s in stored} == {1}
    by_worker = Counter(s.receipt for s in stored)
    assert sum(by_worker.values()) == SENDS


def test_the_sends_of_a_killed_worker_are_reclaimed_after_its_lease_expires(
    tmp_path: Path,
) -> None:
    path = tmp_path / "dispatch.sqlite3"
    sends = _seed(path)
    ctx = multiprocessing.get_context("spawn")
    start, phase, holding = ctx.Barrier(4), ctx.Barrier(3), ctx.Event()
    doomed_out = tmp_path / "doomed.json"
    doomed = ctx.Process(
        target=doomed_worker, args=(str(path), "doomed", str(doomed_out), start, holding)
    )
    outs = [tmp_path / f"s{n}.json" for n in range(3)]
    survivors = [
        ctx.Process(target=surviving_worker, args=(str(path), f"s{n}", str(out), start, phase))
        for n, out in enumerate(outs)
    ]
    with _reaped(doomed, *survivors):
        assert holding.wait(JOIN_TIMEOUT), "the doomed worker never claimed its second batch"
        assert doomed.pid is not None
        os.kill(doomed.pid, signal.SIGKILL)
        doomed.join(JOIN_TIMEOUT)
        assert doomed.exitcode == -signal.SIGKILL
        _join(survivors)

    doomed_log = _read(doomed_out)
    held = set(doomed_log["held"])
    assert held, "the doomed worker held nothing when it was killed"
    logs = [doomed_log, *(_read(out) for out in outs)]
    finished = Counter(send_id for log in logs for send_id, _ in log["finished"])
    assert finished == Counter(s.id for s in sends), "a send was lost or sent twice"
    assert all(log["lease_lost"] == [] for log in logs)
    attempts = {send_id: n for log in logs for send_id, n in log["finished"]}
    assert {send_id for send_id, n in attempts.items() if n == 2} == held
    assert {n for send_id, n in attempts.items() if send_id not in held} == {1}
    with SQLiteStorage(path) as storage:
        stored = storage.list_sends(WS, sends[0].campaign_id)
    assert {s.status for s in stored} == {SendStatus.SENT}
    assert "doomed" not in {s.receipt for s in stored if s.id in held}


def opening_worker(path: str, out: str, start: multiprocessing.synchronize.Barrier) -> None:
    """Open (and so create and migrate) the file at the same moment as the others."""
    start.wait(JOIN_TIMEOUT)
    with SQLiteStorage(path) as storage:
        Path(out).write_text(str(storage.schema_version))


def test_processes_opening_a_new_file_at_once_all_get_the_whole_schema(tmp_path: Path) -> None:
    path = tmp_path / "new.sqlite3"
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Barrier(4)
    outs = [tmp_path / f"open{n}.txt" for n in range(4)]
    processes = [
        ctx.Process(target=opening_worker, args=(str(path), str(out), start)) for out in outs
    ]
    with _reaped(*processes):
        _join(processes)
    assert {out.read_text() for out in outs} == {str(len(MIGRATIONS))}
