from __future__ import annotations

import pytest
from hypothesis import given

from starlight_sequences import cadence as cadence_module
from starlight_sequences import shapes
from starlight_sequences.cadence import (
    Cadence,
    Exclusion,
    ExclusionReason,
    lead_channels,
    resolve_cadence,
)
from starlight_sequences.channels import Action, Channel
from starlight_sequences.ids import LeadId
from starlight_sequences.leads import Lead
from starlight_sequences.shapes import SendShape, Step, WaitAnchor
from tests.unit._shape_strategies import leads
from tests.unit._shape_strategies import shapes as any_shapes

EMAIL = Action.EMAIL
CONNECT = Action.LINKEDIN_CONNECT
MESSAGE = Action.LINKEDIN_MESSAGE
PREV = WaitAnchor.PREVIOUS_STEP
ACCEPTED = WaitAnchor.CONNECTION_ACCEPTED

ADDRESS = "ada@example.com"
PROFILE = "https://www.linkedin.com/in/ada"

LEAD_KINDS: dict[str, Lead] = {
    "email only": Lead(id=LeadId("L"), email=ADDRESS),
    "linkedin only": Lead(id=LeadId("L"), linkedin_url=PROFILE),
    "linkedin only, connected": Lead(id=LeadId("L"), linkedin_url=PROFILE, linkedin_connected=True),
    "both": Lead(id=LeadId("L"), email=ADDRESS, linkedin_url=PROFILE),
    "both, connected": Lead(
        id=LeadId("L"), email=ADDRESS, linkedin_url=PROFILE, linkedin_connected=True
    ),
    "neither": Lead(id=LeadId("L")),
    "connected, no profile": Lead(id=LeadId("L"), linkedin_connected=True),
}

# (number, action, wait, anchor, gated) per step, or the exclusion reason.
Row = list[tuple[int, Action, int, WaitAnchor, bool]] | ExclusionReason

EXPECTED: dict[tuple[str, str], Row] = {
    # cold-email
    ("cold-email", "email only"): [(1, EMAIL, 0, PREV, False)],
    ("cold-email", "linkedin only"): ExclusionReason.NO_EMAIL_FOR_SHAPE,
    ("cold-email", "linkedin only, connected"): ExclusionReason.NO_EMAIL_FOR_SHAPE,
    ("cold-email", "both"): [(1, EMAIL, 0, PREV, False)],
    ("cold-email", "both, connected"): [(1, EMAIL, 0, PREV, False)],
    ("cold-email", "neither"): ExclusionReason.NO_CHANNEL,
    ("cold-email", "connected, no profile"): ExclusionReason.NO_CHANNEL,
    # email-sequence
    ("email-sequence", "email only"): [
        (1, EMAIL, 0, PREV, False),
        (2, EMAIL, 3, PREV, False),
        (3, EMAIL, 4, PREV, False),
    ],
    ("email-sequence", "linkedin only"): ExclusionReason.NO_EMAIL_FOR_SHAPE,
    ("email-sequence", "linkedin only, connected"): ExclusionReason.NO_EMAIL_FOR_SHAPE,
    ("email-sequence", "both"): [
        (1, EMAIL, 0, PREV, False),
        (2, EMAIL, 3, PREV, False),
        (3, EMAIL, 4, PREV, False),
    ],
    ("email-sequence", "both, connected"): [
        (1, EMAIL, 0, PREV, False),
        (2, EMAIL, 3, PREV, False),
        (3, EMAIL, 4, PREV, False),
    ],
    ("email-sequence", "neither"): ExclusionReason.NO_CHANNEL,
    ("email-sequence", "connected, no profile"): ExclusionReason.NO_CHANNEL,
    # email-linkedin
    ("email-linkedin", "email only"): [(1, EMAIL, 0, PREV, False)],
    ("email-linkedin", "linkedin only"): [
        (2, CONNECT, 0, PREV, False),
        (3, MESSAGE, 1, ACCEPTED, True),
    ],
    ("email-linkedin", "linkedin only, connected"): [(3, MESSAGE, 0, PREV, False)],
    ("email-linkedin", "both"): [
        (1, EMAIL, 0, PREV, False),
        (2, CONNECT, 2, PREV, False),
        (3, MESSAGE, 1, ACCEPTED, True),
    ],
    ("email-linkedin", "both, connected"): [
        (1, EMAIL, 0, PREV, False),
        (3, MESSAGE, 3, PREV, False),
    ],
    ("email-linkedin", "neither"): ExclusionReason.NO_CHANNEL,
    ("email-linkedin", "connected, no profile"): ExclusionReason.NO_CHANNEL,
    # linkedin-note
    ("linkedin-note", "email only"): ExclusionReason.NO_LINKEDIN_FOR_SHAPE,
    ("linkedin-note", "linkedin only"): [(1, CONNECT, 0, PREV, False)],
    ("linkedin-note", "linkedin only, connected"): ExclusionReason.ALREADY_CONNECTED,
    ("linkedin-note", "both"): [(1, CONNECT, 0, PREV, False)],
    ("linkedin-note", "both, connected"): ExclusionReason.ALREADY_CONNECTED,
    ("linkedin-note", "neither"): ExclusionReason.NO_CHANNEL,
    ("linkedin-note", "connected, no profile"): ExclusionReason.NO_CHANNEL,
}


