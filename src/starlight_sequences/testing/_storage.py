"""The storage contract: every section of it in one class a host subclasses."""

from __future__ import annotations

from starlight_sequences.testing._storage_activities import StorageActivities
from starlight_sequences.testing._storage_batches import StorageBatchReads
from starlight_sequences.testing._storage_bulk import StorageBulkReads
from starlight_sequences.testing._storage_cursors import StorageCursors
from starlight_sequences.testing._storage_leases import StorageClaims, StorageFinishing
from starlight_sequences.testing._storage_reads import StorageReads
from starlight_sequences.testing._storage_records import StorageRevisions, StorageRoundTrips


class StorageContract(
    StorageRoundTrips,
    StorageRevisions,
    StorageReads,
    StorageClaims,
    StorageFinishing,
    StorageCursors,
    StorageActivities,
    StorageBulkReads,
    StorageBatchReads,
    # A new section joins here, last: a class ``StorageX(StorageSection)`` in
    # ``_storage_x.py``, its tests methods taking ``self`` and the ``storage`` fixture, its data
    # from ``records``.
):
    """Every promise of :class:`~starlight_sequences.ports.storage.Storage`, as tests.

    Subclass it in a test module (the subclass's name starts with ``Test``, so pytest collects
    it) and override the ``storage`` fixture with one that gives each test a fresh, empty
    adapter and closes it afterwards::

        class TestMyStorage(StorageContract):
            @pytest.fixture
            def storage(self, tmp_path: Path) -> Iterator[Storage]:
                with MyStorage(tmp_path / "db") as adapter:
                    yield adapter

    The sections, each a class of its own (a subclass of ``StorageSection``): round trips,
    revisions and workspaces, reads and sender bookings, claiming, finishing, cursors, the
    journal going out (``activities_since``; a storage that holds activities back for a while,
    as PostgreSQL does, is waited for a bounded number of reads: see
    :func:`~starlight_sequences.testing.settle_activities`), and bulk reads
    (``drafts_needing_attention``). A new
    promise of the port gets a section of its own, in a module ``_storage_<topic>.py``, added to
    the bases above (last), so every subclass of ``StorageContract`` runs it without a change.
    """
