"""Accounts: a workspace's credits as the service sees them — balance, journal, top-ups, what
one campaign moved, and the repair of movements a crash cut off.

Moves credits only by keyed movements the store proves are owed; it never changes campaigns,
leads or sends.
"""

from __future__ import annotations

from starlight_sequences.campaigns import Campaign, CampaignStatus, SendStatus
from starlight_sequences.credits import CreditAccount, CreditMovement, MovementKind
from starlight_sequences.errors import CampaignNotFound
from starlight_sequences.ids import CampaignId, WorkspaceId
from starlight_sequences.reports import CampaignCredits
from starlight_sequences.service._shared import DRAFTER_FAILED_PREFIX, ServiceContext, releases


class Accounts:
    """Balance, journal, top-ups, campaign credits and their repair."""

    def __init__(self, ctx: ServiceContext) -> None:
        self._ctx = ctx

    def campaign_credits(
        self, workspace_id: WorkspaceId, campaign_id: CampaignId
    ) -> CampaignCredits:
        """What one campaign moved in the workspace's credits, from the journal."""
        journal = self._ctx.ledger.movements(workspace_id, campaign_id=campaign_id)
        totals = dict.fromkeys(MovementKind, 0)
        for movement in journal:
            totals[movement.kind] += movement.amount
        # The drafting hold is reserved and released within create_campaign; it is not a
        # send reservation.
        hold = sum(m.amount for m in journal if m.key.startswith(("draft-hold:", "hold-redraft:")))
        return CampaignCredits(
            drafting=totals[MovementKind.DRAFT],
            reserved=totals[MovementKind.RESERVE] - hold,
            charged=totals[MovementKind.CHARGE],
            released=totals[MovementKind.RELEASE] - hold,
        )

    def reconcile_credits(
        self, workspace_id: WorkspaceId, campaign_id: CampaignId
    ) -> list[CreditMovement]:
        """Post whatever keyed movement a crash cut off (see ``CampaignService``)."""
        campaign: Campaign | None
        try:
            campaign = self._ctx.storage.get_campaign(workspace_id, campaign_id)
        except CampaignNotFound:
            campaign = None
        posted = self._ctx.ledger.movements(workspace_id, campaign_id=campaign_id)
        missing = [
            *self._unsettled_drafting(workspace_id, campaign_id, campaign, posted),
            *self._unreturned_approvals(campaign_id, campaign, posted),
            *self._unsettled_sends(workspace_id, campaign_id, campaign, posted),
        ]
        if missing:
            self._ctx.ledger.post(workspace_id, *missing)
        return missing

    def _unsettled_drafting(
        self,
        workspace_id: WorkspaceId,
        campaign_id: CampaignId,
        campaign: Campaign | None,
        posted: list[CreditMovement],
    ) -> list[CreditMovement]:
        """Drafting holds of creation attempts that never settled: give each back, and charge
        the drafts stored by the one attempt that committed (once)."""
        keys = {m.key for m in posted if m.key}
        charged_drafts = any(m.key.startswith(f"draft:{campaign_id}:") for m in posted)
        missing: list[CreditMovement] = []
        for hold in posted:
            if not hold.key.startswith(f"draft-hold:{campaign_id}:"):
                continue
            attempt = hold.key.removeprefix("draft-hold:")
            if f"draft-unhold:{attempt}" in keys:
                continue
            made = 0
            if campaign is not None and not charged_drafts:
                charged_drafts = True
                made = sum(
                    1
                    for d in self._ctx.storage.list_drafts(workspace_id, campaign_id)
                    if not d.problem.startswith(DRAFTER_FAILED_PREFIX) and d.version == 1
                )
            missing += [
                CreditMovement(
                    kind=MovementKind.RELEASE,
                    amount=hold.amount,
                    campaign_id=campaign_id,
                    key=f"draft-unhold:{attempt}",
                    note="drafting hold settled (reconciled)",
                ),
                CreditMovement(
                    kind=MovementKind.DRAFT,
                    amount=made * self._ctx.prices_of(campaign).draft,
                    campaign_id=campaign_id,
                    key=f"draft:{attempt}",
                    note=f"drafting {made} messages (reconciled)",
                ),
            ]
        return missing

    @staticmethod
    def _unreturned_approvals(
        campaign_id: CampaignId, campaign: Campaign | None, posted: list[CreditMovement]
    ) -> list[CreditMovement]:
        """Approval reservations: exactly one stays when the campaign was approved."""
        undone = {m.key.removeprefix("undo-") for m in posted if m.key.startswith("undo-approve:")}
        open_holds = [
            m
            for m in posted
            if m.kind is MovementKind.RESERVE
            and m.key.startswith("approve:")
            and m.key not in undone
        ]
        approved = campaign is not None and campaign.status is not CampaignStatus.DRAFT
        return [
            CreditMovement(
                kind=MovementKind.RELEASE,
                amount=hold.amount,
                campaign_id=campaign_id,
                key=f"undo-{hold.key}",
                note="approval that never committed; reservation returned (reconciled)",
            )
            for hold in (open_holds[:-1] if approved else open_holds)
        ]

    def _unsettled_sends(
        self,
        workspace_id: WorkspaceId,
        campaign_id: CampaignId,
        campaign: Campaign | None,
        posted: list[CreditMovement],
    ) -> list[CreditMovement]:
        """A sent step is charged, a skipped or failed one released."""
        if campaign is None or campaign.status is CampaignStatus.DRAFT:
            return []
        keys = {m.key for m in posted if m.key}
        sends = self._ctx.storage.list_sends(workspace_id, campaign_id)
        prices = self._ctx.prices_of(campaign)
        missing = [
            CreditMovement(
                kind=MovementKind.CHARGE,
                amount=prices.price_of(send.action),
                campaign_id=campaign_id,
                lead_id=send.lead_id,
                key=f"charge:{send.idempotency_key}",
                note=f"step {send.step} sent (reconciled)",
            )
            for send in sends
            if send.status is SendStatus.SENT and f"charge:{send.idempotency_key}" not in keys
        ]
        ended = (s for s in sends if s.status in (SendStatus.SKIPPED, SendStatus.FAILED))
        missing += [
            m
            for m in releases(self._ctx, ended, "will not be sent (reconciled)")
            if m.key not in keys
        ]
        return missing

    def balance(self, workspace_id: WorkspaceId) -> CreditAccount:
        """The workspace's credits: available and reserved."""
        return self._ctx.ledger.balance(workspace_id)

    def movements(
        self, workspace_id: WorkspaceId, campaign_id: CampaignId | None
    ) -> list[CreditMovement]:
        """The credit journal of the workspace (or of one campaign)."""
        return self._ctx.ledger.movements(workspace_id, campaign_id=campaign_id)

    def top_up(self, workspace_id: WorkspaceId, amount: int, note: str) -> CreditAccount:
        """Add credits to the workspace."""
        return self._ctx.ledger.post(
            workspace_id, CreditMovement(kind=MovementKind.TOP_UP, amount=amount, note=note)
        )
