"""LinkedIn actions as tasks for a person (or an outside automation) to perform.

LinkedIn offers no public API for connection requests and messages, so
:class:`LinkedInTaskSender` turns each action into a :class:`LinkedInTask` (the profile URL,
the account to use, the note or message ready to copy) in a task queue. Whoever works the
queue marks each task ``complete`` or ``fail``. Acceptances and replies are not tasks: they come
back through the service's inbound events.

Two queues ship: :class:`InMemoryLinkedInTaskQueue` and :class:`LinkedInTaskFile`, a JSON-lines
file that the CLI and several processes can share.
"""

from __future__ import annotations

import contextlib
import enum
import hashlib
import json
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, Protocol

import attrs

from starlight_sequences.channels import Action
from starlight_sequences.errors import AdapterError, IllegalTransition, NotFound
from starlight_sequences.ids import CampaignId, LeadId, SenderId
from starlight_sequences.ports.senders import LinkedInAction, SendFailure, SendReceipt

if sys.platform != "win32":
    import fcntl

    def _lock_file(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_EX)

    def _unlock_file(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)

else:  # pragma: no cover - Windows has no flock; the in-process lock is all there is.

    def _lock_file(fd: int) -> None:
        pass

    def _unlock_file(fd: int) -> None:
        pass


__all__ = [
    "InMemoryLinkedInTaskQueue",
    "LinkedInTask",
    "LinkedInTaskFile",
    "LinkedInTaskQueue",
    "LinkedInTaskSender",
    "TaskStatus",
    "task_id_for",
]


class TaskStatus(enum.StrEnum):
    """Where a LinkedIn task stands."""

    PENDING = "pending"
    """Waiting for someone to do it."""
    DONE = "done"
    """Performed on LinkedIn (a request sent, a message sent)."""
    FAILED = "failed"
    """Could not be performed; ``reason`` says why."""


def task_id_for(idempotency_key: str) -> str:
    """The task id of the action with that idempotency key (stable across processes)."""
    return "li-" + hashlib.sha256(idempotency_key.encode()).hexdigest()[:16]