def outcome(result: Cadence | Exclusion) -> Row:
    if isinstance(result, Exclusion):
        return result.reason
    return [
        (s.number, s.action, s.wait_days, s.counts_from, s.gated_on_acceptance)
        for s in result.steps
    ]


def test_cadence_module_exports_exactly_its_public_names() -> None:
    assert cadence_module.__all__ == sorted(cadence_module.__all__)
    assert set(cadence_module.__all__) == {
        "Cadence",
        "CadenceStep",
        "Exclusion",
        "ExclusionReason",
        "fallback_dropped",
        "lead_channels",
        "resolve_cadence",
    }


@pytest.mark.parametrize(("shape_key", "kind"), sorted(EXPECTED))
def test_stock_shapes_resolve_per_lead_kind_as_the_docs_table_says(
    shape_key: str, kind: str
) -> None:
    result = resolve_cadence(shapes.get(shape_key), LEAD_KINDS[kind])
    assert outcome(result) == EXPECTED[(shape_key, kind)]
    assert result.lead_id == "L"
    assert result.shape_key == shape_key


def test_the_table_covers_every_stock_shape_and_lead_kind() -> None:
    assert set(EXPECTED) == {(s, k) for s in shapes.STOCK for k in LEAD_KINDS}


def test_a_linkedin_only_lead_gets_the_request_at_enrolment_then_the_message_after_acceptance() -> (
    None
):
    result = resolve_cadence(shapes.get("email-linkedin"), LEAD_KINDS["linkedin only"])
    assert isinstance(result, Cadence)
    request, message = result.steps
    assert (request.action, request.wait_days, request.counts_from) == (CONNECT, 0, PREV)
    assert not request.needs_draft
    assert (message.action, message.wait_days, message.counts_from) == (MESSAGE, 1, ACCEPTED)
    assert message.gated_on_acceptance
    assert message.needs_draft
    assert result.waits_on_connection
    assert result.drafts_needed == 1


def test_the_cadence_keeps_each_steps_guidance_and_note() -> None:
    result = resolve_cadence(shapes.get("linkedin-note"), LEAD_KINDS["linkedin only"])
    assert isinstance(result, Cadence)
    (request,) = result.steps
    assert request.with_note
    assert request.needs_draft
    assert request.guidance == shapes.get("linkedin-note").step(1).guidance
    assert result.channels == {Channel.LINKEDIN}


def test_exclusions_carry_a_sentence_naming_the_lead_and_the_shape() -> None:
    result = resolve_cadence(shapes.get("cold-email"), LEAD_KINDS["linkedin only"])
    assert isinstance(result, Exclusion)
    assert "'L'" in result.message
    assert "'cold-email'" in result.message
    assert "no email address" in result.message
    connected_without_profile = resolve_cadence(
        shapes.get("cold-email"), LEAD_KINDS["connected, no profile"]
    )
    assert isinstance(connected_without_profile, Exclusion)
    assert "no LinkedIn profile URL" in connected_without_profile.message


def test_an_empty_email_counts_as_no_email() -> None:
    assert lead_channels(Lead(id=LeadId("x"), email="", linkedin_url="")) == frozenset()


