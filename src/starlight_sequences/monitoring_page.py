"""The monitoring page: a campaign's "Scheduled" view as one self-contained HTML file.

:func:`render_campaign_page` is pure: it takes what the service's monitoring returns (the
:class:`~starlight_sequences.reports.CampaignStatusReport`, the Waiting-on-connections list and
one :class:`~starlight_sequences.timeline.Timeline` per lead) and the moment to call "now", and
returns an HTML document. :func:`campaign_page` is the shell around it: it reads those views
from a :class:`~starlight_sequences.service.CampaignService` and the service's clock.

The page has no scripts and no external references: its style sheet is inline, its shapes are
inline SVG, and a Content-Security-Policy forbids loading anything. Every text that comes from
leads and campaigns (names, ids, companies, reasons) is HTML-escaped, wrapped in ``<bdi>`` so
right-to-left text cannot reorder what follows it, and its control characters are replaced.
"""

from __future__ import annotations

import datetime as dt
import html
import unicodedata
import zoneinfo
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from starlight_sequences.campaigns import EnrolmentStatus, SendStatus
from starlight_sequences.channels import Action, Channel
from starlight_sequences.errors import InvalidInput
from starlight_sequences.leads import Lead
from starlight_sequences.locations import load_timezone
from starlight_sequences.reports import CampaignStatusReport, ContactStatus, WaitingOnConnection
from starlight_sequences.timeline import (
    LeadStepState,
    Timeline,
    TimelineConnector,
    TimelineNode,
    timeline_of_lead,
)

if TYPE_CHECKING:
    from starlight_sequences.service import CampaignService

__all__ = ["campaign_page", "render_campaign_page"]

_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_ACTION_WORDS = {
    Action.EMAIL: "Email",
    Action.LINKEDIN_CONNECT: "LinkedIn connection request",
    Action.LINKEDIN_MESSAGE: "LinkedIn message",
}
# Statuses after which nothing more is sent, but that are not the cadence simply running out.
_STOPS = frozenset(
    {
        EnrolmentStatus.REPLIED,
        EnrolmentStatus.MEETING_BOOKED,
        EnrolmentStatus.BOUNCED,
        EnrolmentStatus.UNSUBSCRIBED,
        EnrolmentStatus.FAILED,
        EnrolmentStatus.CANCELLED,
        EnrolmentStatus.EXCLUDED,
    }
)
# The colours of email and LinkedIn steps (shapes differ too: circles and rounded squares).
_EMAIL_COLOUR = "#00796b"
_LINKEDIN_COLOUR = "#0a66c2"

_CSS = """
:root{color-scheme:light}
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif;
margin:24px;color:#1f2933;background:#fff}
h1{font-size:22px;margin:0 0 4px}
h2{font-size:17px;margin:28px 0 6px;border-bottom:2px solid #e4e7eb;padding-bottom:4px}
h3{font-size:15px;margin:18px 0 2px}
p.meta{color:#52606d;margin:0 0 6px}
table{border-collapse:collapse;width:100%;margin:6px 0 12px}
th,td{text-align:left;padding:5px 8px;border-bottom:1px solid #e4e7eb;vertical-align:top}
th{font-size:12px;text-transform:uppercase;letter-spacing:.04em;color:#52606d}
td.num{text-align:right}
.sub{display:block;color:#616e7c;font-size:12px}
.empty{color:#616e7c;font-style:italic}
.chan{display:inline-block;padding:0 7px;border-radius:9px;font-size:12px;white-space:nowrap}
.chan.email{background:#e0f2f1;color:#00564d}
.chan.linkedin{background:#e3f0fc;color:#084b8f}
.st{font-weight:600}
ol.timeline{list-style:none;display:flex;flex-wrap:wrap;align-items:flex-start;
padding:0;margin:8px 0 4px;row-gap:14px}
ol.timeline li.step{width:160px;text-align:center;font-size:12px}
ol.timeline .chan{white-space:normal}
ol.timeline li.step svg{display:block;margin:0 auto 2px}
ol.timeline li.step .what{display:block;margin:2px 0}
ol.timeline li.wait{width:118px;text-align:center;font-size:11px;color:#3e4c59;
padding-top:19px}
ol.timeline li.wait.has-now{width:160px}
ol.timeline li.wait .line{display:block;height:0;border-top:2px solid #546e7a;
margin:0 10px 4px 0;position:relative}
ol.timeline li.wait.gated .line{border-top-style:dashed}
ol.timeline li.wait.fork .line{border-top-style:dotted}
ol.timeline li.wait .line::after{content:"";position:absolute;right:-10px;top:-7px;
border-style:solid;border-width:6px 0 6px 10px;
border-color:transparent transparent transparent #546e7a}
ol.timeline li.wait.has-now .line::before{content:"";position:absolute;left:50%;top:-13px;
height:24px;border-left:3px solid #c62828}
ol.timeline .now{color:#c62828;font-weight:700;font-size:11px}
ol.timeline li.wait .now{display:block;margin-top:3px}
ol.timeline li.now-edge{border-left:3px solid #c62828;margin:0 8px;padding-left:4px;width:140px;
min-height:44px}
ol.timeline time .d,ol.timeline time .z{display:block}
table.counts{width:auto}
.legend{display:flex;flex-wrap:wrap;gap:6px 18px;font-size:12px;color:#3e4c59;margin:6px 0}
.legend span{display:inline-flex;align-items:center;gap:5px}
""".strip()


