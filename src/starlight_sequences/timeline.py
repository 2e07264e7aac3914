"""The campaign timeline: numbered steps joined by wait connectors (pure; DESIGN 1.7).

A :class:`Timeline` is a model, built for a send shape (:func:`timeline_of_shape`) or for one
lead's cadence with the state of its sends (:func:`timeline_of_lead`), and rendered as text
for terminals (:func:`render_text`) or as a self-contained SVG document for web pages
(:func:`render_svg`). Nothing here reads a clock or does I/O; the caller passes the moments.

Text that comes from outside (shape and lead names, skip reasons) is treated as untrusted:
control characters are replaced in both renderings and the SVG escapes everything it writes.
"""

from __future__ import annotations

import datetime as dt
import textwrap
import unicodedata
import zoneinfo
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from xml.sax.saxutils import escape

import attrs

from starlight_sequences.cadence import CadenceStep
from starlight_sequences.campaigns import SendStatus
from starlight_sequences.channels import Action
from starlight_sequences.errors import InvalidInput
from starlight_sequences.locations import load_timezone
from starlight_sequences.shapes import SendShape, Step, WaitAnchor

__all__ = [
    "LeadStepState",
    "Timeline",
    "TimelineConnector",
    "TimelineNode",
    "render_svg",
    "render_text",
    "timeline_of_lead",
    "timeline_of_shape",
]


def _check_aware(subject: str, moment: dt.datetime | None) -> None:
    if moment is not None and (moment.tzinfo is None or moment.utcoffset() is None):
        raise InvalidInput(
            f"{subject}: the datetime {moment.isoformat()} is naive; pass an aware one"
        )


@attrs.frozen(kw_only=True)
class LeadStepState:
    """What became of one step of one lead, as the service knows it from its stored sends.

    Attributes:
        step: the step's number in the shape (``CadenceStep.number``).
        status: the send's status; ``None`` when nothing is stored for the step yet.
        at: the moment that matters for the status, timezone-aware: when it was sent (``sent``),
            when it is due (``scheduled``, ``claimed``), the forecast (``pending``), the
            acceptance deadline (``waiting``), when it was skipped or failed; ``None`` if unknown.
        reason: why it was skipped or failed (or the last transient error); may be empty.

    Raises:
        InvalidInput: ``at`` is a naive datetime.
    """

    step: int
    status: SendStatus | None = None
    at: dt.datetime | None = None
    reason: str = ""

    def __attrs_post_init__(self) -> None:
        _check_aware(f"lead step {self.step} field 'at'", self.at)


@attrs.frozen(kw_only=True)
class TimelineNode:
    """One numbered step on a timeline.

    Attributes:
        position: 1-based place on the timeline; the number the renderings show.
        step: the step's number in the shape (a lead's steps can skip numbers).
        action: what the step does.
        label: the action for people: ``"Email"``, ``"LinkedIn connection request"``,
            ``"LinkedIn connection request + note"`` or ``"LinkedIn message"``.
        status: the send's status on a lead's timeline; ``None`` on a shape's.
        local_at: the moment of the status in the recipient's local time (aware), or ``None``.
        timezone: the name of ``local_at``'s zone (``"America/New_York"``); empty without it.
        reason: why the step was skipped or failed; may be empty.
    """

    position: int
    step: int
    action: Action
    label: str
    status: SendStatus | None = None
    local_at: dt.datetime | None = None
    timezone: str = ""
    reason: str = ""

    def __attrs_post_init__(self) -> None:
        _check_aware(f"timeline node {self.position} field 'local_at'", self.local_at)


