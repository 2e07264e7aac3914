"""The storage contract, bulk reads: approval calls them on campaigns of 100,000 leads, and
every adapter answers them like the plain reads they stand for."""

from __future__ import annotations

from typing import Any

from starlight_sequences.campaigns import Campaign
from starlight_sequences.channels import Action
from starlight_sequences.drafts import Draft, DraftStatus
from starlight_sequences.ids import CampaignId
from starlight_sequences.ports.storage import Changes, Storage
from starlight_sequences.testing._storage_base import StorageSection
from starlight_sequences.testing.records import OTHER_WS, WS, make_campaign, make_draft


def _broken(
    campaign: Campaign, lead_id: str, step: int, problem: str = "body is empty", **overrides: Any
) -> Draft:
    """A LinkedIn message draft that needs attention."""
    return make_draft(
        campaign,
        lead_id,
        step,
        action=Action.LINKEDIN_MESSAGE,
        subject=None,
        body="",
        status=DraftStatus.NEEDS_ATTENTION,
        problem=problem,
        **overrides,
    )


class StorageBulkReads(StorageSection):
    """``drafts_needing_attention``: the drafts of ``list_drafts`` that need attention."""

    def test_drafts_needing_attention_are_those_of_list_drafts_that_need_it_in_its_order(
        self, storage: Storage
    ) -> None:
        campaign = make_campaign()
        drafts = (
            make_draft(campaign, "lead-cat", 1),
            _broken(campaign, "lead-cat", 3),
            _broken(campaign, "lead-ann", 2, "subject is empty"),
            make_draft(campaign, "lead-ann", 1),
            _broken(campaign, "lead-bob", 1),
            make_draft(campaign, "lead-bob", 2),
        )
        storage.commit(WS, Changes(campaigns=(campaign,), drafts=drafts))

        found = storage.drafts_needing_attention(WS, campaign.id)

        assert found == [d for d in storage.list_drafts(WS, campaign.id) if d.needs_attention]
        assert [(d.lead_id, d.step) for d in found] == [
            ("lead-ann", 2),
            ("lead-bob", 1),
            ("lead-cat", 3),
        ]
        assert found[0].problem == "subject is empty"

    def test_a_draft_made_ready_again_no_longer_needs_attention_and_a_new_problem_does(
        self, storage: Storage
    ) -> None:
        campaign = make_campaign()
        broken = _broken(campaign, "lead-ann", 1)
        fine = make_draft(campaign, "lead-bob", 1)
        storage.commit(WS, Changes(campaigns=(campaign,), drafts=(broken, fine)))

        fixed = make_draft(campaign, "lead-ann", 1, version=2, edited=True)
        spoiled = _broken(campaign, "lead-bob", 1, version=2)
        storage.commit(WS, Changes(drafts=(fixed, spoiled)))

        assert storage.drafts_needing_attention(WS, campaign.id) == [spoiled]

    def test_drafts_needing_attention_are_of_one_campaign_of_one_workspace(
        self, storage: Storage
    ) -> None:
        ours, other_campaign = make_campaign("camp-1"), make_campaign("camp-2")
        theirs = make_campaign("camp-1", workspace_id=OTHER_WS)
        storage.commit(
            WS,
            Changes(
                campaigns=(ours, other_campaign),
                drafts=(
                    _broken(ours, "lead-ann", 1),
                    _broken(other_campaign, "lead-bob", 1),
                ),
            ),
        )
        storage.commit(
            OTHER_WS,
            Changes(
                campaigns=(theirs,),
                drafts=(_broken(theirs, "lead-cat", 1),),
            ),
        )

        assert [d.lead_id for d in storage.drafts_needing_attention(WS, ours.id)] == ["lead-ann"]
        assert [d.lead_id for d in storage.drafts_needing_attention(OTHER_WS, theirs.id)] == [
            "lead-cat"
        ]
        assert storage.drafts_needing_attention(WS, CampaignId("camp-none")) == []