# --------------------------------------------------------------------------- text


def _clean(text: str) -> str:
    """Untrusted text on one line, without characters HTML cannot carry."""
    out: list[str] = []
    for char in text:
        if char in "\t\n\r\u2028\u2029":
            out.append(" ")
        elif unicodedata.category(char) in ("Cc", "Cs") or char in "\ufffe\uffff":
            out.append("\ufffd")
        else:
            out.append(char)
    return "".join(out)


def _h(text: object) -> str:
    """Escaped for an HTML text node or a double-quoted attribute."""
    return html.escape(_clean(str(text)), quote=True)


def _user(text: str) -> str:
    """Untrusted text, escaped and isolated from the text around it."""
    return f"<bdi>{_h(text)}</bdi>"


def _zone_name(moment: dt.datetime) -> str:
    zone = moment.tzinfo
    if isinstance(zone, zoneinfo.ZoneInfo):
        return zone.key
    return moment.tzname() or ""


def _moment(moment: dt.datetime) -> str:
    # Day names from a table, not strftime("%a"), which follows the process locale.
    return f"{_WEEKDAYS[moment.weekday()]} {moment:%Y-%m-%d %H:%M}"


def _time(moment: dt.datetime, *, zone: str | None = None) -> str:
    """A ``<time>`` element: the moment as written, with its instant in UTC as ISO 8601."""
    iso = moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    where = _zone_name(moment) if zone is None else zone
    in_zone = f' <span class="z">{_h(where)}</span>' if where else ""
    return f'<time datetime="{_h(iso)}"><span class="d">{_moment(moment)}</span>{in_zone}</time>'


def _local_and_utc(moment: dt.datetime, zone: str) -> str:
    local = moment.astimezone(load_timezone(zone)) if zone else moment
    utc = moment.astimezone(dt.UTC)
    return f'{_time(local)}<span class="sub">{_time(utc, zone="UTC")}</span>'


def _lead_name(lead: Lead) -> str:
    return " ".join(p for p in (lead.first_name, lead.last_name) if p) or lead.id


def _lead_cell(lead: Lead, anchor: str | None) -> str:
    name = _user(_lead_name(lead))
    if anchor is not None:
        name = f'<a href="#{anchor}">{name}</a>'
    company = f" · {_user(lead.company)}" if lead.company else ""
    return f'{name}<span class="sub">{_user(lead.id)}{company}</span>'


def _channel_badge(action: Action, label: str | None = None) -> str:
    kind = action.channel.value
    return f'<span class="chan {kind}">{_h(label or _ACTION_WORDS[action])}</span>'


# --------------------------------------------------------------------------- sections


def _contacts_section(report: CampaignStatusReport, anchors: Mapping[str, str]) -> list[str]:
    out = [
        '<section id="contacts" aria-labelledby="contacts-h">',
        f'<h2 id="contacts-h">Enrolled contacts ({len(report.contacts)})</h2>',
    ]
    if not report.contacts:
        return [*out, '<p class="empty">No contact is enrolled.</p>', "</section>"]
    out.append(
        "<table><thead><tr><th>Lead</th><th>Current step</th><th>Status</th>"
        "<th>Next send (local time, and UTC)</th><th>Reason</th></tr></thead><tbody>"
    )
    for contact in report.contacts:
        out.append(_contact_row(contact, anchors.get(contact.lead.id)))
    out.extend(["</tbody></table>", "</section>"])
    return out