LONG = SendShape(
    key="long",
    name="Long",
    description="email, request, message, email",
    steps=(
        Step(number=1, action=EMAIL, wait_days=0),
        Step(number=2, action=CONNECT, wait_days=2),
        Step(number=3, action=MESSAGE, wait_days=1, counts_from=ACCEPTED),
        Step(number=4, action=EMAIL, wait_days=3),
    ),
)


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        (
            "both",
            [
                (1, EMAIL, 0, PREV, False),
                (2, CONNECT, 2, PREV, False),
                (3, MESSAGE, 1, ACCEPTED, True),
                (4, EMAIL, 3, PREV, False),
            ],
        ),
        ("email only", [(1, EMAIL, 0, PREV, False), (4, EMAIL, 3, PREV, False)]),
        ("linkedin only", [(2, CONNECT, 0, PREV, False), (3, MESSAGE, 1, ACCEPTED, True)]),
        ("linkedin only, connected", [(3, MESSAGE, 0, PREV, False)]),
        (
            "both, connected",
            [(1, EMAIL, 0, PREV, False), (3, MESSAGE, 3, PREV, False), (4, EMAIL, 3, PREV, False)],
        ),
    ],
)
def test_waits_are_rebased_as_the_docs_table_says(kind: str, expected: Row) -> None:
    assert outcome(resolve_cadence(LONG, LEAD_KINDS[kind])) == expected


FOR_CONNECTED = SendShape(
    key="warm",
    name="Warm",
    description="message existing connections, then email",
    for_connected_leads=True,
    steps=(
        Step(number=1, action=MESSAGE, wait_days=0),
        Step(number=2, action=EMAIL, wait_days=2),
    ),
)


def test_a_shape_for_connected_leads_messages_connected_leads_without_gating() -> None:
    assert outcome(resolve_cadence(FOR_CONNECTED, LEAD_KINDS["both, connected"])) == [
        (1, MESSAGE, 0, PREV, False),
        (2, EMAIL, 2, PREV, False),
    ]


def test_a_shape_for_connected_leads_gives_unconnected_leads_only_its_other_steps() -> None:
    assert outcome(resolve_cadence(FOR_CONNECTED, LEAD_KINDS["both"])) == [
        (2, EMAIL, 0, PREV, False)
    ]


def test_a_shape_for_connected_leads_excludes_an_unconnected_linkedin_only_lead() -> None:
    result = resolve_cadence(FOR_CONNECTED, LEAD_KINDS["linkedin only"])
    assert isinstance(result, Exclusion)
    assert result.reason is ExclusionReason.NOT_CONNECTED
    assert "not a LinkedIn connection" in result.message


# --- properties -----------------------------------------------------------------------------


def reachable(step: Step, shape: SendShape, lead: Lead) -> bool:
    """An independent statement of which shape steps a lead can receive."""
    channels = lead_channels(lead)
    connected = lead.linkedin_connected and Channel.LINKEDIN in channels
    if step.action.channel not in channels:
        return False
    if step.action is CONNECT:
        return not connected
    if step.is_fallback:  # the email sent when a connection request is not accepted
        return any(
            s.action is CONNECT and reachable(s, shape, lead)
            for s in shape.steps
            if s.number < step.number
        )
    if step.action is MESSAGE and not connected:
        return any(s.action is CONNECT for s in shape.steps if s.number < step.number)
    return True


@given(any_shapes, leads())
def test_the_result_is_never_none_and_names_the_lead_and_shape(
    shape: SendShape, lead: Lead
) -> None:
    result = resolve_cadence(shape, lead)
    assert isinstance(result, Cadence | Exclusion)
    assert result.lead_id == lead.id
    assert result.shape_key == shape.key
    if isinstance(result, Cadence):
        assert result.steps
    else:
        assert result.message


@given(any_shapes, leads())
def test_no_resolved_step_uses_a_channel_the_lead_lacks(shape: SendShape, lead: Lead) -> None:
    result = resolve_cadence(shape, lead)
    if isinstance(result, Cadence):
        assert result.channels <= lead_channels(lead)


@given(any_shapes, leads())
def test_resolved_steps_keep_the_shapes_relative_order_and_content(
    shape: SendShape, lead: Lead
) -> None:
    result = resolve_cadence(shape, lead)
    if isinstance(result, Exclusion):
        return
    numbers = [s.number for s in result.steps]
    assert numbers == sorted(set(numbers))
    for resolved in result.steps:
        original = shape.step(resolved.number)
        assert resolved.action is original.action
        assert resolved.guidance == original.guidance
        assert resolved.with_note == original.with_note


