"""LinkedInTaskSender over the in-memory and the JSON-lines file queues."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import attrs
import pytest

from starlight_sequences.adapters.linkedin_tasks import (
    InMemoryLinkedInTaskQueue,
    LinkedInTask,
    LinkedInTaskFile,
    LinkedInTaskQueue,
    LinkedInTaskSender,
    TaskStatus,
    task_id_for,
)
from starlight_sequences.campaigns import ScheduledSend, SendStatus, send_id_for
from starlight_sequences.channels import Action
from starlight_sequences.errors import AdapterError, IllegalTransition, NotFound
from starlight_sequences.ids import CampaignId, LeadId, SenderId, WorkspaceId
from starlight_sequences.ports.senders import LinkedInAction, SendFailure, SendReceipt

ACME = WorkspaceId("acme")
GLOBEX = WorkspaceId("globex")


def service_key(workspace: WorkspaceId, campaign: str, lead: str, step: int) -> str:
    """The idempotency key the service gives that send (from a real ScheduledSend)."""
    at = dt.datetime(2026, 12, 1, 10, tzinfo=dt.UTC)
    return ScheduledSend(
        id=send_id_for(CampaignId(campaign), LeadId(lead), step),
        workspace_id=workspace,
        campaign_id=CampaignId(campaign),
        lead_id=LeadId(lead),
        step=step,
        action=Action.LINKEDIN_MESSAGE,
        sender_id=SenderId("li-sam"),
        due_at=at,
        forecast_at=at,
        status=SendStatus.SCHEDULED,
    ).idempotency_key


def action_for(
    workspace: WorkspaceId = ACME, lead: str = "ana", step: int = 3, **changes: object
) -> LinkedInAction:
    """MESSAGE for that lead and step of workspace's campaign c1, with the service's key."""
    return attrs.evolve(
        MESSAGE,
        idempotency_key=service_key(workspace, "c1", lead, step),
        lead_id=LeadId(lead),
        step=step,
        **changes,
    )


CONNECT = LinkedInAction(
    idempotency_key=service_key(ACME, "c1", "ana", 2),
    sender_id=SenderId("li-sam"),
    action=Action.LINKEDIN_CONNECT,
    profile_url="https://www.linkedin.com/in/ana-silva",
    recipient_name="Ana Silva",
    text="Hi Ana, I came across your work at Acme and would be glad to connect.",
    campaign_id=CampaignId("c1"),
    lead_id=LeadId("ana"),
    step=2,
)
MESSAGE = attrs.evolve(
    CONNECT,
    idempotency_key=service_key(ACME, "c1", "ana", 3),
    action=Action.LINKEDIN_MESSAGE,
    text="Hi Ana, thanks for connecting. How do you handle month-end today?",
    step=3,
)

QueueFactory = Callable[[Path], LinkedInTaskQueue]
QUEUES: dict[str, QueueFactory] = {
    "memory": lambda _: InMemoryLinkedInTaskQueue(),
    "file": lambda folder: LinkedInTaskFile(folder / "tasks" / "linkedin.jsonl"),
}


@pytest.fixture(params=sorted(QUEUES))
def queue(request: pytest.FixtureRequest, tmp_path: Path) -> LinkedInTaskQueue:
    factory: QueueFactory = QUEUES[request.param]
    return factory(tmp_path)


def test_an_action_becomes_a_pending_task_ready_to_copy(queue: LinkedInTaskQueue) -> None:
    sender = LinkedInTaskSender(queue)
    receipt = sender.send_linkedin(CONNECT)
    assert receipt == SendReceipt(message_id=task_id_for(CONNECT.idempotency_key))
    (task,) = queue.pending(ACME)
    assert task.id == receipt.message_id
    assert task.text == CONNECT.text
    assert task.profile_url == CONNECT.profile_url
    assert task.account == "li-sam"
    assert task.status is TaskStatus.PENDING
    assert "connection request" in task.instructions
    assert "with the note below" in task.instructions


def test_sending_the_same_key_twice_queues_one_task(queue: LinkedInTaskQueue) -> None:
    sender = LinkedInTaskSender(queue)
    first = sender.send_linkedin(CONNECT)
    second = sender.send_linkedin(attrs.evolve(CONNECT, text="changed"))
    assert first == second
    assert [t.text for t in queue.tasks(ACME)] == [CONNECT.text]


def test_tasks_keep_their_order_and_leave_pending_when_done_or_failed(
    queue: LinkedInTaskQueue,
) -> None:
    sender = LinkedInTaskSender(queue)
    actions = [action_for(lead=f"lead-{n}") for n in range(4)]
    ids = [sender.send_linkedin(a) for a in actions]
    assert all(isinstance(r, SendReceipt) for r in ids)
    done = queue.complete(ACME, task_id_for(actions[1].idempotency_key))
    failed = queue.fail(ACME, task_id_for(actions[2].idempotency_key), "profile no longer exists")
    assert done.status is TaskStatus.DONE
    assert failed.reason == "profile no longer exists"
    assert [t.lead_id for t in queue.pending(ACME)] == ["lead-0", "lead-3"]
    assert [t.lead_id for t in queue.tasks(ACME)] == [f"lead-{n}" for n in range(4)]
    assert queue.get(ACME, failed.id).status is TaskStatus.FAILED


def test_reporting_twice_is_harmless_but_done_and_failed_do_not_mix(
    queue: LinkedInTaskQueue,
) -> None:
    LinkedInTaskSender(queue).send_linkedin(CONNECT)
    task_id = task_id_for(CONNECT.idempotency_key)
    assert queue.complete(ACME, task_id) == queue.complete(ACME, task_id)
    with pytest.raises(IllegalTransition, match="already done"):
        queue.fail(ACME, task_id, "oops")


def test_unknown_tasks_are_not_found(queue: LinkedInTaskQueue) -> None:
    with pytest.raises(NotFound):
        queue.complete(ACME, "li-nope")
    with pytest.raises(NotFound):
        queue.get(ACME, "li-nope")


def test_a_failed_task_makes_a_retried_send_a_permanent_failure(
    queue: LinkedInTaskQueue,
) -> None:
    sender = LinkedInTaskSender(queue)
    sender.send_linkedin(MESSAGE)
    queue.fail(ACME, task_id_for(MESSAGE.idempotency_key), "account restricted")
    result = sender.send_linkedin(MESSAGE)
    assert isinstance(result, SendFailure)
    assert result.permanent
    assert "account restricted" in result.reason


def test_a_message_without_text_is_refused(queue: LinkedInTaskQueue) -> None:
    result = LinkedInTaskSender(queue).send_linkedin(attrs.evolve(MESSAGE, text=None))
    assert isinstance(result, SendFailure)
    assert result.permanent
    assert queue.tasks(ACME) == []


def test_a_connection_request_without_note_says_so() -> None:
    task = LinkedInTask.from_action(attrs.evolve(CONNECT, text=None))
    assert "without a note" in task.instructions


def test_the_default_queue_is_in_memory() -> None:
    sender = LinkedInTaskSender()
    sender.send_linkedin(CONNECT)
    assert len(sender.queue.pending(ACME)) == 1


# --------------------------------------------------------------------------- workspaces


def test_each_workspace_sees_and_completes_only_its_own_tasks(queue: LinkedInTaskQueue) -> None:
    sender = LinkedInTaskSender(queue)
    ours, theirs = action_for(ACME), action_for(GLOBEX, text="Globex's private note")
    sender.send_linkedin(ours)
    sender.send_linkedin(theirs)
    their_id = task_id_for(theirs.idempotency_key)

    assert [t.text for t in queue.pending(ACME)] == [ours.text]
    assert [t.text for t in queue.tasks(GLOBEX)] == ["Globex's private note"]
    for change in (
        lambda: queue.complete(ACME, their_id),
        lambda: queue.fail(ACME, their_id, "nope"),
        lambda: queue.get(ACME, their_id),
    ):
        with pytest.raises(NotFound, match="in workspace 'acme'"):
            change()
    assert queue.get(GLOBEX, their_id).status is TaskStatus.PENDING
    assert queue.complete(GLOBEX, their_id).workspace_id == GLOBEX


def test_a_task_of_another_workspace_is_not_found_even_when_already_done(
    queue: LinkedInTaskQueue,
) -> None:
    # Not IllegalTransition: that would tell the other workspace the task exists.
    theirs = action_for(GLOBEX)
    LinkedInTaskSender(queue).send_linkedin(theirs)
    queue.complete(GLOBEX, task_id_for(theirs.idempotency_key))
    with pytest.raises(NotFound):
        queue.fail(ACME, task_id_for(theirs.idempotency_key), "x")


def test_a_recorded_workspace_decides_and_a_foreign_key_belongs_to_no_workspace() -> None:
    recorded = LinkedInTask.from_action(
        attrs.evolve(MESSAGE, idempotency_key="host-key-1"), workspace_id=GLOBEX
    )
    assert recorded.in_workspace(GLOBEX)
    assert not recorded.in_workspace(ACME)
    foreign = LinkedInTask.from_action(attrs.evolve(MESSAGE, idempotency_key="host-key-2"))
    assert not foreign.in_workspace(ACME)
    assert not foreign.in_workspace(GLOBEX)


def test_the_workspace_is_recognised_by_the_services_key() -> None:
    task = LinkedInTask.from_action(action_for(ACME, lead="bo", step=2))
    assert task.workspace_id is None
    assert task.in_workspace(ACME)
    assert not task.in_workspace(GLOBEX)
    # The same campaign, lead and step in another workspace is another send.
    assert not LinkedInTask.from_action(action_for(GLOBEX, lead="bo", step=2)).in_workspace(ACME)


def test_a_task_file_written_before_tasks_carried_a_workspace_is_read_and_scoped(
    tmp_path: Path,
) -> None:
    path = tmp_path / "linkedin.jsonl"
    old_lines = []
    for workspace in (ACME, GLOBEX):
        line = LinkedInTask.from_action(action_for(workspace)).to_dict()
        del line["workspace_id"]  # the format before this version
        old_lines.append(json.dumps(line))
    path.write_text("\n".join(old_lines) + "\n", encoding="utf-8")
    queue = LinkedInTaskFile(path)

    (ours,) = queue.pending(ACME)
    (theirs,) = queue.pending(GLOBEX)
    assert ours.idempotency_key == action_for(ACME).idempotency_key
    with pytest.raises(NotFound):
        queue.complete(ACME, theirs.id)
    # Completing records the workspace: the old line stays, the new one carries it.
    queue.complete(ACME, ours.id)
    last = json.loads(path.read_text(encoding="utf-8").splitlines()[-1])
    assert last["workspace_id"] == "acme"
    assert last["status"] == "done"
    assert LinkedInTaskFile(path).pending(ACME) == []
    assert len(LinkedInTaskFile(path).pending(GLOBEX)) == 1


def test_a_workspace_that_is_not_a_string_is_a_corrupt_line(tmp_path: Path) -> None:
    line = LinkedInTask.from_action(CONNECT).to_dict() | {"workspace_id": 7}
    path = tmp_path / "linkedin.jsonl"
    path.write_text(json.dumps(line) + "\n", encoding="utf-8")
    with pytest.raises(AdapterError, match="line 1"):
        LinkedInTaskFile(path).tasks(ACME)


# --------------------------------------------------------------------------- the file


def test_the_file_queue_is_shared_by_every_instance_on_the_same_file(tmp_path: Path) -> None:
    path = tmp_path / "linkedin.jsonl"
    LinkedInTaskSender(LinkedInTaskFile(path)).send_linkedin(CONNECT)
    LinkedInTaskFile(path).complete(ACME, task_id_for(CONNECT.idempotency_key))
    reread = LinkedInTaskFile(path)
    assert reread.pending(ACME) == []
    assert reread.tasks(ACME)[0].status is TaskStatus.DONE
    lines = path.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["status"] for line in lines] == ["pending", "done"]


def test_a_torn_last_line_is_ignored_and_cut_off_by_the_next_write(tmp_path: Path) -> None:
    path = tmp_path / "linkedin.jsonl"
    queue = LinkedInTaskFile(path)
    LinkedInTaskSender(queue).send_linkedin(CONNECT)
    with path.open("a", encoding="utf-8") as handle:
        handle.write('{"id": "li-torn", "idempo')
    assert len(queue.tasks(ACME)) == 1
    LinkedInTaskSender(queue).send_linkedin(MESSAGE)
    assert [t.step for t in queue.tasks(ACME)] == [2, 3]
    assert "li-torn" not in path.read_text(encoding="utf-8")


def test_a_corrupt_line_in_the_middle_is_an_adapter_error(tmp_path: Path) -> None:
    path = tmp_path / "linkedin.jsonl"
    path.write_text('not json\n{"also": "not a task"}\n', encoding="utf-8")
    with pytest.raises(AdapterError, match="line 1"):
        LinkedInTaskFile(path).pending(ACME)


def test_processes_enqueueing_at_once_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "linkedin.jsonl"
    script = textwrap.dedent(
        """
        import sys
        from starlight_sequences.adapters.linkedin_tasks import LinkedInTaskFile
        from starlight_sequences.adapters.linkedin_tasks import LinkedInTaskSender
        from tests.integration.test_linkedin_tasks import action_for
        sender = LinkedInTaskSender(LinkedInTaskFile(sys.argv[1]))
        for n in range(25):
            sender.send_linkedin(action_for(lead=f"lead-{sys.argv[2]}-{n}"))
            sender.send_linkedin(action_for(lead=f"shared-{n}"))
        """
    )
    root = Path(__file__).resolve().parents[2]
    workers = [
        subprocess.Popen([sys.executable, "-c", script, str(path), str(w)], cwd=root)
        for w in range(3)
    ]
    assert [w.wait(timeout=60) for w in workers] == [0, 0, 0]
    tasks = LinkedInTaskFile(path).tasks(ACME)
    assert len(tasks) == 3 * 25 + 25
    assert len(path.read_text(encoding="utf-8").splitlines()) == len(tasks)