def _contact_row(contact: ContactStatus, anchor: str | None) -> str:
    lead = contact.lead
    send = contact.send_status.value if contact.send_status is not None else "not scheduled"
    if contact.next_send_utc is not None:
        zone = _zone_name(contact.next_send_local) if contact.next_send_local else ""
        when = _local_and_utc(contact.next_send_utc, zone or lead.timezone or "")
    elif contact.send_status is SendStatus.WAITING:
        when = '<a href="#waiting">after the connection is accepted</a>'
    else:
        when = '<span class="empty">none</span>'
    return (
        f'<tr data-lead="{_h(lead.id)}"><td>{_lead_cell(lead, anchor)}</td>'
        f"<td>{contact.step}. {_channel_badge(contact.action)}"
        f'<span class="sub">send {_h(send)}</span></td>'
        f'<td class="st">{_h(contact.status.value)}</td>'
        f'<td class="next">{when}</td>'
        f"<td>{_user(contact.reason) if contact.reason else ''}</td></tr>"
    )


def _waiting_section(waiting: Sequence[WaitingOnConnection]) -> list[str]:
    out = [
        '<section id="waiting" aria-labelledby="waiting-h">',
        f'<h2 id="waiting-h">Waiting on connections ({len(waiting)})</h2>',
    ]
    if not waiting:
        return [
            *out,
            '<p class="empty">Nobody: no LinkedIn message waits for an acceptance.</p>',
            "</section>",
        ]
    out.append(
        "<table><thead><tr><th>Lead</th><th>Waiting step</th><th>Request sent</th>"
        "<th>Times out (local time, and UTC)</th></tr></thead><tbody>"
    )
    for task in waiting:
        zone = task.lead.timezone or "UTC"
        since = (
            _local_and_utc(task.since, zone)
            if task.since is not None
            else '<span class="empty">not recorded</span>'
        )
        out.append(
            f'<tr data-lead="{_h(task.lead.id)}"><td>{_lead_cell(task.lead, None)}</td>'
            f"<td>{task.step}. {_channel_badge(Action.LINKEDIN_MESSAGE)}</td>"
            f"<td>{since}</td><td>{_local_and_utc(task.times_out_at, zone)}</td></tr>"
        )
    out.extend(["</tbody></table>", "</section>"])
    return out


def _stops_section(report: CampaignStatusReport) -> list[str]:
    stopped = [c for c in report.contacts if c.status in _STOPS]
    out = [
        '<section id="stops" aria-labelledby="stops-h">',
        f'<h2 id="stops-h">Replies and other stops ({len(stopped)})</h2>',
    ]
    if not stopped:
        return [*out, '<p class="empty">No contact has replied or been stopped.</p>', "</section>"]
    out.append(
        "<table><thead><tr><th>Lead</th><th>Stopped as</th><th>At step</th><th>Reason</th>"
        "</tr></thead><tbody>"
    )
    for contact in stopped:
        reason = (
            _user(contact.reason) if contact.reason else '<span class="empty">none given</span>'
        )
        out.append(
            f'<tr data-lead="{_h(contact.lead.id)}"><td>{_lead_cell(contact.lead, None)}</td>'
            f'<td class="st">{_h(contact.status.value)}</td>'
            f"<td>{contact.step}. {_channel_badge(contact.action)}</td><td>{reason}</td></tr>"
        )
    out.extend(["</tbody></table>", "</section>"])
    return out


def _counts_section(report: CampaignStatusReport) -> list[str]:
    if not report.counts:
        return []
    rows = "".join(
        f'<tr><td class="num">{step}</td><td>{_h(status.value)}</td><td class="num">{n}</td></tr>'
        for step, status, n in report.counts
    )
    return [
        '<section id="counts" aria-labelledby="counts-h">',
        '<h2 id="counts-h">Sends per step and status</h2>',
        '<table class="counts"><thead><tr><th>Step</th><th>Status</th><th>Count</th></tr></thead>',
        f"<tbody>{rows}</tbody></table>",
        "</section>",
    ]


# --------------------------------------------------------------------------- timelines


