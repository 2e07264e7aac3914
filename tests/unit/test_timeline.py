from __future__ import annotations

import contextlib
import datetime as dt
import io
import itertools
import re
import xml.etree.ElementTree as ET
import zoneinfo
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from starlight_sequences import shapes
from starlight_sequences import timeline as timeline_module
from starlight_sequences.cadence import Cadence, CadenceStep, resolve_cadence
from starlight_sequences.campaigns import SendStatus
from starlight_sequences.channels import Action
from starlight_sequences.errors import InvalidInput, UnknownTimezone
from starlight_sequences.ids import LeadId
from starlight_sequences.leads import Lead
from starlight_sequences.shapes import SendShape, Step, WaitAnchor
from starlight_sequences.timeline import (
    LeadStepState,
    Timeline,
    TimelineConnector,
    TimelineNode,
    render_svg,
    render_text,
    timeline_of_lead,
    timeline_of_shape,
)
from tests.unit._shape_strategies import shapes as any_shapes

SVG = "{http://www.w3.org/2000/svg}"
UTC = dt.UTC
NEW_YORK = zoneinfo.ZoneInfo("America/New_York")
MALICIOUS = "<script>alert(1)</script>"


def _shape(*steps: Step, for_connected_leads: bool = False) -> SendShape:
    return SendShape(
        key="custom",
        name="Custom",
        description="",
        steps=steps,
        for_connected_leads=for_connected_leads,
    )


def _step(
    number: int,
    action: Action = Action.EMAIL,
    wait: int = 0,
    *,
    counts_from: WaitAnchor = WaitAnchor.PREVIOUS_STEP,
    with_note: bool = False,
) -> Step:
    return Step(
        number=number, action=action, wait_days=wait, counts_from=counts_from, with_note=with_note
    )


def _cadence_step(
    number: int,
    action: Action = Action.EMAIL,
    wait: int = 0,
    *,
    counts_from: WaitAnchor = WaitAnchor.PREVIOUS_STEP,
    gated: bool = False,
) -> CadenceStep:
    return CadenceStep(
        number=number,
        action=action,
        wait_days=wait,
        counts_from=counts_from,
        guidance="",
        with_note=False,
        gated_on_acceptance=gated,
    )


def _steps_part(text: str) -> str:
    """The rendering without its title line."""
    return text.split("\n", 1)[1]


def _parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    return root


def _texts(root: ET.Element) -> list[str]:
    return [element.text or "" for element in root.iter(f"{SVG}text")]


def _node_circles(root: ET.Element) -> dict[str, ET.Element]:
    """The circle of each node group, keyed by the number drawn in it."""
    found: dict[str, ET.Element] = {}
    for group in root.iter(f"{SVG}g"):
        circle = group.find(f"{SVG}circle")
        number = group.find(f"{SVG}text")
        assert circle is not None
        assert number is not None
        found[number.text or ""] = circle
    return found


# --------------------------------------------------------------------------- shapes as text

STOCK_TEXT = {
    "cold-email": "Cold email (cold-email)\n1 Email\n",
    "email-sequence": (
        "Email sequence (email-sequence)\n"
        "1 Email -- 3 business days --> 2 Email -- 4 business days --> 3 Email\n"
    ),
    "email-linkedin": (
        "Email + LinkedIn (email-linkedin)\n"
        "1 Email\n"
        "|   2 business days\n"
        "v\n"
        "2 LinkedIn connection request\n"
        "|   waits for acceptance, then 1 business day\n"
        "v\n"
        "3 LinkedIn message\n"
    ),
    "linkedin-note": "LinkedIn note (linkedin-note)\n1 LinkedIn connection request + note\n",
}


@pytest.mark.parametrize("key", sorted(STOCK_TEXT))
def test_each_stock_shape_renders_as_numbered_steps_joined_by_waits(key: str) -> None:
    assert render_text(timeline_of_shape(shapes.get(key))) == STOCK_TEXT[key]


def test_stock_shapes_cover_every_stock_key() -> None:
    assert set(STOCK_TEXT) == set(shapes.STOCK)


@pytest.mark.parametrize("key", sorted(STOCK_TEXT))
def test_text_is_ascii_by_default(key: str) -> None:
    assert render_text(timeline_of_shape(shapes.get(key))).isascii()


