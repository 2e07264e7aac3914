"""The contract suites a host runs against its own adapters.

Needs the ``testing`` extra (pytest and hypothesis): ``pip install
'starlight-sequences[testing]'``; without it, importing this package raises an
``ImportError`` that names the extra. The core package never imports it.

- :class:`StorageContract`: every promise of the ``Storage`` port, as pytest tests.
- :class:`LedgerContract`: every promise of the ``CreditLedger`` port.
- :class:`StorageAgreement`: a hypothesis state machine that drives the adapters under test
  side by side with the in-memory ones and checks they agree after every step.
- :func:`settle_activities`: waits (a bounded number of reads) until a storage hands out every
  committed activity, for a host's own tests of a storage that holds activities back a while.
- :mod:`starlight_sequences.testing.records`: the sample records the suites build.

A host subclasses the bases in one of its test modules and gives each a fixture that returns
a fresh, empty adapter::

    import pytest
    from starlight_sequences.testing import LedgerContract, StorageContract

    class TestMyStorage(StorageContract):
        @pytest.fixture
        def storage(self):
            return MyStorage(...)

    class TestMyLedger(LedgerContract):
        @pytest.fixture
        def ledger(self):
            return MyLedger(...)

See ``docs/testing.md`` ("Verify your own adapters").
"""

from __future__ import annotations

try:
    import hypothesis  # noqa: F401
    import pytest  # noqa: F401
except ImportError as exc:
    raise ImportError(
        "starlight_sequences.testing needs the 'testing' extra: "
        "pip install 'starlight-sequences[testing]' (pytest and hypothesis). "
        f"The import failed with: {exc}",
        name=exc.name,
    ) from exc

from starlight_sequences.testing._agreement import StorageAgreement
from starlight_sequences.testing._ledger import LedgerContract
from starlight_sequences.testing._storage import StorageContract
from starlight_sequences.testing._storage_activities import settle_activities

__all__ = ["LedgerContract", "StorageAgreement", "StorageContract", "settle_activities"]