def _marker(node: TimelineNode) -> str:
    """The step's shape: a circle for email, a rounded square for LinkedIn, filled by status."""
    colour = _EMAIL_COLOUR if node.action.channel is Channel.EMAIL else _LINKEDIN_COLOUR
    fill, stroke, ink, dash = "#ffffff", colour, colour, ""
    if node.status is SendStatus.SENT:
        fill, ink = colour, "#ffffff"
    elif node.status is SendStatus.SKIPPED:
        fill, stroke, ink = "#eceff1", "#90a4ae", "#546e7a"
    elif node.status is SendStatus.FAILED:
        # Light, so that it is not mistaken for the solid red "now" mark.
        fill, stroke, ink = "#ffcdd2", "#b71c1c", "#b71c1c"
    elif node.status is SendStatus.WAITING:
        fill, ink = "#ffe082", "#212121"
    elif node.status in (SendStatus.PENDING, None):
        dash = ' stroke-dasharray="4 3"'
    if node.action.channel is Channel.EMAIL:
        shape = f'<circle cx="20" cy="20" r="16" fill="{fill}" stroke="{stroke}"'
    else:
        shape = f'<rect x="4" y="4" width="32" height="32" rx="7" fill="{fill}" stroke="{stroke}"'
    strike = (
        '<line x1="8" y1="32" x2="32" y2="8" stroke="#78909c" stroke-width="2"/>'
        if node.status is SendStatus.SKIPPED
        else ""
    )
    return (
        f'<svg class="marker" width="40" height="40" viewBox="0 0 40 40" aria-hidden="true">'
        f'{shape} stroke-width="3"{dash}/>{strike}'
        f'<text x="20" y="25" text-anchor="middle" font-size="14" font-weight="700" '
        f'fill="{ink}" font-family="system-ui,sans-serif">{node.position}</text></svg>'
    )


def _node_state(node: TimelineNode) -> str:
    """What became of the step, in words; a skipped step shows its reason, never a date."""
    reason = _user(node.reason) if node.reason.strip() else ""
    if node.status is SendStatus.SKIPPED:
        return f'<span class="st">skipped</span>: {reason or "no reason recorded"}'
    if node.status is None:
        return '<span class="st">not scheduled yet</span>'
    words = {
        SendStatus.PENDING: "forecast",
        SendStatus.WAITING: "waits for acceptance until",
        SendStatus.SCHEDULED: "scheduled",
        SendStatus.CLAIMED: "sending (claimed)",
        SendStatus.SENT: "sent",
        SendStatus.FAILED: "failed",
    }[node.status]
    when = _time(node.local_at) if node.local_at else ""
    text = f'<span class="st">{words}</span> {when}'.rstrip()
    return f"{text}: {reason}" if reason else text


def _now_label(now: dt.datetime, zone: dt.tzinfo | None) -> str:
    local = now.astimezone(zone) if zone is not None else now.astimezone(dt.UTC)
    return f'<span class="now">now<br>{_time(local)}</span>'


def _step_item(node: TimelineNode) -> str:
    channel = node.action.channel.value
    status = node.status.value if node.status is not None else "none"
    return (
        f'<li class="step {channel} {status}" data-position="{node.position}" '
        f'data-step="{node.step}" data-channel="{channel}" data-status="{status}">'
        f"{_marker(node)}"
        f'<span class="what">Step {node.position}: {_channel_badge(node.action, node.label)}'
        f"</span>{_node_state(node)}</li>"
    )


def _wait_item(connector: TimelineConnector, now_label: str) -> str:
    classes = "wait" + (" gated" if connector.gated_on_acceptance else "")
    classes += " has-now" if now_label else ""
    label = connector.label
    if connector.fork_from is not None:
        # The fallback branch forks from the connection request, not from the step before.
        classes += " fork"
        label = f"from step {connector.fork_from}: {label}"
    return (
        f'<li class="{classes}"><span class="line"></span>'
        f'<span class="label">{_h(label)}</span>{now_label}</li>'
    )


def _timeline_list(timeline: Timeline, now: dt.datetime) -> str:
    """The timeline as an ordered list: steps, the waits between them, and "now" among them:
    after the last step that is over (sent, skipped or failed), before those still to come (an
    overdue step has not happened yet)."""
    nodes = timeline.nodes
    zone = next((n.local_at.tzinfo for n in nodes if n.local_at is not None), None)
    label = _now_label(now, zone)
    past = 0
    for index, node in enumerate(nodes):
        if node.status is not None and node.status.is_final:
            past = index + 1
    items: list[str] = []
    if past == 0:
        items.append(f'<li class="now-edge">{label}</li>')
    for index, node in enumerate(nodes):
        items.append(_step_item(node))
        if index < len(timeline.connectors):
            here = label if index + 1 == past else ""
            items.append(_wait_item(timeline.connectors[index], here))
    if past == len(nodes):
        items.append(f'<li class="now-edge">{label}</li>')
    steps = f"{len(nodes)} step{'s' if len(nodes) != 1 else ''}"
    label = f"{steps} and the waits between them"
    return f'<ol class="timeline" aria-label="{label}">{"".join(items)}</ol>'