@attrs.frozen(kw_only=True)
class LinkedInTask:
    """One LinkedIn action for a person to perform.

    Attributes:
        id: :func:`task_id_for` the idempotency key.
        idempotency_key: of the send it performs.
        account: the LinkedIn account (sender identity) to act from.
        action: ``linkedin_connect`` or ``linkedin_message``.
        profile_url: whom to act on.
        recipient_name: their name, for the person doing it.
        text: the note or message to paste; None for a connection request without note.
        campaign_id, lead_id, step: what it belongs to.
        status: pending, done or failed.
        reason: why it failed ("" otherwise).
    """

    id: str
    idempotency_key: str
    account: SenderId
    action: Action
    profile_url: str
    recipient_name: str
    text: str | None
    campaign_id: CampaignId
    lead_id: LeadId
    step: int
    status: TaskStatus = TaskStatus.PENDING
    reason: str = ""

    @classmethod
    def from_action(cls, action: LinkedInAction) -> LinkedInTask:
        """The pending task that performs ``action``."""
        return cls(
            id=task_id_for(action.idempotency_key),
            idempotency_key=action.idempotency_key,
            account=action.sender_id,
            action=action.action,
            profile_url=action.profile_url,
            recipient_name=action.recipient_name,
            text=action.text,
            campaign_id=action.campaign_id,
            lead_id=action.lead_id,
            step=action.step,
        )

    @property
    def instructions(self) -> str:
        """What to do, in one sentence, for a person working the queue."""
        who = self.recipient_name or "this person"
        if self.action is Action.LINKEDIN_CONNECT:
            how = "with the note below" if self.text else "without a note"
            return (
                f"From {self.account}, send a connection request to {who} "
                f"({self.profile_url}) {how}."
            )
        return f"From {self.account}, send {who} ({self.profile_url}) the message below."

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (the file queue's line format)."""
        return {
            "id": self.id,
            "idempotency_key": self.idempotency_key,
            "account": self.account,
            "action": self.action.value,
            "profile_url": self.profile_url,
            "recipient_name": self.recipient_name,
            "text": self.text,
            "campaign_id": self.campaign_id,
            "lead_id": self.lead_id,
            "step": self.step,
            "status": self.status.value,
            "reason": self.reason,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LinkedInTask:
        """The task :meth:`to_dict` wrote.

        Raises:
            KeyError, ValueError, TypeError: the dict is not a task.
        """
        text = data["text"]
        if text is not None and not isinstance(text, str):
            raise TypeError("text must be a string or null")
        return cls(
            id=str(data["id"]),
            idempotency_key=str(data["idempotency_key"]),
            account=SenderId(str(data["account"])),
            action=Action(data["action"]),
            profile_url=str(data["profile_url"]),
            recipient_name=str(data["recipient_name"]),
            text=text,
            campaign_id=CampaignId(str(data["campaign_id"])),
            lead_id=LeadId(str(data["lead_id"])),
            step=int(data["step"]),
            status=TaskStatus(data["status"]),
            reason=str(data["reason"]),
        )


class LinkedInTaskQueue(Protocol):
    """Where LinkedIn tasks wait for someone to perform them.

    Every method is atomic. Tasks keep the order they were first enqueued in.
    """

    def enqueue(self, task: LinkedInTask) -> LinkedInTask:
        """Add ``task``; a task with the same id already queued is kept and returned instead."""
        ...

    def get(self, task_id: str) -> LinkedInTask:
        """The task with that id.

        Raises:
            NotFound: no such task.
        """
        ...

    def tasks(self) -> list[LinkedInTask]:
        """Every task, in enqueue order."""
        ...

    def pending(self) -> list[LinkedInTask]:
        """The tasks still to do, in enqueue order."""
        ...

    def complete(self, task_id: str) -> LinkedInTask:
        """Mark a task done (again: no change).

        Raises:
            NotFound: no such task.
            IllegalTransition: the task was marked failed.
        """
        ...

    def fail(self, task_id: str, reason: str) -> LinkedInTask:
        """Mark a task failed with ``reason`` (again: no change).

        Raises:
            NotFound: no such task.
            IllegalTransition: the task was marked done.
        """
        ...


def _transition(task: LinkedInTask, status: TaskStatus, reason: str) -> LinkedInTask:
    if task.status is status:
        return task
    if task.status is not TaskStatus.PENDING:
        raise IllegalTransition(
            f"LinkedIn task {task.id!r} is already {task.status.value}; it cannot become "
            f"{status.value}"
        )
    return attrs.evolve(task, status=status, reason=reason)


def _not_found(task_id: str) -> NotFound:
    return NotFound(f"no LinkedIn task {task_id!r}")


class InMemoryLinkedInTaskQueue:
    """The task queue in process memory (thread-safe). See :class:`LinkedInTaskQueue`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tasks: dict[str, LinkedInTask] = {}

    def enqueue(self, task: LinkedInTask) -> LinkedInTask:
        """See :meth:`LinkedInTaskQueue.enqueue`."""
        with self._lock:
            return self._tasks.setdefault(task.id, task)

    def get(self, task_id: str) -> LinkedInTask:
        """See :meth:`LinkedInTaskQueue.get`."""
        with self._lock:
            task = self._tasks.get(task_id)
        if task is None:
            raise _not_found(task_id)
        return task

    def tasks(self) -> list[LinkedInTask]:
        """See :meth:`LinkedInTaskQueue.tasks`."""
        with self._lock:
            return list(self._tasks.values())

    def pending(self) -> list[LinkedInTask]:
        """See :meth:`LinkedInTaskQueue.pending`."""
        return [t for t in self.tasks() if t.status is TaskStatus.PENDING]

    def complete(self, task_id: str) -> LinkedInTask:
        """See :meth:`LinkedInTaskQueue.complete`."""
        return self._set(task_id, TaskStatus.DONE, "")

    def fail(self, task_id: str, reason: str) -> LinkedInTask:
        """See :meth:`LinkedInTaskQueue.fail`."""
        return self._set(task_id, TaskStatus.FAILED, reason)

    def _set(self, task_id: str, status: TaskStatus, reason: str) -> LinkedInTask:
        with self._lock:
            task = self._tasks.get(task_id)
            if task is None:
                raise _not_found(task_id)
            changed = _transition(task, status, reason)
            self._tasks[task_id] = changed
            return changed


class LinkedInTaskFile:
    """The task queue as a JSON-lines file, shared by processes (the CLI lists it).

    Each line is a task as :meth:`LinkedInTask.to_dict` writes it; a task's latest line wins
    (enqueueing appends a pending line, ``complete``/``fail`` append the changed task), so a
    crash mid-write loses at most the line being written. Every operation holds an exclusive
    ``flock`` on the file (POSIX) while it reads and appends. A last line without its newline
    (a torn write) is ignored and cut off by the next write; any other unreadable line is
    an error.

    Args:
        path: the file; created with its folder on first write.

    Raises:
        AdapterError: the file cannot be read or written, or holds a line that is not a task.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._path = Path(path)
        self._lock = threading.Lock()

    @property
    def path(self) -> Path:
        """The JSON-lines file."""
        return self._path

    @contextlib.contextmanager
    def _locked(self) -> Iterator[IO[str]]:
        with self._lock:
            try:
                self._path.parent.mkdir(parents=True, exist_ok=True)
                handle = self._path.open("a+", encoding="utf-8")
            except OSError as exc:
                raise AdapterError(f"LinkedIn task file {str(self._path)!r}: {exc}") from exc
            with handle:
                _lock_file(handle.fileno())
                try:
                    yield handle
                finally:
                    _unlock_file(handle.fileno())

    def _read(self, handle: IO[str]) -> dict[str, LinkedInTask]:
        handle.seek(0)
        lines = handle.read().split("\n")
        tasks: dict[str, LinkedInTask] = {}
        # The piece after the last newline is "" for a well-formed file, or a torn line.
        for number, line in enumerate(lines[:-1], start=1):
            if not line.strip():
                continue
            try:
                task = LinkedInTask.from_dict(json.loads(line))
            except (ValueError, KeyError, TypeError) as exc:
                raise AdapterError(
                    f"LinkedIn task file {str(self._path)!r} line {number} is not a task: {exc}"
                ) from exc
            # Re-inserting keeps the first position: dicts keep insertion order of keys.
            tasks[task.id] = task
        return tasks

    def _append(self, handle: IO[str], task: LinkedInTask) -> None:
        handle.seek(0)
        content = handle.read()
        if content and not content.endswith("\n"):
            # A torn write (a crash mid-line) was never a task: cut it off before appending.
            whole = content[: content.rfind("\n") + 1]
            handle.truncate(len(whole.encode("utf-8")))
        handle.seek(0, os.SEEK_END)
        handle.write(json.dumps(task.to_dict(), ensure_ascii=False) + "\n")
        handle.flush()
        os.fsync(handle.fileno())

    def enqueue(self, task: LinkedInTask) -> LinkedInTask:
        """See :meth:`LinkedInTaskQueue.enqueue`."""
        with self._locked() as handle:
            existing = self._read(handle).get(task.id)
            if existing is not None:
                return existing
            self._append(handle, task)
            return task

    def get(self, task_id: str) -> LinkedInTask:
        """See :meth:`LinkedInTaskQueue.get`."""
        with self._locked() as handle:
            task = self._read(handle).get(task_id)
        if task is None:
            raise _not_found(task_id)
        return task

    def tasks(self) -> list[LinkedInTask]:
        """See :meth:`LinkedInTaskQueue.tasks`."""
        with self._locked() as handle:
            return list(self._read(handle).values())

    def pending(self) -> list[LinkedInTask]:
        """See :meth:`LinkedInTaskQueue.pending`."""
        return [t for t in self.tasks() if t.status is TaskStatus.PENDING]

    def complete(self, task_id: str) -> LinkedInTask:
        """See :meth:`LinkedInTaskQueue.complete`."""
        return self._set(task_id, TaskStatus.DONE, "")

    def fail(self, task_id: str, reason: str) -> LinkedInTask:
        """See :meth:`LinkedInTaskQueue.fail`."""
        return self._set(task_id, TaskStatus.FAILED, reason)

    def _set(self, task_id: str, status: TaskStatus, reason: str) -> LinkedInTask:
        with self._locked() as handle:
            task = self._read(handle).get(task_id)
            if task is None:
                raise _not_found(task_id)
            changed = _transition(task, status, reason)
            if changed is not task:
                self._append(handle, changed)
            return changed


class LinkedInTaskSender:
    """The LinkedIn sender port as a task queue: each action becomes a task to perform.

    ``send_linkedin`` enqueues the task (idempotent by the action's key: a retry finds the
    same task) and returns a receipt whose ``message_id`` is the task id. The service counts
    the step as sent when it is queued; people then work through ``queue.pending()``. A task
    for an action already marked failed returns ``SendFailure(permanent=True)`` with the
    reason given, so a retried send does not silently succeed.

    Args:
        queue: where the tasks go; None: a new :class:`InMemoryLinkedInTaskQueue`.
    """

    def __init__(self, queue: LinkedInTaskQueue | None = None) -> None:
        self.queue: LinkedInTaskQueue = queue if queue is not None else InMemoryLinkedInTaskQueue()

    def send_linkedin(self, action: LinkedInAction) -> SendReceipt | SendFailure:
        """Queue ``action`` as a task (once per idempotency key)."""
        if action.action not in (Action.LINKEDIN_CONNECT, Action.LINKEDIN_MESSAGE):
            return SendFailure(
                permanent=True, reason=f"{action.action.value} is not a LinkedIn action"
            )
        if action.action is Action.LINKEDIN_MESSAGE and not (action.text or "").strip():
            return SendFailure(permanent=True, reason="a LinkedIn message needs text")
        task = self.queue.enqueue(LinkedInTask.from_action(action))
        if task.status is TaskStatus.FAILED:
            return SendFailure(permanent=True, reason=f"LinkedIn task failed: {task.reason}")
        return SendReceipt(message_id=task.id)
