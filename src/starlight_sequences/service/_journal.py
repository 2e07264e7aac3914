"""The journal going out, as callbacks: the listeners a host subscribed to a service.

Callbacks are told of each activity after the commit that recorded it; they are best-effort
(a crash between the commit and the call loses the call). The pull API,
:meth:`~starlight_sequences.service.CampaignService.activities_since`, is the at-least-once
channel. ``docs/events.md`` says which to use when.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from types import TracebackType

from starlight_sequences.events import Activity
from starlight_sequences.ids import WorkspaceId

ActivityListener = Callable[[str, Activity], object]
"""A callback told of an activity: called with the workspace id and the activity (what it
returns is ignored)."""

log = logging.getLogger("starlight_sequences.events")


class Subscription:
    """A callback's place among a service's listeners; :meth:`cancel` takes it out.

    Also a context manager that cancels on exit.
    """

    def __init__(self, listeners: Listeners, callback: ActivityListener) -> None:
        self._listeners = listeners
        self.callback = callback

    @property
    def active(self) -> bool:
        """True until :meth:`cancel`."""
        return self._listeners.holds(self)

    def cancel(self) -> None:
        """Stop calling the callback (from the next activity on). Cancelling twice is fine."""
        self._listeners.remove(self)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.cancel()


class Listeners:
    """The callbacks subscribed to one service, in the order they subscribed. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subscriptions: tuple[Subscription, ...] = ()

    def add(self, callback: ActivityListener) -> Subscription:
        """Subscribe ``callback``; the same callable may be subscribed twice (called twice)."""
        subscription = Subscription(self, callback)
        with self._lock:
            self._subscriptions = (*self._subscriptions, subscription)
        return subscription

    def remove(self, subscription: Subscription) -> None:
        """Unsubscribe; nothing happens when it is not subscribed."""
        with self._lock:
            self._subscriptions = tuple(s for s in self._subscriptions if s is not subscription)

    def holds(self, subscription: Subscription) -> bool:
        """True when ``subscription`` is subscribed."""
        return any(s is subscription for s in self._subscriptions)

    def publish(self, workspace_id: WorkspaceId, activities: Iterable[Activity]) -> None:
        """Call every callback with each activity, in the calling thread, in journal order.

        A callback that raises is logged (``starlight_sequences.events``, with the traceback)
        and the others are still called: a listener never breaks the use case that committed.
        """
        subscriptions = self._subscriptions
        if not subscriptions:
            return
        for activity in activities:
            for subscription in subscriptions:
                try:
                    subscription.callback(workspace_id, activity)
                except Exception:
                    log.exception(
                        "activity listener %r failed on %s of campaign=%s lead=%s",
                        subscription.callback,
                        activity.kind.value,
                        activity.campaign_id,
                        activity.lead_id,
                        extra={
                            "workspace_id": workspace_id,
                            "campaign_id": activity.campaign_id,
                            "lead_id": activity.lead_id,
                            "activity": activity.kind.value,
                        },
                    )
