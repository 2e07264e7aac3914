"""The credit ledger contract on every ledger of the project: the shipped suite, parametrised.

The tests live in :class:`starlight_sequences.testing.LedgerContract`; this module runs it on
every factory of ``LEDGER_FACTORIES`` in ``conftest.py`` (in-memory, SQLite, PostgreSQL).
"""

from __future__ import annotations

import pytest

from starlight_sequences.ports.credits import CreditLedger
from starlight_sequences.testing import LedgerContract


class TestLedgerContract(LedgerContract):
    @pytest.fixture
    def ledger(self, ledger: CreditLedger) -> CreditLedger:
        """Every ledger of ``LEDGER_FACTORIES``: the ``ledger`` fixture of ``conftest.py``."""
        return ledger