def test_unicode_text_draws_arrows_and_bars() -> None:
    one_line = render_text(timeline_of_shape(shapes.get("email-sequence")), unicode=True)
    stacked = render_text(timeline_of_shape(shapes.get("email-linkedin")), unicode=True)

    assert (
        _steps_part(one_line)
        == "1 Email ── 3 business days ──▶ 2 Email ── 4 business days ──▶ 3 Email\n"
    )
    assert "│   waits for acceptance, then 1 business day\n▼\n3 LinkedIn message" in stacked


def test_steps_that_do_not_fit_the_width_go_one_per_line() -> None:
    shape = shapes.get("email-sequence")

    narrow = render_text(timeline_of_shape(shape), width=40)

    assert _steps_part(narrow).splitlines() == [
        "1 Email",
        "|   3 business days",
        "v",
        "2 Email",
        "|   4 business days",
        "v",
        "3 Email",
    ]


def test_a_line_of_exactly_the_width_stays_on_one_line() -> None:
    text = render_text(timeline_of_shape(shapes.get("email-sequence")))
    line = _steps_part(text).rstrip("\n")

    assert render_text(timeline_of_shape(shapes.get("email-sequence")), width=len(line)) == text
    assert "\nv\n" in render_text(
        timeline_of_shape(shapes.get("email-sequence")), width=len(line) - 1
    )


def test_wide_characters_count_two_columns() -> None:
    states = (LeadStepState(step=1, reason="返信" * 20),)
    timeline = timeline_of_lead("Cy", SEQUENCE_STEPS[:2], states)

    line = "1 Email [" + "返信" * 20 + "] -- 3 business days --> 2 Email"
    assert render_text(timeline, width=len(line) + 40) == f"Cy\n{line}\n"
    assert "\nv\n" in render_text(timeline, width=len(line) + 39)


# --------------------------------------------------------------------------- connectors


@pytest.mark.parametrize(
    ("wait", "label"),
    [
        (0, "next business moment"),
        (1, "1 business day"),
        (2, "2 business days"),
        (10, "10 business days"),
    ],
)
def test_wait_connector_wording_for_zero_one_and_many_days(wait: int, label: str) -> None:
    timeline = timeline_of_shape(_shape(_step(1), _step(2, wait=wait)))

    assert timeline.connectors == (
        TimelineConnector(
            wait_days=wait,
            counts_from=WaitAnchor.PREVIOUS_STEP,
            gated_on_acceptance=False,
            label=label,
        ),
    )
    assert _steps_part(render_text(timeline)) == f"1 Email -- {label} --> 2 Email\n"


@pytest.mark.parametrize(
    ("wait", "label"),
    [
        (0, "waits for acceptance, then next business moment"),
        (1, "waits for acceptance, then 1 business day"),
        (3, "waits for acceptance, then 3 business days"),
    ],
)
def test_acceptance_anchored_connector_says_it_waits_for_acceptance(wait: int, label: str) -> None:
    shape = _shape(
        _step(1, Action.LINKEDIN_CONNECT),
        _step(2, Action.LINKEDIN_MESSAGE, wait, counts_from=WaitAnchor.CONNECTION_ACCEPTED),
    )

    (connector,) = timeline_of_shape(shape).connectors

    assert connector.label == label
    assert connector.counts_from is WaitAnchor.CONNECTION_ACCEPTED
    assert connector.gated_on_acceptance


def test_message_counted_from_the_previous_step_is_still_gated_on_acceptance() -> None:
    shape = _shape(
        _step(1, Action.LINKEDIN_CONNECT),
        _step(2, Action.EMAIL, 1),
        _step(3, Action.LINKEDIN_MESSAGE, 2),
    )

    connectors = timeline_of_shape(shape).connectors

    assert [c.label for c in connectors] == [
        "1 business day",
        "2 business days, not before acceptance",
    ]
    assert [c.gated_on_acceptance for c in connectors] == [False, True]


def test_messages_of_a_shape_for_connected_leads_are_not_gated() -> None:
    shape = _shape(
        _step(1, Action.LINKEDIN_MESSAGE),
        _step(2, Action.LINKEDIN_MESSAGE, 2),
        for_connected_leads=True,
    )

    (connector,) = timeline_of_shape(shape).connectors

    assert connector.label == "2 business days"
    assert not connector.gated_on_acceptance


def test_the_first_steps_own_wait_is_not_drawn() -> None:
    timeline = timeline_of_shape(_shape(_step(1, wait=5), _step(2, wait=1)))

    assert [c.wait_days for c in timeline.connectors] == [1]


