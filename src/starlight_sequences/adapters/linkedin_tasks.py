"""LinkedIn actions as tasks for a person (or an outside automation) to perform.

LinkedIn offers no public API for connection requests and messages, so
:class:`LinkedInTaskSender` turns each action into a :class:`LinkedInTask` (the profile URL,
the account to use, the note or message ready to copy) in a task queue. Whoever works the
queue marks each task ``complete`` or ``fail``. Acceptances and replies are not tasks: they come
back through the service's inbound events.

Two queues ship: :class:`InMemoryLinkedInTaskQueue` and :class:`LinkedInTaskFile`, a JSON-lines
file that the CLI and several processes can share.

Every task belongs to a workspace, and every read and change of a queue names the workspace it
is for: a task of another workspace is not found (see :meth:`LinkedInTask.in_workspace`).
"""

from __future__ import annotations

import abc
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

from starlight_sequences.campaigns import idempotency_key_for, send_id_for
from starlight_sequences.channels import Action
from starlight_sequences.errors import AdapterError, IllegalTransition, NotFound
from starlight_sequences.ids import CampaignId, LeadId, SenderId, WorkspaceId
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


def _service_key(workspace_id: str, campaign_id: str, lead_id: str, step: int) -> str:
    """The idempotency key the service gives the send of that step, as
    ``ScheduledSend.idempotency_key`` makes it (a test pins the two together)."""
    return idempotency_key_for(
        workspace_id, send_id_for(CampaignId(campaign_id), LeadId(lead_id), step)
    )


@attrs.frozen(kw_only=True)
class LinkedInTask:
    """One LinkedIn action for a person to perform.

    Attributes:
        id: :func:`task_id_for` the idempotency key.
        idempotency_key: of the send it performs.
        workspace_id: the workspace it belongs to; None when it was not recorded (tasks
            written before tasks carried one, or queued from a ``LinkedInAction`` that does
            not say): :meth:`in_workspace` then recognises the workspace by the key.
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
    workspace_id: WorkspaceId | None = None
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
    def from_action(
        cls, action: LinkedInAction, *, workspace_id: WorkspaceId | None = None
    ) -> LinkedInTask:
        """The pending task that performs ``action`` for ``workspace_id`` (None: not known)."""
        return cls(
            id=task_id_for(action.idempotency_key),
            idempotency_key=action.idempotency_key,
            account=action.sender_id,
            workspace_id=workspace_id,
            action=action.action,
            profile_url=action.profile_url,
            recipient_name=action.recipient_name,
            text=action.text,
            campaign_id=action.campaign_id,
            lead_id=action.lead_id,
            step=action.step,
        )

    def in_workspace(self, workspace_id: WorkspaceId) -> bool:
        """Whether the task belongs to ``workspace_id``.

        The recorded ``workspace_id`` decides. A task without one belongs to the workspace
        whose service gave its send that idempotency key (the key is a SHA-256 of the
        workspace and the campaign, lead and step), so it can never be taken for another
        workspace's; a task with a key the service did not make belongs to no workspace.
        """
        if self.workspace_id is not None:
            return self.workspace_id == workspace_id
        return self.idempotency_key == _service_key(
            workspace_id, self.campaign_id, self.lead_id, self.step
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
            "workspace_id": self.workspace_id,
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
        """The task :meth:`to_dict` wrote (also without ``workspace_id``, as older versions
        wrote it: the task then has none recorded).

        Raises:
            KeyError, ValueError, TypeError: the dict is not a task.
        """
        text = data["text"]
        if text is not None and not isinstance(text, str):
            raise TypeError("text must be a string or null")
        workspace = data.get("workspace_id")
        if workspace is not None and not isinstance(workspace, str):
            raise TypeError("workspace_id must be a string or null")
        return cls(
            id=str(data["id"]),
            idempotency_key=str(data["idempotency_key"]),
            account=SenderId(str(data["account"])),
            workspace_id=WorkspaceId(workspace) if workspace is not None else None,
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

    Every method is atomic. Tasks keep the order they were first enqueued in. Every method but
    ``enqueue`` is scoped to one workspace: it sees only the tasks for which
    :meth:`LinkedInTask.in_workspace` holds, and a task of another workspace is ``NotFound``
    exactly like a task that does not exist.
    """

    def enqueue(self, task: LinkedInTask) -> LinkedInTask:
        """Add ``task``; a task with the same id already queued is kept and returned instead."""
        ...

    def get(self, workspace_id: WorkspaceId, task_id: str) -> LinkedInTask:
        """The task with that id in ``workspace_id``.

        Raises:
            NotFound: no such task in that workspace.
        """
        ...

    def tasks(self, workspace_id: WorkspaceId) -> list[LinkedInTask]:
        """Every task of ``workspace_id``, in enqueue order."""
        ...

    def pending(self, workspace_id: WorkspaceId) -> list[LinkedInTask]:
        """The tasks of ``workspace_id`` still to do, in enqueue order."""
        ...

    def complete(self, workspace_id: WorkspaceId, task_id: str) -> LinkedInTask:
        """Mark a task of ``workspace_id`` done (again: no change).

        A task without a recorded workspace gets ``workspace_id`` recorded with the change.

        Raises:
            NotFound: no such task in that workspace.
            IllegalTransition: the task was marked failed.
        """
        ...

    def fail(self, workspace_id: WorkspaceId, task_id: str, reason: str) -> LinkedInTask:
        """Mark a task of ``workspace_id`` failed with ``reason`` (again: no change).

        Raises:
            NotFound: no such task in that workspace.
            IllegalTransition: the task was marked done.
        """
        ...


