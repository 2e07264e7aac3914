"""Hypothesis strategies for send shapes and for leads as the cadence sees them."""

from __future__ import annotations

import attrs
from hypothesis import strategies as st

from starlight_sequences.channels import Action
from starlight_sequences.ids import LeadId
from starlight_sequences.leads import Lead
from starlight_sequences.shapes import STOCK, SendShape, Step, Variant, WaitAnchor, WinnerRule

waits = st.integers(min_value=0, max_value=20)
guidance = st.text(max_size=20)


@st.composite
def custom_shapes(draw: st.DrawFn) -> SendShape:
    """Any valid shape: up to six steps, at most one connect, messages only where allowed."""
    for_connected = draw(st.booleans())
    count = draw(st.integers(min_value=1, max_value=6))
    steps: list[Step] = []
    connect_seen = False
    for number in range(1, count + 1):
        allowed = [Action.EMAIL]
        if not connect_seen and not for_connected:
            allowed.append(Action.LINKEDIN_CONNECT)
        if connect_seen or for_connected:
            allowed.append(Action.LINKEDIN_MESSAGE)
        action = draw(st.sampled_from(allowed))
        anchor = WaitAnchor.PREVIOUS_STEP
        if action is Action.LINKEDIN_MESSAGE and connect_seen:
            anchor = draw(
                st.sampled_from([WaitAnchor.PREVIOUS_STEP, WaitAnchor.CONNECTION_ACCEPTED])
            )
        with_note = action is Action.LINKEDIN_CONNECT and draw(st.booleans())
        connect_seen = connect_seen or action is Action.LINKEDIN_CONNECT
        steps.append(
            Step(
                number=number,
                action=action,
                wait_days=draw(waits),
                counts_from=anchor,
                guidance=draw(guidance),
                with_note=with_note,
            )
        )
    if _may_fall_back(steps) and draw(st.booleans()):
        steps.append(
            Step(
                number=len(steps) + 1,
                action=Action.EMAIL,
                wait_days=draw(waits),
                counts_from=WaitAnchor.CONNECTION_NOT_ACCEPTED,
                guidance=draw(guidance),
            )
        )
    return SendShape(
        key=draw(st.from_regex(r"[a-z][a-z0-9-]{0,15}", fullmatch=True)),
        name=draw(st.text(max_size=20)),
        description=draw(st.text(max_size=40)),
        steps=tuple(steps),
        for_connected_leads=for_connected,
    )


def _may_fall_back(steps: list[Step]) -> bool:
    """Whether a fallback can end ``steps``: a connect followed by one or more messages only."""
    actions = [step.action for step in steps]
    if Action.LINKEDIN_CONNECT not in actions:
        return False
    after = actions[actions.index(Action.LINKEDIN_CONNECT) + 1 :]
    return bool(after) and all(a is Action.LINKEDIN_MESSAGE for a in after)


stock_shapes = st.sampled_from(list(STOCK.values()))
shapes = st.one_of(stock_shapes, custom_shapes())


@st.composite
def leads(draw: st.DrawFn, lead_id: str | None = None) -> Lead:
    """A lead with any mix of email, LinkedIn profile and connection status."""
    ident = lead_id if lead_id is not None else draw(st.from_regex(r"L[0-9]{1,6}", fullmatch=True))
    has_email = draw(st.booleans())
    has_linkedin = draw(st.booleans())
    return Lead(
        id=LeadId(ident),
        email=f"{ident.lower()}@example.com" if has_email else None,
        linkedin_url=f"https://www.linkedin.com/in/lead-{ident.lower()}" if has_linkedin else None,
        linkedin_connected=draw(st.booleans()),
    )


@st.composite
def lead_lists(draw: st.DrawFn, max_size: int = 12) -> list[Lead]:
    """Leads with distinct ids."""
    count = draw(st.integers(min_value=0, max_value=max_size))
    return [draw(leads(lead_id=f"L{i}")) for i in range(count)]


variant_keys = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,8}", fullmatch=True)


@st.composite
def shapes_with_variants(draw: st.DrawFn) -> SendShape:
    """A valid custom shape in which some drafted steps are A/B tests (2 to 4 variants, an
    optional winner rule)."""
    shape = draw(custom_shapes())
    steps = []
    for step in shape.steps:
        if step.needs_draft and draw(st.booleans()):
            keys = draw(st.lists(variant_keys, min_size=2, max_size=4, unique=True))
            variants = tuple(
                Variant(key=key, guidance=draw(st.text(min_size=1, max_size=20).filter(str.strip)))
                for key in keys
            )
            winner = draw(st.none() | st.builds(WinnerRule, after_sends=st.integers(1, 500)))
            step = attrs.evolve(step, variants=variants, winner=winner)
        steps.append(step)
    return attrs.evolve(shape, steps=tuple(steps))