@attrs.frozen(kw_only=True)
class TimelineConnector:
    """The wait between two consecutive nodes, drawn as an arrow from the earlier one.

    Attributes:
        wait_days: business days of the recipient the later step waits.
        counts_from: the event the wait counts from (the previous step or the acceptance).
        gated_on_acceptance: the later step also waits for the connection to be accepted.
        label: the wait for people: ``"3 business days"``, ``"1 business day"``,
            ``"next business moment"`` (a wait of 0), ``"waits for acceptance, then 1 business
            day"`` (counted from the acceptance), ``"2 business days, not before acceptance"``
            (counted from the previous step, but gated), ``"if not accepted, then 2 business
            days"`` (the fallback branch).
        fork_from: for the fallback branch (a step counting from ``CONNECTION_NOT_ACCEPTED``),
            the position of the connection request's node the arrow forks from instead of the
            previous node; None for every other wait.
    """

    wait_days: int
    counts_from: WaitAnchor
    gated_on_acceptance: bool
    label: str
    fork_from: int | None = None


def _nodes_tuple(nodes: Sequence[TimelineNode]) -> tuple[TimelineNode, ...]:
    return tuple(nodes)


def _connectors_tuple(
    connectors: Sequence[TimelineConnector],
) -> tuple[TimelineConnector, ...]:
    return tuple(connectors)


@attrs.frozen(kw_only=True)
class Timeline:
    """A connected timeline: nodes numbered ``1..n`` and the ``n - 1`` waits between them.

    ``connectors[i]`` is the wait from ``nodes[i]`` to ``nodes[i + 1]``.

    Attributes:
        title: what the timeline shows (a shape's name, a lead's name); untrusted text.
        nodes: at least one node, positions ``1..n`` in order.
        connectors: exactly ``len(nodes) - 1`` connectors.

    Raises:
        InvalidInput: no nodes, positions out of order, or the wrong number of connectors.
    """

    title: str
    nodes: tuple[TimelineNode, ...] = attrs.field(converter=_nodes_tuple)
    connectors: tuple[TimelineConnector, ...] = attrs.field(converter=_connectors_tuple)

    def __attrs_post_init__(self) -> None:
        if not self.nodes:
            raise InvalidInput(f"timeline {self.title!r}: a timeline needs at least one node")
        for index, node in enumerate(self.nodes, start=1):
            if node.position != index:
                raise InvalidInput(
                    f"timeline {self.title!r}: node {index} has position {node.position}; "
                    f"positions must be 1..{len(self.nodes)} in order"
                )
        if len(self.connectors) != len(self.nodes) - 1:
            raise InvalidInput(
                f"timeline {self.title!r}: {len(self.nodes)} nodes need "
                f"{len(self.nodes) - 1} connectors, not {len(self.connectors)}"
            )
        for index, connector in enumerate(self.connectors, start=2):
            fork = connector.fork_from
            if fork is not None and not 1 <= fork < index - 1:
                raise InvalidInput(
                    f"timeline {self.title!r}: the connector to node {index} forks from node "
                    f"{fork}; a fork starts from an earlier node than the previous one"
                )

    @property
    def is_for_lead(self) -> bool:
        """Whether some node carries a status or a moment (a lead's timeline, not a shape's)."""
        return any(node.status is not None or node.local_at is not None for node in self.nodes)


# --------------------------------------------------------------------------- constructors


def _action_label(action: Action, *, with_note: bool) -> str:
    if action is Action.EMAIL:
        return "Email"
    if action is Action.LINKEDIN_CONNECT:
        return "LinkedIn connection request + note" if with_note else "LinkedIn connection request"
    return "LinkedIn message"


def _wait_phrase(wait_days: int) -> str:
    if wait_days == 0:
        return "next business moment"
    if wait_days == 1:
        return "1 business day"
    return f"{wait_days} business days"


def _connector(
    wait_days: int, counts_from: WaitAnchor, *, gated: bool, fork_from: int | None = None
) -> TimelineConnector:
    phrase = _wait_phrase(wait_days)
    if counts_from is WaitAnchor.CONNECTION_NOT_ACCEPTED:
        return TimelineConnector(
            wait_days=wait_days,
            counts_from=counts_from,
            gated_on_acceptance=False,
            label=f"if not accepted, then {phrase}",
            fork_from=fork_from,
        )
    if counts_from is WaitAnchor.CONNECTION_ACCEPTED:
        label = f"waits for acceptance, then {phrase}"
        gated = True
    elif gated:
        label = f"{phrase}, not before acceptance"
    else:
        label = phrase
    return TimelineConnector(
        wait_days=wait_days, counts_from=counts_from, gated_on_acceptance=gated, label=label
    )


