"""The storage contract on every adapter of the project: the shipped suite, parametrised.

The tests live in :class:`starlight_sequences.testing.StorageContract` (hosts run the same suite
against their own adapters); this module runs it on every factory of ``STORAGE_FACTORIES`` in
``conftest.py``: in-memory, SQLite, and PostgreSQL when ``STARLIGHT_PG_DSN`` is set.
"""

from __future__ import annotations

import pytest

from starlight_sequences.ports.storage import Storage
from starlight_sequences.testing import StorageContract


class TestStorageContract(StorageContract):
    @pytest.fixture
    def storage(self, storage: Storage) -> Storage:
        """Every adapter of ``STORAGE_FACTORIES``: the ``storage`` fixture of ``conftest.py``."""
        return storage