@given(any_shapes, leads())
def test_exactly_the_reachable_steps_are_kept(shape: SendShape, lead: Lead) -> None:
    result = resolve_cadence(shape, lead)
    kept = [] if isinstance(result, Exclusion) else [s.number for s in result.steps]
    assert kept == [s.number for s in shape.steps if reachable(s, shape, lead)]


@given(any_shapes, leads())
def test_every_message_is_gated_on_an_earlier_request_unless_the_lead_is_connected(
    shape: SendShape, lead: Lead
) -> None:
    result = resolve_cadence(shape, lead)
    if isinstance(result, Exclusion):
        return
    connected = lead.linkedin_connected
    for index, step in enumerate(result.steps):
        earlier = result.steps[:index]
        if step.action is MESSAGE and not connected:
            assert step.gated_on_acceptance
            assert any(s.action is CONNECT for s in earlier)
        else:
            assert not step.gated_on_acceptance
        if connected:
            assert step.action is not CONNECT
            assert step.counts_from is PREV


@given(any_shapes, leads())
def test_every_lead_with_a_channel_the_shape_uses_gets_a_step_or_a_connection_reason(
    shape: SendShape, lead: Lead
) -> None:
    result = resolve_cadence(shape, lead)
    if not lead_channels(lead) & shape.channels:
        assert isinstance(result, Exclusion)
        return
    if isinstance(result, Exclusion):
        if result.reason is ExclusionReason.NO_LINKEDIN_FOR_SHAPE:
            # A lead with only an address, on a shape whose only email is the fallback of a
            # connection request it cannot get.
            assert Channel.LINKEDIN not in lead_channels(lead)
            assert all(s.is_fallback for s in shape.steps if s.channel is Channel.EMAIL)
            return
        # Otherwise the only way: every step on the lead's channels is a request to a
        # connected lead, or a message for connections to a lead that is not one.
        assert result.reason in {ExclusionReason.ALREADY_CONNECTED, ExclusionReason.NOT_CONNECTED}
        assert Channel.EMAIL not in lead_channels(lead) & shape.channels
        if result.reason is ExclusionReason.ALREADY_CONNECTED:
            assert lead.linkedin_connected
            assert all(s.action is CONNECT for s in shape.steps if s.channel is Channel.LINKEDIN)
        else:
            assert not lead.linkedin_connected
            assert shape.for_connected_leads


@given(any_shapes, leads())
def test_a_lead_that_is_not_connected_on_a_plain_shape_is_never_excluded_if_reachable(
    shape: SendShape, lead: Lead
) -> None:
    if lead.linkedin_connected or shape.for_connected_leads:
        return
    result = resolve_cadence(shape, lead)
    # Reachable: a step on one of its channels (a fallback email only after a request it gets).
    assert isinstance(result, Cadence) == any(reachable(s, shape, lead) for s in shape.steps)


@given(any_shapes, leads())
def test_the_first_step_starts_at_enrolment_and_later_waits_follow_the_rule(
    shape: SendShape, lead: Lead
) -> None:
    result = resolve_cadence(shape, lead)
    if isinstance(result, Exclusion):
        return
    first, *later = result.steps
    assert (first.wait_days, first.counts_from, first.gated_on_acceptance) == (0, PREV, False)
    connect_waits = [s.wait_days for s in shape.steps if s.action is CONNECT]
    for step in later:
        original = shape.step(step.number)
        if lead.linkedin_connected and original.counts_from is ACCEPTED:
            assert step.wait_days == connect_waits[0] + original.wait_days
        else:
            assert (step.wait_days, step.counts_from) == (original.wait_days, original.counts_from)


@given(any_shapes, leads())
def test_drafts_are_needed_for_every_step_but_a_bare_connection_request(
    shape: SendShape, lead: Lead
) -> None:
    result = resolve_cadence(shape, lead)
    if isinstance(result, Exclusion):
        return
    for step in result.steps:
        assert step.needs_draft == (step.action is not CONNECT or step.with_note)
    assert result.drafts_needed == sum(s.needs_draft for s in result.steps)