def timeline_of_shape(shape: SendShape) -> Timeline:
    """The timeline of a send shape: its steps and the waits between them, without dates.

    The first step's own wait is not drawn: every lead's first step starts at enrolment (see
    :func:`~starlight_sequences.resolve_cadence`). A LinkedIn message of a shape that asks to
    connect first is drawn as waiting for the acceptance, as it does for a lead that is not
    connected yet.

    Args:
        shape: a (validated) send shape.

    Returns:
        A timeline titled ``"<name> (<key>)"`` (just the key when the name is blank).
    """
    nodes = tuple(
        TimelineNode(
            position=position,
            step=step.number,
            action=step.action,
            label=_action_label(step.action, with_note=step.with_note),
        )
        for position, step in enumerate(shape.steps, start=1)
    )
    connectors = tuple(
        _connector(
            step.wait_days,
            step.counts_from,
            gated=step.action is Action.LINKEDIN_MESSAGE and not shape.for_connected_leads,
            fork_from=_connect_position(shape.steps),
        )
        for step in shape.steps[1:]
    )
    title = f"{shape.name} ({shape.key})" if shape.name.strip() else shape.key
    return Timeline(title=title, nodes=nodes, connectors=connectors)


def _zone_name(moment: dt.datetime) -> str:
    zone = moment.tzinfo
    if isinstance(zone, zoneinfo.ZoneInfo):
        return zone.key
    return moment.tzname() or ""


def timeline_of_lead(
    title: str,
    steps: Sequence[CadenceStep],
    planned: Sequence[LeadStepState],
    *,
    timezone: str | None = None,
) -> Timeline:
    """The timeline of one lead: its cadence, with the status and moment of each step.

    Args:
        title: what to call the timeline (typically the lead's name); untrusted text is fine.
        steps: the lead's cadence steps (``Cadence.steps``), at least one.
        planned: the state of some or all of those steps, matched by step number; a step
            without a state is drawn with no status and no date.
        timezone: the recipient's IANA zone; moments are shown in it. Without it, each moment
            is shown in its own zone (a ``ZoneInfo``'s key, else its ``tzname()``, e.g. UTC).

    Raises:
        InvalidInput: no steps; a state names a step that is not in ``steps``, or names a
            step twice.
        UnknownTimezone: ``timezone`` is not an IANA zone name.
    """
    if not steps:
        raise InvalidInput(f"lead timeline {title!r}: the cadence has no steps")
    zone = load_timezone(timezone, subject=f"lead timeline {title!r}") if timezone else None
    numbers = {step.number for step in steps}
    states: dict[int, LeadStepState] = {}
    for state in planned:
        if state.step not in numbers:
            raise InvalidInput(
                f"lead timeline {title!r}: state for step {state.step}, which the cadence "
                f"does not have (steps: {sorted(numbers)})"
            )
        if state.step in states:
            raise InvalidInput(f"lead timeline {title!r}: two states for step {state.step}")
        states[state.step] = state
    nodes: list[TimelineNode] = []
    for position, step in enumerate(steps, start=1):
        found = states.get(step.number)
        local_at: dt.datetime | None = None
        zone_name = ""
        if found is not None and found.at is not None:
            if zone is not None and timezone is not None:
                local_at = found.at.astimezone(zone)
                zone_name = timezone
            else:
                local_at = found.at
                zone_name = _zone_name(found.at)
        nodes.append(
            TimelineNode(
                position=position,
                step=step.number,
                action=step.action,
                label=_action_label(step.action, with_note=step.with_note),
                status=found.status if found is not None else None,
                local_at=local_at,
                timezone=zone_name,
                reason=found.reason if found is not None else "",
            )
        )
    connectors = tuple(
        _connector(
            step.wait_days,
            step.counts_from,
            gated=step.gated_on_acceptance,
            fork_from=_connect_position(steps),
        )
        for step in steps[1:]
    )
    return Timeline(title=title, nodes=tuple(nodes), connectors=connectors)