def _legend() -> str:
    email = (
        '<svg width="18" height="18" viewBox="0 0 40 40" aria-hidden="true"><circle cx="20" '
        f'cy="20" r="16" fill="#fff" stroke="{_EMAIL_COLOUR}" stroke-width="4"/></svg>'
    )
    linkedin = (
        '<svg width="18" height="18" viewBox="0 0 40 40" aria-hidden="true"><rect x="4" y="4" '
        f'width="32" height="32" rx="7" fill="#fff" stroke="{_LINKEDIN_COLOUR}" '
        'stroke-width="4"/></svg>'
    )
    return (
        '<p class="legend">'
        f"<span>{email} circle: email step</span>"
        f"<span>{linkedin} square: LinkedIn step</span>"
        "<span>filled: sent; outlined: to come; dotted outline: forecast; struck through: "
        "skipped</span>"
        "<span>— arrow: wait in the recipient's business days; dashed: waits for the LinkedIn "
        "connection to be accepted</span>"
        '<span class="now" style="color:#c62828;font-weight:700">| now</span>'
        "</p>"
    )


def _timelines_section(
    report: CampaignStatusReport,
    timelines: Mapping[str, Timeline],
    anchors: Mapping[str, str],
    now: dt.datetime,
    left_out: int,
) -> list[str]:
    out = [
        '<section id="timelines" aria-labelledby="timelines-h">',
        f'<h2 id="timelines-h">Timelines ({len(anchors)})</h2>',
        _legend(),
    ]
    for contact in report.contacts:
        timeline = timelines.get(contact.lead.id)
        if timeline is None:
            continue
        lead = contact.lead
        zone = f" · {_user(lead.timezone)}" if lead.timezone else ""
        out.extend(
            [
                f'<section class="lead" id="{anchors[lead.id]}" data-lead="{_h(lead.id)}">',
                f"<h3>{_user(timeline.title)} "
                f'<span class="sub">{_user(lead.id)} · {_h(contact.status.value)}{zone}</span>'
                "</h3>",
                _timeline_list(timeline, now),
                "</section>",
            ]
        )
    if left_out:
        out.append(
            f'<p class="empty">{left_out} more contact(s) have a timeline that this page '
            "leaves out.</p>"
        )
    out.append("</section>")
    return out


# --------------------------------------------------------------------------- the page


def _summary(report: CampaignStatusReport) -> str:
    tally: dict[str, int] = {}
    for contact in report.contacts:
        tally[contact.status.value] = tally.get(contact.status.value, 0) + 1
    parts = [f"{n} {status}" for status, n in sorted(tally.items())]
    return f"{len(report.contacts)} contact(s)" + (f": {', '.join(parts)}" if parts else "")