def test_node_labels_name_each_action() -> None:
    shape = _shape(
        _step(1, Action.EMAIL),
        _step(2, Action.LINKEDIN_CONNECT, with_note=True),
        _step(3, Action.LINKEDIN_MESSAGE),
    )
    plain = shapes.get("email-linkedin")

    assert [n.label for n in timeline_of_shape(shape).nodes] == [
        "Email",
        "LinkedIn connection request + note",
        "LinkedIn message",
    ]
    assert timeline_of_shape(plain).nodes[1].label == "LinkedIn connection request"


def test_a_shape_with_a_blank_name_is_titled_by_its_key() -> None:
    shape = SendShape(key="k1", name="  ", description="", steps=(_step(1),))

    assert timeline_of_shape(shape).title == "k1"


# --------------------------------------------------------------------------- the model


def test_a_timeline_needs_one_connector_fewer_than_nodes() -> None:
    node = TimelineNode(position=1, step=1, action=Action.EMAIL, label="Email")

    with pytest.raises(InvalidInput, match="1 nodes need 0 connectors, not 1"):
        Timeline(
            title="t",
            nodes=(node,),
            connectors=(
                TimelineConnector(
                    wait_days=0,
                    counts_from=WaitAnchor.PREVIOUS_STEP,
                    gated_on_acceptance=False,
                    label="x",
                ),
            ),
        )


def test_a_timeline_needs_nodes_numbered_from_one() -> None:
    with pytest.raises(InvalidInput, match="at least one node"):
        Timeline(title="t", nodes=(), connectors=())
    with pytest.raises(InvalidInput, match="node 1 has position 2"):
        Timeline(
            title="t",
            nodes=(TimelineNode(position=2, step=1, action=Action.EMAIL, label="Email"),),
            connectors=(),
        )


def test_a_node_refuses_a_naive_moment() -> None:
    with pytest.raises(InvalidInput, match="timeline node 1 field 'local_at'"):
        TimelineNode(
            position=1,
            step=1,
            action=Action.EMAIL,
            label="Email",
            local_at=dt.datetime(2026, 12, 1, 10, 0),
        )


def test_module_exports_are_sorted_and_pinned() -> None:
    assert timeline_module.__all__ == [
        "LeadStepState",
        "Timeline",
        "TimelineConnector",
        "TimelineNode",
        "render_svg",
        "render_text",
        "timeline_of_lead",
        "timeline_of_shape",
    ]


# --------------------------------------------------------------------------- leads

# New York leaves daylight saving time on Sun 2026-11-01: 10:14 local is 14:14 UTC before and
# 15:14 UTC after.
SEQUENCE_STEPS = (
    _cadence_step(1),
    _cadence_step(2, wait=3),
    _cadence_step(3, wait=4),
    _cadence_step(4, wait=2),
)
MIXED_STATES = (
    LeadStepState(step=1, status=SendStatus.SENT, at=dt.datetime(2026, 10, 29, 14, 14, tzinfo=UTC)),
    LeadStepState(step=2, status=SendStatus.SENT, at=dt.datetime(2026, 11, 3, 15, 14, tzinfo=UTC)),
    LeadStepState(
        step=3,
        status=SendStatus.SCHEDULED,
        at=dt.datetime(2026, 11, 9, 14, 30, tzinfo=UTC),
    ),
    LeadStepState(
        step=4,
        status=SendStatus.SKIPPED,
        at=dt.datetime(2026, 11, 9, 18, 2, tzinfo=UTC),
        reason="replied",
    ),
)


def test_lead_timeline_shows_status_and_local_time_on_both_sides_of_a_dst_change() -> None:
    timeline = timeline_of_lead(
        "Ada Lovelace", SEQUENCE_STEPS, MIXED_STATES, timezone="America/New_York"
    )

    assert render_text(timeline) == (
        "Ada Lovelace\n"
        "1 Email [sent Thu 2026-10-29 10:14 America/New_York]\n"
        "|   3 business days\n"
        "v\n"
        "2 Email [sent Tue 2026-11-03 10:14 America/New_York]\n"
        "|   4 business days\n"
        "v\n"
        "3 Email [scheduled Mon 2026-11-09 09:30 America/New_York]\n"
        "|   2 business days\n"
        "v\n"
        "4 Email [skipped Mon 2026-11-09 13:02 America/New_York; replied]\n"
    )
    offsets = [node.local_at.utcoffset() for node in timeline.nodes if node.local_at is not None]
    assert offsets == [dt.timedelta(hours=-4), *[dt.timedelta(hours=-5)] * 3]