def _connect_position(steps: Sequence[Step | CadenceStep]) -> int | None:
    """The position of the connection request among ``steps`` (the fallback forks from it)."""
    actions = [step.action for step in steps]
    if Action.LINKEDIN_CONNECT in actions:
        return actions.index(Action.LINKEDIN_CONNECT) + 1
    return None


# --------------------------------------------------------------------------- shared rendering

_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
# Bidi embeddings, overrides and isolates can reorder the rest of a terminal line or an SVG
# text run: a name must not be able to make another step's date read differently.
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def _clean(text: str, replacement: str) -> str:
    """Untrusted text made safe to print on one line and to put in XML 1.0."""
    out: list[str] = []
    for char in text:
        if char in "\t\n\r\u2028\u2029":
            # Line and paragraph separators too: the text stays on one line (the other
            # characters str.splitlines() breaks on are controls, replaced below).
            out.append(" ")
            continue
        category = unicodedata.category(char)
        if category in ("Cc", "Cs") or char in _BIDI_CONTROLS or char in "\ufffe\uffff":
            out.append(replacement)
        else:
            out.append(char)
    return "".join(out)


def _format_moment(moment: dt.datetime) -> str:
    # Day names from a table, not strftime("%a"), which follows the process locale.
    return f"{_WEEKDAYS[moment.weekday()]} {moment:%Y-%m-%d %H:%M}"


def _status_words(status: SendStatus | None) -> str:
    if status is None:
        return ""
    if status is SendStatus.WAITING:
        # A waiting send's moment is the acceptance deadline, not a send time.
        return "waiting until"
    return status.value


def _node_detail(node: TimelineNode, replacement: str) -> str:
    parts: list[str] = []
    words = _status_words(node.status)
    if words:
        parts.append(words)
    if node.local_at is not None:
        when = _format_moment(node.local_at)
        parts.append(f"{when} {_clean(node.timezone, replacement)}".rstrip())
    detail = " ".join(parts)
    if node.status is SendStatus.WAITING and node.local_at is None:
        detail = "waiting"
    reason = _clean(node.reason, replacement).strip()
    if reason:
        detail = f"{detail}; {reason}" if detail else reason
    return f" [{detail}]" if detail else ""


# --------------------------------------------------------------------------- text


def _columns(text: str) -> int:
    # East Asian wide and fullwidth characters take two terminal columns.
    return sum(2 if unicodedata.east_asian_width(char) in "WF" else 1 for char in text)


