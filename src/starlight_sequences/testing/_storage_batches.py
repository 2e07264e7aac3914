"""The storage contract, batch reads: a dispatch pass reads the drafts and the sends of all
the leads it claimed in one call each (``lead_ids``), and gets what one call per lead gives."""

from __future__ import annotations

import pytest

from starlight_sequences.errors import InvalidInput
from starlight_sequences.ids import LeadId
from starlight_sequences.ports.storage import Changes, Storage
from starlight_sequences.testing._storage_base import StorageSection
from starlight_sequences.testing.records import (
    OTHER_WS,
    WS,
    make_campaign,
    make_draft,
    make_send,
)

_LEADS = ("lead-cat", "lead-ann", "lead-bob", "lead-dan")


def _stored(storage: Storage) -> None:
    """Two steps of drafts and sends for four leads of camp-1, one lead of camp-2, and the
    same ids in another workspace."""
    ours, second = make_campaign("camp-1"), make_campaign("camp-2")
    theirs = make_campaign("camp-1", workspace_id=OTHER_WS)
    storage.commit(
        WS,
        Changes(
            campaigns=(ours, second),
            drafts=tuple(
                make_draft(c, lead, step)
                for c, leads in ((ours, _LEADS), (second, ("lead-ann",)))
                for lead in leads
                for step in (2, 1)
            ),
            sends=tuple(
                make_send(c, lead, step)
                for c, leads in ((ours, _LEADS), (second, ("lead-ann",)))
                for lead in leads
                for step in (2, 1)
            ),
        ),
    )
    storage.commit(
        OTHER_WS,
        Changes(
            campaigns=(theirs,),
            drafts=(make_draft(theirs, "lead-ann", 1),),
            sends=(make_send(theirs, "lead-ann", 1),),
        ),
    )


class StorageBatchReads(StorageSection):
    """``list_drafts`` and ``list_sends`` with ``lead_ids``."""

    def test_drafts_of_several_leads_are_those_of_one_call_per_lead_in_lead_then_step_order(
        self, storage: Storage
    ) -> None:
        _stored(storage)
        camp = make_campaign("camp-1").id
        asked = [LeadId("lead-cat"), LeadId("lead-ann"), LeadId("lead-cat"), LeadId("lead-zed")]

        found = storage.list_drafts(WS, camp, lead_ids=asked)

        one_by_one = [d for lead in sorted(set(asked)) for d in storage.list_drafts(WS, camp, lead)]
        assert found == one_by_one
        assert [(d.lead_id, d.step) for d in found] == [
            ("lead-ann", 1),
            ("lead-ann", 2),
            ("lead-cat", 1),
            ("lead-cat", 2),
        ]

    def test_sends_of_several_leads_are_those_of_one_call_per_lead_in_lead_then_step_order(
        self, storage: Storage
    ) -> None:
        _stored(storage)
        camp = make_campaign("camp-1").id
        asked = [LeadId("lead-dan"), LeadId("lead-bob")]

        found = storage.list_sends(WS, camp, lead_ids=asked)

        one_by_one = [s for lead in sorted(asked) for s in storage.list_sends(WS, camp, lead)]
        assert found == one_by_one
        assert [(s.lead_id, s.step) for s in found] == [
            ("lead-bob", 1),
            ("lead-bob", 2),
            ("lead-dan", 1),
            ("lead-dan", 2),
        ]

    def test_batch_reads_stay_in_their_campaign_and_workspace(self, storage: Storage) -> None:
        _stored(storage)
        second = make_campaign("camp-2").id
        ann = [LeadId("lead-ann")]

        assert [(d.campaign_id, d.step) for d in storage.list_drafts(WS, second, lead_ids=ann)] == [
            (second, 1),
            (second, 2),
        ]
        assert len(storage.list_sends(OTHER_WS, make_campaign("camp-1").id, lead_ids=ann)) == 1

    def test_no_lead_ids_read_nothing(self, storage: Storage) -> None:
        _stored(storage)
        camp = make_campaign("camp-1").id

        assert storage.list_drafts(WS, camp, lead_ids=[]) == []
        assert storage.list_sends(WS, camp, lead_ids=()) == []

    def test_lead_id_and_lead_ids_together_are_refused(self, storage: Storage) -> None:
        camp = make_campaign("camp-1").id

        with pytest.raises(InvalidInput, match="list_drafts"):
            storage.list_drafts(WS, camp, LeadId("lead-ann"), lead_ids=[LeadId("lead-ann")])
        with pytest.raises(InvalidInput, match="list_sends"):
            storage.list_sends(WS, camp, LeadId("lead-ann"), lead_ids=[LeadId("lead-ann")])