def test_lead_timeline_keeps_the_model_of_each_step() -> None:
    timeline = timeline_of_lead("Ada", SEQUENCE_STEPS, MIXED_STATES, timezone="America/New_York")
    first = timeline.nodes[0]

    assert first == TimelineNode(
        position=1,
        step=1,
        action=Action.EMAIL,
        label="Email",
        status=SendStatus.SENT,
        local_at=dt.datetime(2026, 10, 29, 10, 14, tzinfo=NEW_YORK),
        timezone="America/New_York",
    )
    assert [n.status for n in timeline.nodes] == [s.status for s in MIXED_STATES]
    assert timeline.nodes[3].reason == "replied"
    assert timeline.is_for_lead


def test_lead_timeline_across_the_sydney_dst_start_keeps_local_business_hours() -> None:
    # Sydney moves to daylight saving time on Sun 2026-10-04: +10:00 before, +11:00 after.
    steps = (_cadence_step(1), _cadence_step(2, wait=1))
    states = (
        LeadStepState(
            step=1, status=SendStatus.SENT, at=dt.datetime(2026, 10, 2, 0, 0, tzinfo=UTC)
        ),
        LeadStepState(
            step=2, status=SendStatus.PENDING, at=dt.datetime(2026, 10, 4, 23, 0, tzinfo=UTC)
        ),
    )

    text = render_text(timeline_of_lead("Bo", steps, states, timezone="Australia/Sydney"))

    assert "1 Email [sent Fri 2026-10-02 10:00 Australia/Sydney]" in text
    assert "2 Email [pending Mon 2026-10-05 10:00 Australia/Sydney]" in text


def test_waiting_step_shows_its_acceptance_deadline_and_gated_wait() -> None:
    lead = Lead(
        id=LeadId("L1"), email="ada@example.com", linkedin_url="https://www.linkedin.com/in/ada"
    )
    cadence = resolve_cadence(shapes.get("email-linkedin"), lead)
    assert isinstance(cadence, Cadence)
    states = (
        LeadStepState(
            step=1, status=SendStatus.SENT, at=dt.datetime(2026, 12, 1, 15, 14, tzinfo=UTC)
        ),
        LeadStepState(
            step=2, status=SendStatus.SENT, at=dt.datetime(2026, 12, 3, 14, 5, tzinfo=UTC)
        ),
        LeadStepState(
            step=3, status=SendStatus.WAITING, at=dt.datetime(2026, 12, 24, 22, 0, tzinfo=UTC)
        ),
    )

    text = render_text(timeline_of_lead("Ada", cadence.steps, states, timezone="America/New_York"))

    assert _steps_part(text).splitlines() == [
        "1 Email [sent Tue 2026-12-01 10:14 America/New_York]",
        "|   2 business days",
        "v",
        "2 LinkedIn connection request [sent Thu 2026-12-03 09:05 America/New_York]",
        "|   waits for acceptance, then 1 business day",
        "v",
        "3 LinkedIn message [waiting until Thu 2026-12-24 17:00 America/New_York]",
    ]


def test_lead_steps_are_numbered_by_position_and_keep_their_shape_number() -> None:
    lead = Lead(id=LeadId("L2"), linkedin_url="https://www.linkedin.com/in/bo-b")
    cadence = resolve_cadence(shapes.get("email-linkedin"), lead)
    assert isinstance(cadence, Cadence)

    timeline = timeline_of_lead("Bo", cadence.steps, ())

    assert [(n.position, n.step) for n in timeline.nodes] == [(1, 2), (2, 3)]
    assert render_text(timeline) == (
        "Bo\n1 LinkedIn connection request -- waits for acceptance, then 1 business day --> "
        "2 LinkedIn message\n"
    )
    assert not timeline.is_for_lead


def test_steps_without_a_stored_send_show_no_status_or_date() -> None:
    states = (
        LeadStepState(
            step=1, status=SendStatus.SCHEDULED, at=dt.datetime(2026, 12, 1, 15, 0, tzinfo=UTC)
        ),
    )

    timeline = timeline_of_lead("Cy", SEQUENCE_STEPS[:2], states, timezone="America/New_York")

    assert timeline.nodes[1].status is None
    assert timeline.nodes[1].local_at is None
    assert render_text(timeline).endswith(" --> 2 Email\n")