def render_text(timeline: Timeline, *, unicode: bool = False, width: int = 100) -> str:
    """The timeline as text for a terminal, ending with a newline.

    The first line is the title. The steps follow on one line when they fit in ``width``
    columns (``1 Email -- 3 business days --> 2 Email``), else one step per line with each wait
    on the lines between them. A lead's steps show their status and moment in the recipient's
    local time (``1 Email [sent Tue 2026-12-01 10:14 America/New_York]``), and the reason of
    a skipped or failed step after a semicolon.

    The drawing is ASCII unless ``unicode`` is set (then it uses box-drawing characters and
    arrows). Names and reasons are shown as given, except that control characters (and bidi
    overrides, which could reorder the line) are replaced by ``?`` (``\\ufffd`` with
    ``unicode``) and line breaks and tabs by spaces, so untrusted text cannot drive the
    terminal.

    Args:
        timeline: what to render.
        unicode: draw with non-ASCII characters.
        width: the most terminal columns the steps may take on one line (wide East Asian
            characters count two) before they go one per line.
    """
    replacement = "\ufffd" if unicode else "?"
    every = [
        f"{node.position} {_clean(node.label, replacement)}{_node_detail(node, replacement)}"
        for node in timeline.nodes
    ]
    # The main path leaves out a forked branch, drawn after it from the node it forks from.
    forks = [
        (index + 2, connector)
        for index, connector in enumerate(timeline.connectors)
        if connector.fork_from is not None
    ]
    forked = {position for position, _ in forks}
    steps = [text for position, text in enumerate(every, start=1) if position not in forked]
    waits = [
        _clean(connector.label, replacement)
        for connector in timeline.connectors
        if connector.fork_from is None
    ]
    lines = [_clean(timeline.title, replacement)]
    _path_lines(lines, steps, waits, unicode=unicode, width=width)
    for position, connector in forks:
        assert connector.fork_from is not None
        wait = _clean(connector.label, replacement)
        arrow = f" └─ {wait} ──▶ " if unicode else f" \\-- {wait} --> "
        lines.append(f"from {connector.fork_from}{arrow}{every[position - 1]}")
    return "\n".join(lines) + "\n"


def _path_lines(
    lines: list[str], steps: list[str], waits: list[str], *, unicode: bool, width: int
) -> None:
    if unicode:
        joiners = [f" ── {wait} ──▶ " for wait in waits]
    else:
        joiners = [f" -- {wait} --> " for wait in waits]
    one_line = steps[0] + "".join(j + s for j, s in zip(joiners, steps[1:], strict=True))
    if _columns(one_line) <= width:
        lines.append(one_line)
    else:
        bar, head = ("│", "▼") if unicode else ("|", "v")
        lines.append(steps[0])
        for wait, step in zip(waits, steps[1:], strict=True):
            lines.extend((f"{bar}   {wait}", head, step))


# --------------------------------------------------------------------------- SVG

_FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif"
_RADIUS = 18
_SPACING = 250  # between node centres in a row
_MARGIN = 140  # left/right: room for centred labels and the row-wrapping path
_PER_ROW = 4
_DETOUR = 115  # how far the row-wrapping path passes right/left of the end nodes' centres
_TITLE_Y = 34
_FIRST_ROW_TOP = 52
_LINE = 15  # line height of node texts
_FORK_BAND = 30  # room above a row for the fallback branch's arrow
_EDGE = "#546e7a"
_INK = "#263238"
_MUTED = "#546e7a"


@attrs.frozen
class _Style:
    fill: str
    stroke: str
    ink: str  # the number inside the circle
    text: str  # the status word under it, on white
    name: str


_NEUTRAL = _Style("#ffffff", "#455a64", "#263238", "#263238", "step, in order")
_STYLES: Mapping[SendStatus, _Style] = MappingProxyType(
    {
        SendStatus.PENDING: _Style(
            "#eceff1", "#90a4ae", "#37474f", "#546e7a", "pending (forecast)"
        ),
        SendStatus.WAITING: _Style(
            "#ffb300", "#ef8f00", "#212121", "#a15c00", "waiting for acceptance"
        ),
        SendStatus.SCHEDULED: _Style("#1e88e5", "#1565c0", "#ffffff", "#1565c0", "scheduled"),
        SendStatus.CLAIMED: _Style("#3949ab", "#283593", "#ffffff", "#283593", "claimed (sending)"),
        SendStatus.SENT: _Style("#43a047", "#2e7d32", "#ffffff", "#2e7d32", "sent"),
        SendStatus.SKIPPED: _Style("#bdbdbd", "#9e9e9e", "#212121", "#616161", "skipped"),
        SendStatus.FAILED: _Style("#e53935", "#c62828", "#ffffff", "#c62828", "failed"),
    }
)


def _style(status: SendStatus | None) -> _Style:
    return _NEUTRAL if status is None else _STYLES[status]


def _x(text: str) -> str:
    """Escaped for an XML text node or a double-quoted attribute."""
    return escape(_clean(text, "\ufffd"), {'"': "&quot;"})


