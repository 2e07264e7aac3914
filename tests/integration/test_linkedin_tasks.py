"""LinkedInTaskSender over the in-memory and the JSON-lines file queues."""

from __future__ import annotations

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
from starlight_sequences.channels import Action
from starlight_sequences.errors import AdapterError, IllegalTransition, NotFound
from starlight_sequences.ids import CampaignId, LeadId, SenderId
from starlight_sequences.ports.senders import LinkedInAction, SendFailure, SendReceipt

CONNECT = LinkedInAction(
    idempotency_key="stl-connect-1",
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
    idempotency_key="stl-message-1",
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
    (task,) = queue.pending()
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
    assert [t.text for t in queue.tasks()] == [CONNECT.text]


def test_tasks_keep_their_order_and_leave_pending_when_done_or_failed(
    queue: LinkedInTaskQueue,
) -> None:
    sender = LinkedInTaskSender(queue)
    actions = [attrs.evolve(MESSAGE, idempotency_key=f"stl-{n}") for n in range(4)]
    ids = [sender.send_linkedin(a) for a in actions]
    assert all(isinstance(r, SendReceipt) for r in ids)
    done = queue.complete(task_id_for("stl-1"))
    failed = queue.fail(task_id_for("stl-2"), "profile no longer exists")
    assert done.status is TaskStatus.DONE
    assert failed.reason == "profile no longer exists"
    assert [t.idempotency_key for t in queue.pending()] == ["stl-0", "stl-3"]
    assert [t.idempotency_key for t in queue.tasks()] == [f"stl-{n}" for n in range(4)]
    assert queue.get(task_id_for("stl-2")).status is TaskStatus.FAILED


def test_reporting_twice_is_harmless_but_done_and_failed_do_not_mix(
    queue: LinkedInTaskQueue,
) -> None:
    LinkedInTaskSender(queue).send_linkedin(CONNECT)
    task_id = task_id_for(CONNECT.idempotency_key)
    assert queue.complete(task_id) == queue.complete(task_id)
    with pytest.raises(IllegalTransition, match="already done"):
        queue.fail(task_id, "oops")


def test_unknown_tasks_are_not_found(queue: LinkedInTaskQueue) -> None:
    with pytest.raises(NotFound):
        queue.complete("li-nope")
    with pytest.raises(NotFound):
        queue.get("li-nope")


def test_a_failed_task_makes_a_retried_send_a_permanent_failure(
    queue: LinkedInTaskQueue,
) -> None:
    sender = LinkedInTaskSender(queue)
    sender.send_linkedin(MESSAGE)
    queue.fail(task_id_for(MESSAGE.idempotency_key), "account restricted")
    result = sender.send_linkedin(MESSAGE)
    assert isinstance(result, SendFailure)
    assert result.permanent
    assert "account restricted" in result.reason


def test_a_message_without_text_is_refused(queue: LinkedInTaskQueue) -> None:
    result = LinkedInTaskSender(queue).send_linkedin(attrs.evolve(MESSAGE, text=None))
    assert isinstance(result, SendFailure)
    assert result.permanent
    assert queue.tasks() == []


def test_a_connection_request_without_note_says_so() -> None:
    task = LinkedInTask.from_action(attrs.evolve(CONNECT, text=None))
    assert "without a note" in task.instructions


def test_the_default_queue_is_in_memory() -> None:
    sender = LinkedInTaskSender()
    sender.send_linkedin(CONNECT)
    assert len(sender.queue.pending()) == 1


def test_the_file_queue_is_shared_by_every_instance_on_the_same_file(tmp_path: Path) -> None:
    path = tmp_path / "linkedin.jsonl"
    LinkedInTaskSender(LinkedInTaskFile(path)).send_linkedin(CONNECT)
    LinkedInTaskFile(path).complete(task_id_for(CONNECT.idempotency_key))
    reread = LinkedInTaskFile(path)
    assert reread.pending() == []
    assert reread.tasks()[0].status is TaskStatus.DONE
    lines = path.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["status"] for line in lines] == ["pending", "done"]


def test_a_torn_last_line_is_ignored_and_cut_off_by_the_next_write(tmp_path: Path) -> None:
    path = tmp_path / "linkedin.jsonl"
    queue = LinkedInTaskFile(path)
    LinkedInTaskSender(queue).send_linkedin(CONNECT)
    with path.open("a", encoding="utf-8") as handle:
        handle.write('{"id": "li-torn", "idempo')
    assert len(queue.tasks()) == 1
    LinkedInTaskSender(queue).send_linkedin(MESSAGE)
    assert [t.idempotency_key for t in queue.tasks()] == ["stl-connect-1", "stl-message-1"]
    assert "li-torn" not in path.read_text(encoding="utf-8")


def test_a_corrupt_line_in_the_middle_is_an_adapter_error(tmp_path: Path) -> None:
    path = tmp_path / "linkedin.jsonl"
    path.write_text('not json\n{"also": "not a task"}\n', encoding="utf-8")
    with pytest.raises(AdapterError, match="line 1"):
        LinkedInTaskFile(path).pending()


def test_processes_enqueueing_at_once_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "linkedin.jsonl"
    script = textwrap.dedent(
        """
        import sys
        import attrs
        from starlight_sequences.adapters.linkedin_tasks import LinkedInTaskFile
        from starlight_sequences.adapters.linkedin_tasks import LinkedInTaskSender
        from tests.integration.test_linkedin_tasks import MESSAGE
        sender = LinkedInTaskSender(LinkedInTaskFile(sys.argv[1]))
        for n in range(25):
            key = f"stl-{sys.argv[2]}-{n}"
            sender.send_linkedin(attrs.evolve(MESSAGE, idempotency_key=key))
            sender.send_linkedin(attrs.evolve(MESSAGE, idempotency_key=f"stl-shared-{n}"))
        """
    )
    root = Path(__file__).resolve().parents[2]
    workers = [
        subprocess.Popen([sys.executable, "-c", script, str(path), str(w)], cwd=root)
        for w in range(3)
    ]
    assert [w.wait(timeout=60) for w in workers] == [0, 0, 0]
    tasks = LinkedInTaskFile(path).tasks()
    assert len(tasks) == 3 * 25 + 25
    assert len(path.read_text(encoding="utf-8").splitlines()) == len(tasks)