def test_a_status_without_a_moment_and_a_reason_without_a_status_still_show() -> None:
    states = (
        LeadStepState(step=1, status=SendStatus.WAITING),
        LeadStepState(step=2, reason="paused by the user"),
    )

    text = render_text(timeline_of_lead("Cy", SEQUENCE_STEPS[:2], states))

    assert (
        _steps_part(text)
        == "1 Email [waiting] -- 3 business days --> 2 Email [paused by the user]\n"
    )


def test_without_a_timezone_each_moment_shows_in_its_own_zone() -> None:
    states = (
        LeadStepState(
            step=1, status=SendStatus.SENT, at=dt.datetime(2026, 12, 1, 10, 14, tzinfo=NEW_YORK)
        ),
        LeadStepState(
            step=2, status=SendStatus.SCHEDULED, at=dt.datetime(2026, 12, 4, 15, 0, tzinfo=UTC)
        ),
    )

    text = render_text(timeline_of_lead("Cy", SEQUENCE_STEPS[:2], states))

    assert "1 Email [sent Tue 2026-12-01 10:14 America/New_York]" in text
    assert "2 Email [scheduled Fri 2026-12-04 15:00 UTC]" in text


def test_lead_timeline_rejects_states_that_do_not_match_the_cadence() -> None:
    with pytest.raises(InvalidInput, match="state for step 9, which the cadence does not have"):
        timeline_of_lead("Cy", SEQUENCE_STEPS, (LeadStepState(step=9),))
    with pytest.raises(InvalidInput, match="two states for step 2"):
        timeline_of_lead("Cy", SEQUENCE_STEPS, (LeadStepState(step=2), LeadStepState(step=2)))
    with pytest.raises(InvalidInput, match="the cadence has no steps"):
        timeline_of_lead("Cy", (), ())


def test_lead_timeline_rejects_an_unknown_timezone_and_naive_moments() -> None:
    with pytest.raises(UnknownTimezone):
        timeline_of_lead("Cy", SEQUENCE_STEPS, (), timezone="Mars/Olympus_Mons")
    with pytest.raises(InvalidInput, match="lead step 2 field 'at'"):
        LeadStepState(step=2, status=SendStatus.SENT, at=dt.datetime(2026, 12, 1, 10, 0))


def test_untrusted_text_cannot_drive_the_terminal() -> None:
    states = (LeadStepState(step=1, status=SendStatus.FAILED, reason="bad\x1b[2J\nrow\u202e"),)

    text = render_text(timeline_of_lead("Ev\x1b]0;x\x07il\r", SEQUENCE_STEPS[:1], states))

    assert text == "Ev?]0;x?il \n1 Email [failed; bad?[2J row?]\n"
    assert "\ufffd" in render_text(timeline_of_lead("\x1b", SEQUENCE_STEPS[:1], ()), unicode=True)


def test_hand_built_labels_are_cleaned_too() -> None:
    timeline = Timeline(
        title="t",
        nodes=(
            TimelineNode(position=1, step=1, action=Action.EMAIL, label="E\x1b[1m"),
            TimelineNode(position=2, step=2, action=Action.EMAIL, label="F"),
        ),
        connectors=(
            TimelineConnector(
                wait_days=1,
                counts_from=WaitAnchor.PREVIOUS_STEP,
                gated_on_acceptance=False,
                label="one\nday",
            ),
        ),
    )

    assert render_text(timeline) == "t\n1 E?[1m -- one day --> 2 F\n"


# --------------------------------------------------------------------------- SVG


@pytest.mark.parametrize("key", sorted(STOCK_TEXT))
def test_each_stock_shape_renders_to_well_formed_svg_with_numbers_and_labels(key: str) -> None:
    shape = shapes.get(key)
    timeline = timeline_of_shape(shape)

    root = _parse(render_svg(timeline))

    texts = _texts(root)
    joined = " ".join(texts)
    for node in timeline.nodes:
        assert str(node.position) in texts
        for word in node.label.split():
            assert word in joined
    for connector in timeline.connectors:
        assert connector.label.replace(",", "").split()[0] in joined
    assert len(_node_circles(root)) == len(shape.steps)
    assert root.findtext(f"{SVG}title") == timeline.title