def _chars_px(text: str, size: float) -> float:
    # A rough advance width for a sans-serif face; enough to size the canvas and the legend.
    return len(text) * size * 0.58


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _wrap(text: str, width: int, max_lines: int) -> list[str]:
    # A wait label reads best broken after its comma ("waits for acceptance," / "then ...").
    head, comma, tail = text.partition(", ")
    if len(text) > width and comma and len(head) < width and len(tail) <= width:
        return [head + ",", tail]
    lines = textwrap.wrap(text, width=width, break_long_words=True) or [""]
    if len(lines) > max_lines:
        lines = [*lines[: max_lines - 1], _shorten(" ".join(lines[max_lines - 1 :]), width)]
    return lines


def _text(x: float, y: float, content: str, **attrs_: str) -> str:
    extra = "".join(f' {key.replace("_", "-")}="{value}"' for key, value in attrs_.items())
    return f'<text x="{x:g}" y="{y:g}"{extra}>{_x(content)}</text>'


def _node_lines(node: TimelineNode) -> list[tuple[str, str, str]]:
    """The lines under a node's circle, with the colour and font size of each."""
    lines = [(line, _INK, "12") for line in _wrap(_clean(node.label, " "), 24, 2)]
    words = _status_words(node.status)
    if words:
        lines.append((words, _style(node.status).text, "12"))
    if node.local_at is not None:
        lines.append((_format_moment(node.local_at), _INK, "12"))
        if node.timezone:
            lines.append((_shorten(_clean(node.timezone, "\ufffd"), 34), _MUTED, "11"))
    reason = _clean(node.reason, " ").strip()
    if reason:
        lines.extend((line, _MUTED, "11") for line in _wrap(reason, 32, 2))
    return lines


def _arrow_head(x: float, y: float, direction: float) -> str:
    """A filled triangle whose tip is at (x, y), pointing right (1) or left (-1)."""
    back = x - 9 * direction
    return f'<polygon points="{x:g},{y:g} {back:g},{y - 5:g} {back:g},{y + 5:g}" fill="{_EDGE}"/>'


def _edge_attrs(connector: TimelineConnector) -> str:
    dash = ' stroke-dasharray="6 4"' if connector.gated_on_acceptance else ""
    return f'fill="none" stroke="{_EDGE}" stroke-width="2"{dash}'