def _transition(
    task: LinkedInTask, workspace_id: WorkspaceId, status: TaskStatus, reason: str
) -> LinkedInTask:
    if task.status is status:
        return task
    if task.status is not TaskStatus.PENDING:
        raise IllegalTransition(
            f"LinkedIn task {task.id!r} is already {task.status.value}; it cannot become "
            f"{status.value}"
        )
    return attrs.evolve(task, status=status, reason=reason, workspace_id=workspace_id)


def _scoped(tasks: dict[str, LinkedInTask], workspace_id: WorkspaceId) -> list[LinkedInTask]:
    return [task for task in tasks.values() if task.in_workspace(workspace_id)]


def _find(tasks: dict[str, LinkedInTask], workspace_id: WorkspaceId, task_id: str) -> LinkedInTask:
    task = tasks.get(task_id)
    if task is None or not task.in_workspace(workspace_id):
        raise NotFound(f"no LinkedIn task {task_id!r} in workspace {workspace_id!r}")
    return task


class _QueueTransitions(abc.ABC):
    """What both shipped queues do the same way on top of their own ``tasks`` and ``_set``."""

    @abc.abstractmethod
    def tasks(self, workspace_id: WorkspaceId) -> list[LinkedInTask]:
        """See :meth:`LinkedInTaskQueue.tasks`."""

    @abc.abstractmethod
    def _set(
        self, workspace_id: WorkspaceId, task_id: str, status: TaskStatus, reason: str
    ) -> LinkedInTask:
        """Move one task of the workspace to ``status`` (see ``_transition``)."""

    def pending(self, workspace_id: WorkspaceId) -> list[LinkedInTask]:
        """See :meth:`LinkedInTaskQueue.pending`."""
        return [t for t in self.tasks(workspace_id) if t.status is TaskStatus.PENDING]

    def complete(self, workspace_id: WorkspaceId, task_id: str) -> LinkedInTask:
        """See :meth:`LinkedInTaskQueue.complete`."""
        return self._set(workspace_id, task_id, TaskStatus.DONE, "")

    def fail(self, workspace_id: WorkspaceId, task_id: str, reason: str) -> LinkedInTask:
        """See :meth:`LinkedInTaskQueue.fail`."""
        return self._set(workspace_id, task_id, TaskStatus.FAILED, reason)


class InMemoryLinkedInTaskQueue(_QueueTransitions):
    """The task queue in process memory (thread-safe). See :class:`LinkedInTaskQueue`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tasks: dict[str, LinkedInTask] = {}

    def enqueue(self, task: LinkedInTask) -> LinkedInTask:
        """See :meth:`LinkedInTaskQueue.enqueue`."""
        with self._lock:
            return self._tasks.setdefault(task.id, task)

    def get(self, workspace_id: WorkspaceId, task_id: str) -> LinkedInTask:
        """See :meth:`LinkedInTaskQueue.get`."""
        with self._lock:
            return _find(self._tasks, workspace_id, task_id)

    def tasks(self, workspace_id: WorkspaceId) -> list[LinkedInTask]:
        """See :meth:`LinkedInTaskQueue.tasks`."""
        with self._lock:
            return _scoped(self._tasks, workspace_id)

    def _set(
        self, workspace_id: WorkspaceId, task_id: str, status: TaskStatus, reason: str
    ) -> LinkedInTask:
        with self._lock:
            task = _find(self._tasks, workspace_id, task_id)
            changed = _transition(task, workspace_id, status, reason)
            self._tasks[task_id] = changed
            return changed


class LinkedInTaskFile(_QueueTransitions):
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

    def get(self, workspace_id: WorkspaceId, task_id: str) -> LinkedInTask:
        """See :meth:`LinkedInTaskQueue.get`."""
        with self._locked() as handle:
            return _find(self._read(handle), workspace_id, task_id)

    def tasks(self, workspace_id: WorkspaceId) -> list[LinkedInTask]:
        """See :meth:`LinkedInTaskQueue.tasks`."""
        with self._locked() as handle:
            return _scoped(self._read(handle), workspace_id)

    def _set(
        self, workspace_id: WorkspaceId, task_id: str, status: TaskStatus, reason: str
    ) -> LinkedInTask:
        with self._locked() as handle:
            task = _find(self._read(handle), workspace_id, task_id)
            changed = _transition(task, workspace_id, status, reason)
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

    ``LinkedInAction`` does not say which workspace it is for, so the task records none; the
    queue recognises the workspace by the service's idempotency key
    (:meth:`LinkedInTask.in_workspace`).

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
        task = self.queue.enqueue(
            LinkedInTask.from_action(action, workspace_id=action.workspace_id)
        )
        if task.status is TaskStatus.FAILED:
            return SendFailure(permanent=True, reason=f"LinkedIn task failed: {task.reason}")
        return SendReceipt(message_id=task.id)