def render_campaign_page(
    report: CampaignStatusReport,
    *,
    now: dt.datetime,
    waiting: Sequence[WaitingOnConnection] = (),
    timelines: Mapping[str, Timeline] | None = None,
    timelines_left_out: int = 0,
) -> str:
    """A campaign's monitoring page as one self-contained HTML document (pure).

    The page shows, in order: the campaign and when the page was made; every enrolled contact
    with its current step (email or LinkedIn), its status and its next send in the recipient's
    local time and zone and in UTC; the Waiting-on-connections list with each deadline; the
    contacts that replied or were stopped otherwise, with their reasons; the sends per step and
    status; and one connected timeline per lead given in ``timelines``: numbered steps (email
    steps as circles, LinkedIn steps as rounded squares, each also labelled in words) joined by
    wait arrows (dashed when gated on a LinkedIn acceptance), with a red "now" mark where
    ``now`` falls. A skipped step shows why it was skipped, not its planned date.

    No scripts, no external fonts, style sheets or images: CSS and SVG are inline, and a
    Content-Security-Policy meta tag forbids loading anything. Text from leads and campaigns
    is HTML-escaped and isolated in ``<bdi>``; control characters are replaced by ``\\ufffd``.

    Args:
        report: what :meth:`CampaignService.status` returned.
        now: the moment the page is made (timezone-aware); shown in UTC in the header and in
            each lead's zone on its timeline.
        waiting: what :meth:`CampaignService.waiting_on_connections` returned for the campaign.
        timelines: lead id → that lead's timeline (:meth:`CampaignService.lead_timeline`), in
            any order; they are shown in the order of ``report.contacts``, and a lead without
            one has none on the page.
        timelines_left_out: how many leads' timelines the caller chose not to pass; the page
            says so.

    Returns:
        The HTML document, starting with ``<!DOCTYPE html>``.

    Raises:
        InvalidInput: ``now`` is naive, or a timeline names a lead that is not in the report.
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise InvalidInput(f"monitoring page: now={now.isoformat()} is naive; pass an aware one")
    timelines = timelines or {}
    enrolled = {contact.lead.id for contact in report.contacts}
    unknown = sorted(lead for lead in timelines if lead not in enrolled)
    if unknown:
        raise InvalidInput(
            f"monitoring page of campaign {report.campaign.id!r}: timelines of leads that are "
            f"not enrolled in it: {', '.join(unknown)}"
        )
    anchors: dict[str, str] = {
        contact.lead.id: f"lead-{index}"
        for index, contact in enumerate(report.contacts, start=1)
        if contact.lead.id in timelines
    }
    campaign = report.campaign
    title = f"{campaign.name or campaign.id} — starlight monitoring"
    body = [
        f"<h1>{_user(campaign.name or campaign.id)}</h1>",
        f'<p class="meta">Campaign {_user(campaign.id)} · {_h(campaign.status.value)} · shape '
        f"{_user(campaign.shape.key)} · {_h(_summary(report))}</p>",
        f'<p class="meta">As of {_time(now.astimezone(dt.UTC), zone="UTC")}</p>',
        *_contacts_section(report, anchors),
        *_waiting_section(waiting),
        *_stops_section(report),
        *_counts_section(report),
        *_timelines_section(report, timelines, anchors, now, timelines_left_out),
    ]
    head = (
        '<meta charset="utf-8">\n'
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'\">\n"
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{_h(title)}</title>\n<style>\n{_CSS}\n</style>"
    )
    return (
        f'<!DOCTYPE html>\n<html lang="en">\n<head>\n{head}\n</head>\n<body>\n'
        + "\n".join(body)
        + "\n</body>\n</html>\n"
    )


def campaign_page(
    service: CampaignService,
    workspace_id: str,
    campaign_id: str,
    *,
    now: dt.datetime | None = None,
    max_timelines: int | None = None,
) -> str:
    """Read a campaign's monitoring views from the service and render its page.

    The shell around :func:`render_campaign_page`: calls ``status``,
    ``waiting_on_connections`` and, for each contact (the first ``max_timelines`` of them),
    ``lead_timeline_states``; reads storage only.

    Args:
        service: the service to read from.
        workspace_id: the campaign's workspace.
        campaign_id: the campaign.
        now: the moment to mark as "now"; the service's clock when None.
        max_timelines: draw the timelines of at most this many contacts (in the report's
            order); None draws all of them. The page says how many it left out.

    Returns:
        The HTML document.

    Raises:
        NotFound: no such campaign in the workspace.
    """
    report = service.status(workspace_id, campaign_id)
    waiting = service.waiting_on_connections(workspace_id, campaign_id)
    shown = report.contacts if max_timelines is None else report.contacts[:max_timelines]
    timelines: dict[str, Timeline] = {}
    for contact in shown:
        enrolment, sends = service.lead_timeline_states(workspace_id, campaign_id, contact.lead.id)
        cadence = {step.number for step in enrolment.steps}
        states = [
            LeadStepState(step=s.step, status=s.status, at=s.sent_at or s.due_at, reason=s.reason)
            for s in sends
            if s.step in cadence
        ]
        timelines[contact.lead.id] = timeline_of_lead(
            _lead_name(enrolment.lead), enrolment.steps, states, timezone=enrolment.lead.timezone
        )
    return render_campaign_page(
        report,
        now=now if now is not None else service.clock.now(),
        waiting=waiting,
        timelines=timelines,
        timelines_left_out=len(report.contacts) - len(shown),
    )