def render_svg(timeline: Timeline) -> str:
    """The timeline as a self-contained SVG document for a web page.

    Numbered circles, coloured by status on a lead's timeline, with the step's label (and the
    status, local date, zone and reason) under each; arrows between them with the wait above;
    waits that depend on a LinkedIn acceptance are dashed. At most four steps per row; longer
    timelines wrap onto more rows, the arrow running down and back to the start of the next.
    A legend explains colours and lines.

    The document sets ``xmlns``, ``viewBox``, ``width`` and ``height``, starts with a
    ``<title>`` for screen readers, uses no external fonts, stylesheets, scripts or ids (so
    several can be inlined in one page), and escapes every piece of text; characters that XML
    cannot hold are replaced by ``\\ufffd``. Long reasons are shortened on the canvas and kept
    whole in the node's tooltip.

    Args:
        timeline: what to render.
    """
    nodes = timeline.nodes
    count = len(nodes)
    columns = min(count, _PER_ROW)
    rows = [nodes[i : i + _PER_ROW] for i in range(0, count, _PER_ROW)]
    row_lines = [max(len(_node_lines(node)) for node in row) for row in rows]
    title = _shorten(_clean(timeline.title, "\ufffd").strip(), 90)

    legend = _legend_items(timeline)
    content_width = (columns - 1) * _SPACING + 2 * _MARGIN
    width = int(max(content_width, 520, _chars_px(title, 16) + 48))
    left = (width - (columns - 1) * _SPACING) / 2

    # Vertical layout: each row has a band for the wait labels, the circles, the node texts,
    # and (if another row follows) a corridor for the path to the next row.
    centres: list[tuple[float, float]] = []
    corridors: list[float] = []
    # A forked branch runs above the rows: each row gets a band for it.
    band = _FORK_BAND if any(c.fork_from is not None for c in timeline.connectors) else 0
    top = float(_FIRST_ROW_TOP)
    for index, row in enumerate(rows):
        cy = top + 40 + band
        centres.extend((left + column * _SPACING, cy) for column in range(len(row)))
        bottom = cy + _RADIUS + 18 + (row_lines[index] - 1) * _LINE + 6
        if index < len(rows) - 1:
            corridor = bottom + 34
            corridors.append(corridor)
            top = corridor + 6
        else:
            top = bottom
    legend_svg, legend_height = _legend(legend, top + 20, width)
    height = int(top + 20 + legend_height + 16)

    out: list[str] = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" font-family="{_x(_FONT)}" '
        'font-size="12">',
        f"<title>{_x(timeline.title)}</title>",
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="#ffffff"/>',
        _text(24, _TITLE_Y, title, font_size="16", font_weight="bold", fill=_INK),
    ]
    for index, connector in enumerate(timeline.connectors):
        (x1, y1), (x2, y2) = centres[index], centres[index + 1]
        if connector.fork_from is not None:
            (x1, y1) = centres[connector.fork_from - 1]
            out.extend(_fork_edge(connector, x1, y1, x2, y2, width))
        elif y1 == y2:
            out.extend(_straight_edge(connector, x1, x2, y1))
        else:
            out.extend(_wrapping_edge(connector, x1, y1, x2, y2, corridors[index // _PER_ROW]))
    for node, (cx, cy) in zip(nodes, centres, strict=True):
        out.extend(_node(node, cx, cy))
    out.extend(legend_svg)
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _straight_edge(connector: TimelineConnector, x1: float, x2: float, y: float) -> list[str]:
    start, end = x1 + _RADIUS + 4, x2 - _RADIUS - 3
    parts = [
        f'<line x1="{start:g}" y1="{y:g}" x2="{end - 8:g}" y2="{y:g}" {_edge_attrs(connector)}/>',
        _arrow_head(end, y, 1),
    ]
    lines = _wrap(connector.label, 32, 2)
    mid = (x1 + x2) / 2
    for offset, line in enumerate(lines, start=1 - len(lines)):
        parts.append(
            _text(mid, y - 9 + offset * 13, line, text_anchor="middle", font_size="11", fill=_INK)
        )
    return parts


def _wrapping_edge(
    connector: TimelineConnector, x1: float, y1: float, x2: float, y2: float, corridor: float
) -> list[str]:
    right, left = x1 + _DETOUR, x2 - _DETOUR
    end = x2 - _RADIUS - 3
    path = f"M{x1 + _RADIUS + 4:g},{y1:g} H{right:g} V{corridor:g} H{left:g} V{y2:g} H{end - 8:g}"
    parts = [f'<path d="{path}" {_edge_attrs(connector)}/>', _arrow_head(end, y2, 1)]
    lines = _wrap(connector.label, 48, 2)
    mid = (right + left) / 2
    for offset, line in enumerate(lines, start=1 - len(lines)):
        parts.append(
            _text(
                mid,
                corridor - 7 + offset * 13,
                line,
                text_anchor="middle",
                font_size="11",
                fill=_INK,
            )
        )
    return parts


def _fork_edge(
    connector: TimelineConnector, x1: float, y1: float, x2: float, y2: float, width: int
) -> list[str]:
    """The fallback branch: up from the connection request, along above its row (and down the
    right edge to the target's row, when it wrapped), and down onto the fallback node."""
    above1, above2 = y1 - _FORK_BAND - 8, y2 - _FORK_BAND - 8
    end = y2 - _RADIUS - 3
    if y1 == y2:
        path = f"M{x1:g},{y1 - _RADIUS - 4:g} V{above1:g} H{x2:g} V{end - 8:g}"
        mid = (x1 + x2) / 2
    else:
        edge = width - 14
        path = (
            f"M{x1:g},{y1 - _RADIUS - 4:g} V{above1:g} H{edge:g} V{above2:g} H{x2:g} V{end - 8:g}"
        )
        mid = (x1 + edge) / 2
    dash = ' stroke-dasharray="2 4"'
    head = f"{x2:g},{end:g} {x2 - 5:g},{end - 9:g} {x2 + 5:g},{end - 9:g}"
    return [
        f'<path d="{path}" fill="none" stroke="{_EDGE}" stroke-width="2"{dash}/>',
        f'<polygon points="{head}" fill="{_EDGE}"/>',
        _text(mid, above1 - 6, connector.label, text_anchor="middle", font_size="11", fill=_INK),
    ]


def _node(node: TimelineNode, cx: float, cy: float) -> list[str]:
    style = _style(node.status)
    detail = _node_detail(node, "\ufffd")
    tooltip = f"{node.position} {node.label}{detail}"
    parts = [
        "<g>",
        f"<title>{_x(tooltip)}</title>",
        f'<circle cx="{cx:g}" cy="{cy:g}" r="{_RADIUS}" fill="{style.fill}" '
        f'stroke="{style.stroke}" stroke-width="2"/>',
        _text(
            cx,
            cy + 5,
            str(node.position),
            text_anchor="middle",
            font_size="14",
            font_weight="bold",
            fill=style.ink,
        ),
    ]
    y = cy + _RADIUS + 18
    for line, colour, size in _node_lines(node):
        parts.append(_text(cx, y, line, text_anchor="middle", font_size=size, fill=colour))
        y += _LINE
    parts.append("</g>")
    return parts


def _legend_items(timeline: Timeline) -> list[tuple[str, str]]:
    """(kind, text) pairs: kind is a status value, ``"step"``, ``"wait"``, ``"gated"`` or
    ``"fork"``."""
    items: list[tuple[str, str]] = []
    if timeline.is_for_lead:
        items.extend((status.value, _STYLES[status].name) for status in SendStatus)
        if any(node.status is None for node in timeline.nodes):
            items.append(("step", "no send stored yet"))
    else:
        items.append(("step", _NEUTRAL.name))
    if timeline.connectors:
        items.append(("wait", "wait in the recipient's business days"))
    if any(connector.gated_on_acceptance for connector in timeline.connectors):
        items.append(("gated", "waits for the LinkedIn connection to be accepted"))
    if any(connector.fork_from is not None for connector in timeline.connectors):
        items.append(("fork", "branch taken only if the connection request is not accepted"))
    return items


def _legend(items: list[tuple[str, str]], top: float, width: int) -> tuple[list[str], float]:
    parts: list[str] = [_text(24, top, "Legend", font_size="11", font_weight="bold", fill=_MUTED)]
    x, y = 24.0, top + 20
    for kind, label in items:
        advance = 26 + _chars_px(label, 11) + 22
        if x > 24 and x + advance > width - 16:
            x, y = 24.0, y + 20
        if kind in ("wait", "gated", "fork"):
            dash = {"wait": "", "gated": ' stroke-dasharray="6 4"'}.get(
                kind, ' stroke-dasharray="2 4"'
            )
            parts.append(
                f'<line x1="{x:g}" y1="{y - 4:g}" x2="{x + 20:g}" y2="{y - 4:g}" '
                f'stroke="{_EDGE}" stroke-width="2"{dash}/>'
            )
        else:
            style = _NEUTRAL if kind == "step" else _STYLES[SendStatus(kind)]
            parts.append(
                f'<circle cx="{x + 8:g}" cy="{y - 4:g}" r="7" fill="{style.fill}" '
                f'stroke="{style.stroke}" stroke-width="2"/>'
            )
        parts.append(_text(x + 26, y, label, font_size="11", fill=_INK))
        x += advance
    return parts, y - top
