"""Creation at scale resolves each distinct cadence once: what it shares between leads must be
exactly what ``resolve_cadence`` gives each lead on its own."""

from __future__ import annotations

import attrs
from hypothesis import given

from starlight_sequences import shapes as stock
from starlight_sequences.cadence import Cadence, Exclusion, resolve_cadence
from starlight_sequences.channels import Action
from starlight_sequences.ids import LeadId
from starlight_sequences.leads import Lead
from starlight_sequences.service._outbound import _Cadences
from starlight_sequences.shapes import SendShape
from tests.unit._shape_strategies import lead_lists, shapes


@given(shape=shapes, leads=lead_lists(max_size=16))
def test_shared_cadences_are_what_each_lead_resolves_to_on_its_own(
    shape: SendShape, leads: list[Lead]
) -> None:
    cadences = _Cadences(shape, drop_notes=False)
    for lead in leads:
        shared = cadences.steps_of(lead)
        alone = resolve_cadence(shape, lead)
        if isinstance(alone, Exclusion):
            assert shared == alone
        else:
            assert isinstance(alone, Cadence)
            assert shared == alone.steps


@given(shape=shapes, leads=lead_lists(max_size=16))
def test_with_notes_used_up_every_shared_connection_request_goes_without_one(
    shape: SendShape, leads: list[Lead]
) -> None:
    cadences = _Cadences(shape, drop_notes=True)
    for lead in leads:
        shared = cadences.steps_of(lead)
        alone = resolve_cadence(shape, lead)
        if isinstance(alone, Exclusion):
            assert shared == alone
            continue
        expected = tuple(
            attrs.evolve(s, with_note=False) if s.action is Action.LINKEDIN_CONNECT else s
            for s in alone.steps
        )
        assert shared == expected
        assert not any(s.with_note for s in shared if s.action is Action.LINKEDIN_CONNECT)


def test_an_exclusion_names_its_own_lead_even_when_another_lead_was_excluded_alike() -> None:
    cadences = _Cadences(stock.get("email-sequence"), drop_notes=False)
    first = cadences.steps_of(
        Lead(id=LeadId("L1"), linkedin_url="https://www.linkedin.com/in/ann-lee")
    )
    second = cadences.steps_of(
        Lead(id=LeadId("L2"), linkedin_url="https://www.linkedin.com/in/bob-ray")
    )

    assert isinstance(first, Exclusion)
    assert isinstance(second, Exclusion)
    assert (first.lead_id, second.lead_id) == ("L1", "L2")
    assert "'L2'" in second.message