def test_svg_sets_namespace_viewbox_and_size_and_needs_nothing_external() -> None:
    svg = render_svg(timeline_of_shape(shapes.get("email-linkedin")))
    root = _parse(svg)

    width, height = int(root.attrib["width"]), int(root.attrib["height"])
    assert root.attrib["viewBox"] == f"0 0 {width} {height}"
    assert 300 <= width <= 2000
    assert 100 <= height <= 2000
    for forbidden in ("<script", "<style", "href", "url(", "@import", "<foreignObject", " id="):
        assert forbidden not in svg


def test_svg_wait_labels_sit_between_their_nodes() -> None:
    root = _parse(render_svg(timeline_of_shape(shapes.get("email-sequence"))))

    texts = _texts(root)
    assert "3 business days" in texts
    assert "4 business days" in texts
    assert len(root.findall(f"{SVG}line")) >= 2


def test_svg_draws_acceptance_waits_dashed_and_explains_them_in_the_legend() -> None:
    svg = render_svg(timeline_of_shape(shapes.get("email-linkedin")))
    root = _parse(svg)

    dashed = [e for e in root.iter() if "stroke-dasharray" in e.attrib]
    assert dashed
    texts = _texts(root)
    assert "Legend" in texts
    assert "waits for the LinkedIn connection to be accepted" in texts
    assert [t for t in texts if t in ("waits for acceptance,", "then 1 business day")] == [
        "waits for acceptance,",
        "then 1 business day",
    ]


def test_svg_escapes_a_malicious_lead_name_and_reason() -> None:
    states = (LeadStepState(step=1, status=SendStatus.SKIPPED, reason=MALICIOUS),)
    timeline = timeline_of_lead(f'"{MALICIOUS}&', SEQUENCE_STEPS[:2], states)

    svg = render_svg(timeline)
    root = _parse(svg)

    assert "<script" not in svg
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in svg
    assert not [e for e in root.iter() if e.tag.endswith("script")]
    assert root.findtext(f"{SVG}title") == f'"{MALICIOUS}&'
    assert any(MALICIOUS in t for t in _texts(root))


def test_svg_stays_well_formed_with_characters_xml_cannot_hold() -> None:
    states = (
        LeadStepState(step=1, status=SendStatus.FAILED, reason="nul\x00 esc\x1b \ud800 \uffff"),
    )

    root = _parse(render_svg(timeline_of_lead("a\x00b\x0bc", SEQUENCE_STEPS[:1], states)))

    assert root.findtext(f"{SVG}title") == "a\ufffdb\ufffdc"


@pytest.mark.parametrize(
    ("status", "fill"),
    [
        (SendStatus.SENT, "#43a047"),
        (SendStatus.SCHEDULED, "#1e88e5"),
        (SendStatus.WAITING, "#ffb300"),
        (SendStatus.SKIPPED, "#bdbdbd"),
        (SendStatus.FAILED, "#e53935"),
        (SendStatus.PENDING, "#eceff1"),
        (SendStatus.CLAIMED, "#3949ab"),
        (None, "#ffffff"),
    ],
)
def test_svg_colours_each_node_by_its_status(status: SendStatus | None, fill: str) -> None:
    states = (LeadStepState(step=2, status=status),)

    root = _parse(render_svg(timeline_of_lead("Cy", SEQUENCE_STEPS[:2], states)))

    assert _node_circles(root)["2"].attrib["fill"] == fill


def test_lead_svg_shows_dates_zones_and_a_status_legend() -> None:
    timeline = timeline_of_lead("Ada", SEQUENCE_STEPS, MIXED_STATES, timezone="America/New_York")

    texts = _texts(_parse(render_svg(timeline)))

    assert "Thu 2026-10-29 10:14" in texts
    assert "Tue 2026-11-03 10:14" in texts
    assert "America/New_York" in texts
    assert "replied" in texts
    for legend in (
        "sent",
        "scheduled",
        "waiting for acceptance",
        "skipped",
        "failed",
        "pending (forecast)",
    ):
        assert legend in texts


def test_svg_shortens_long_reasons_on_the_canvas_and_keeps_them_in_the_tooltip() -> None:
    reason = "no acceptance within 15 business days " * 5
    states = (LeadStepState(step=1, status=SendStatus.SKIPPED, reason=reason),)

    root = _parse(render_svg(timeline_of_lead("Cy", SEQUENCE_STEPS[:1], states)))

    assert max(len(t) for t in _texts(root)) < 60
    tooltips = [g.findtext(f"{SVG}title") or "" for g in root.iter(f"{SVG}g")]
    assert any(reason.strip() in t for t in tooltips)


