"""The credit ledger port: balances, reservations and charges per workspace."""

from __future__ import annotations

from typing import Protocol

from starlight_sequences.credits import CreditAccount, CreditMovement
from starlight_sequences.ids import CampaignId, WorkspaceId

__all__ = ["CreditLedger"]


class CreditLedger(Protocol):
    """Keeps each workspace's credits. Every call is atomic.

    The rules are those of :class:`~starlight_sequences.credits.CreditAccount`: top-ups and
    releases add to ``available``; drafting charges take from it; a reservation moves credits
    from ``available`` to ``reserved``; a send charge consumes a reservation. ``available``
    never goes below zero, also under concurrent callers (threads, processes, hosts).
    """

    def balance(self, workspace_id: WorkspaceId) -> CreditAccount:
        """The workspace's account (zero for a workspace never seen)."""
        ...

    def post(self, workspace_id: WorkspaceId, *movements: CreditMovement) -> CreditAccount:
        """Apply ``movements`` in order, all or nothing, journal them; return the account after.

        A movement whose non-empty ``key`` was already posted for this workspace is skipped
        (a retried charge is not charged twice).

        Raises:
            InsufficientCredits: ``available`` would go negative; nothing changed.
            InvalidInput: a charge or release larger than what is reserved, or a top-up that
                would take ``available + reserved`` past
                :data:`~starlight_sequences.credits.MAX_CREDITS`; nothing changed.
        """
        ...

    def movements(
        self, workspace_id: WorkspaceId, *, campaign_id: CampaignId | None = None
    ) -> list[CreditMovement]:
        """The journal, oldest first (of one campaign when given)."""
        ...
