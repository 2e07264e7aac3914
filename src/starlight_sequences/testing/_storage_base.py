"""What every section of the storage contract shares: the ``storage`` fixture and helpers."""

from __future__ import annotations

import datetime as dt

import pytest

from starlight_sequences.campaigns import ScheduledSend
from starlight_sequences.ports.storage import Storage
from starlight_sequences.testing.records import T0

NEW_YORK = dt.timezone(dt.timedelta(hours=-5))
LEASE = dt.timedelta(minutes=5)
HOUR = dt.timedelta(hours=1)


class StorageSection:
    """A part of the storage contract; its tests take a ``storage`` fixture.

    The subclass a host writes overrides :meth:`storage` with a fixture that gives each test a
    fresh, empty adapter (and closes it afterwards).
    """

    @pytest.fixture
    def storage(self) -> Storage:
        """The adapter under test: a subclass overrides this fixture."""
        pytest.fail(
            f"{type(self).__name__} needs a `storage` fixture that returns a fresh, empty "
            "Storage (define it on the class: see starlight_sequences.testing)",
            pytrace=False,
        )


def claim(
    storage: Storage, now: dt.datetime = T0, worker: str = "worker-a", **kw: object
) -> list[ScheduledSend]:
    """``storage.claim_due`` with a 5-minute lease and a limit of 100 unless ``kw`` says."""
    options: dict[str, object] = {"lease": LEASE, "limit": 100}
    options.update(kw)
    return storage.claim_due(now, worker_id=worker, **options)  # type: ignore[arg-type]