def test_svg_wraps_many_steps_onto_several_rows() -> None:
    shape = _shape(*(_step(n, wait=n % 3) for n in range(1, 10)))

    root = _parse(render_svg(timeline_of_shape(shape)))

    circles = _node_circles(root)
    rows = sorted({float(c.attrib["cy"]) for c in circles.values()})
    assert len(rows) == 3
    assert [float(circles[str(n)].attrib["cy"]) for n in (1, 4, 5, 8, 9)] == [
        rows[0],
        rows[0],
        rows[1],
        rows[1],
        rows[2],
    ]
    assert len(root.findall(f"{SVG}path")) == 2  # the arrows from one row to the next
    height = int(root.attrib["height"])
    assert all(float(c.attrib["cy"]) < height for c in circles.values())


# --------------------------------------------------------------------------- properties


def _in_order(text: str, pieces: list[str]) -> bool:
    start = 0
    for piece in pieces:
        found = text.find(piece, start)
        if found < 0:
            return False
        start = found + len(piece)
    return True


@given(any_shapes, st.booleans())
def test_any_valid_shape_renders_each_step_number_in_order(shape: SendShape, unicode: bool) -> None:
    timeline = timeline_of_shape(shape)

    text = render_text(timeline, unicode=unicode)

    pieces = [f"{node.position} {node.label}" for node in timeline.nodes]
    assert [node.position for node in timeline.nodes] == list(range(1, len(shape.steps) + 1))
    assert _in_order(_steps_part(text), pieces)
    assert _in_order(_steps_part(text), [c.label for c in timeline.connectors])
    if not unicode:
        assert _steps_part(text).isascii()


@given(any_shapes)
def test_any_valid_shape_renders_to_well_formed_svg(shape: SendShape) -> None:
    timeline = timeline_of_shape(shape)

    root = _parse(render_svg(timeline))

    assert sorted(_node_circles(root), key=int) == [str(n) for n in range(1, len(shape.steps) + 1)]


@given(
    st.lists(st.sampled_from([*SendStatus, None]), min_size=1, max_size=len(SEQUENCE_STEPS)),
    st.text(max_size=40),
    st.text(max_size=60),
    st.datetimes(
        min_value=dt.datetime(2000, 1, 1),
        max_value=dt.datetime(2100, 1, 1),
        timezones=st.sampled_from([UTC, NEW_YORK, zoneinfo.ZoneInfo("Asia/Kathmandu")]),
    ),
)
def test_any_lead_state_renders_to_text_in_order_and_to_well_formed_svg(
    statuses: list[SendStatus | None], title: str, reason: str, at: dt.datetime
) -> None:
    states = [
        LeadStepState(step=n, status=status, at=at, reason=reason)
        for n, status in enumerate(statuses, start=1)
    ]
    timeline = timeline_of_lead(title, SEQUENCE_STEPS, states, timezone="Europe/Berlin")

    text = render_text(timeline)
    root = _parse(render_svg(timeline))

    assert _in_order(_steps_part(text), [f"{n.position} {n.label}" for n in timeline.nodes])
    assert len(text.splitlines()) in (2, 1 + 3 * len(SEQUENCE_STEPS) - 2)
    assert len(_node_circles(root)) == len(SEQUENCE_STEPS)


# --------------------------------------------------------------------------- the docs

DOC = Path(__file__).parents[2] / "docs" / "monitoring.md"


def _timeline_examples() -> list[tuple[str, str]]:
    """(python, expected output) pairs: each python block of the Timeline section of
    docs/monitoring.md and the text block right after it."""
    text = DOC.read_text(encoding="utf-8")
    section = text.split("\n## Timeline\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```(\w+)\n(.*?)```", section, flags=re.DOTALL)
    return [
        (code, output)
        for (kind, code), (next_kind, output) in itertools.pairwise(blocks)
        if kind == "python" and next_kind == "text"
    ]


def test_docs_show_two_timeline_examples() -> None:
    assert len(_timeline_examples()) == 2


@pytest.mark.parametrize("index", [0, 1])
def test_docs_timeline_example_prints_what_the_docs_show(index: int) -> None:
    code, expected = _timeline_examples()[index]
    printed = io.StringIO()

    with contextlib.redirect_stdout(printed):
        exec(code, {})

    assert printed.getvalue() == expected
