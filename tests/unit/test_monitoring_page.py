"""The monitoring page, read by its structure with the standard library's ``html.parser``."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import attrs
import pytest

from starlight_sequences import monitoring_page
from starlight_sequences.campaigns import SendStatus
from starlight_sequences.errors import InvalidInput
from starlight_sequences.ids import LeadId
from starlight_sequences.monitoring_page import campaign_page, render_campaign_page
from starlight_sequences.timeline import LeadStepState, Timeline, timeline_of_lead
from tests.html_tree import Element, parse
from tests.monitoring_scenario import (
    CID,
    IMG_NAME,
    SCRIPT_NAME,
    TABLE_COMPANY,
    campaign_a_day_in,
)
from tests.service_kit import MAILBOX, WS, Kit, lead, make_kit


@pytest.fixture(scope="module")
def kit() -> Kit:
    return campaign_a_day_in()


@pytest.fixture(scope="module")
def page(kit: Kit) -> str:
    return campaign_page(kit.service, WS, CID)


@pytest.fixture(scope="module")
def tree(page: str) -> Element:
    doctype, root = parse(page)
    assert doctype.lower() == "doctype html"
    return root


def _row(section: Element, lead_id: str) -> Element:
    return section.find("tr", data_lead=lead_id)


def _timeline(tree: Element, lead_id: str) -> Element:
    return tree.find("section", class_="lead", data_lead=lead_id).find("ol", class_="timeline")


def _steps(timeline: Element) -> list[Element]:
    return [li for li in timeline.find_all("li") if "step" in li.classes]


# --------------------------------------------------------------------------- content


def test_every_enrolled_contact_is_listed_with_its_step_status_and_next_send(
    kit: Kit, tree: Element
) -> None:
    contacts = tree.find("section", id="contacts")
    report = kit.service.status(WS, CID)
    assert len(contacts.find("tbody").find_all("tr")) == len(report.contacts)
    for contact in report.contacts:
        row = _row(contacts, contact.lead.id)
        cells = row.find_all("td")
        assert contact.lead.id in cells[0].text
        assert cells[1].text.startswith(f"{contact.step}.")
        assert cells[2].text == contact.status.value
    # ann's connection request: Wednesday 09:00 in New York, 14:00 UTC.
    ann_next = _row(contacts, "ann").find("td", class_="next")
    local, utc = ann_next.find_all("time")
    assert local.text == "Wed 2026-12-02 09:00 America/New_York"
    assert utc.text == "Wed 2026-12-02 14:00 UTC"
    assert local.attrs["datetime"] == utc.attrs["datetime"] == "2026-12-02T14:00:00Z"
    assert "LinkedIn connection request" in _row(contacts, "ann").text
    assert "after the connection is accepted" in _row(contacts, "bob").text
    assert "none" in _row(contacts, "carl").find("td", class_="next").text


def test_waiting_on_connections_lists_the_lead_and_its_deadline_in_local_time_and_utc(
    kit: Kit, tree: Element
) -> None:
    waiting = tree.find("section", id="waiting")
    assert waiting.find("h2").text == "Waiting on connections (1)"
    row = _row(waiting, "bob")
    [task] = kit.service.waiting_on_connections(WS, CID)
    deadline = task.times_out_at.astimezone(dt.UTC)
    times = [t.text for t in row.find_all("time")]
    assert f"{deadline:%Y-%m-%d %H:%M} UTC" in " ".join(times)
    assert any(t.endswith("Europe/Berlin") for t in times)
    assert len(waiting.find_all("tr")) == 2


def test_replies_and_other_stops_show_the_status_and_the_reason(tree: Element) -> None:
    stops = tree.find("section", id="stops")
    row = _row(stops, "carl")
    assert [td.text for td in row.find_all("td")][1:] == ["replied", "3. LinkedIn message", "reply"]
    assert len(stops.find_all("tr")) == 2, "only carl stopped"


def test_each_lead_has_a_connected_timeline_of_numbered_steps_and_wait_connectors(
    tree: Element,
) -> None:
    assert len(tree.find_all("section", class_="lead")) == 4
    timeline = _timeline(tree, "ann")
    items = [li for li in timeline.find_all("li") if li.parent is timeline]
    kinds = [
        ("step" if "step" in li.classes else "wait") for li in items if "now-edge" not in li.classes
    ]
    assert kinds == ["step", "wait", "step", "wait", "step"]
    steps = _steps(timeline)
    assert [li.attrs["data-position"] for li in steps] == ["1", "2", "3"]
    assert [li.find("text").text for li in steps] == ["1", "2", "3"], "the number in the shape"
    assert steps[0].text == "1 Step 1: Email sent Mon 2026-11-30 09:00 America/New_York"
    assert "scheduled Wed 2026-12-02 09:00 America/New_York" in steps[1].text
    assert "forecast Thu 2026-12-03 09:00" in steps[2].text
    waits = [li for li in items if "wait" in li.classes]
    assert [w.find("span", class_="label").text for w in waits] == [
        "2 business days",
        "waits for acceptance, then 1 business day",
    ]
    assert "gated" in waits[1].classes
    assert "gated" not in waits[0].classes


def test_email_and_linkedin_steps_differ_in_shape_colour_and_words(tree: Element) -> None:
    steps = _steps(_timeline(tree, "ann"))
    email, connect, message = steps
    assert email.attrs["data-channel"] == "email"
    assert connect.attrs["data-channel"] == message.attrs["data-channel"] == "linkedin"
    assert email.find_all("circle")
    assert not email.find_all("rect")
    assert connect.find_all("rect")
    assert not connect.find_all("circle")
    assert email.find("span", class_="chan").text == "Email"
    assert "email" in email.find("span", class_="chan").classes
    assert connect.find("span", class_="chan").text == "LinkedIn connection request"
    assert message.find("span", class_="chan").text == "LinkedIn message"
    email_stroke = email.find("circle").attrs["stroke"]
    assert connect.find("rect").attrs["stroke"] != email_stroke
    for step in steps:
        assert step.find("svg").attrs["aria-hidden"] == "true", "the words carry the meaning"


def test_a_skipped_step_shows_its_reason_and_no_date(tree: Element) -> None:
    steps = _steps(_timeline(tree, "carl"))
    assert [s.attrs["data-status"] for s in steps] == ["sent", "skipped", "skipped"]
    for skipped in steps[1:]:
        assert skipped.text.endswith("skipped : reply"), skipped.text
        assert skipped.find_all("time") == [], "a skipped step did not happen at its date"
        assert skipped.find_all("line"), "struck through"
    assert steps[0].find_all("time")


def test_now_is_marked_once_per_timeline_where_it_falls(tree: Element) -> None:
    # ann: step 1 sent, step 2 due tomorrow: now is on the wait between them.
    ann = _timeline(tree, "ann")
    marks = ann.find_all("span", class_="now")
    assert len(marks) == 1
    wait = marks[0].parent
    assert wait is not None
    assert "wait" in wait.classes
    assert "has-now" in wait.classes
    items = [li for li in ann.find_all("li") if li.parent is ann]
    assert items.index(wait) == 1
    assert marks[0].find("time").text == "Tue 2026-12-01 03:00 America/New_York"
    # carl: everything is over, so now comes after the last step.
    carl = _timeline(tree, "carl")
    last = [li for li in carl.find_all("li") if li.parent is carl][-1]
    assert "now-edge" in last.classes
    assert len(carl.find_all("span", class_="now")) == 1


def test_now_before_the_first_step_is_marked_before_it(kit: Kit) -> None:
    report = kit.service.status(WS, CID)
    enrolment = kit.storage.get_enrolment(WS, CID, LeadId("ann"))
    at = dt.datetime(2026, 12, 10, 15, 0, tzinfo=dt.UTC)
    timeline = timeline_of_lead(
        "Ann",
        enrolment.steps,
        [LeadStepState(step=1, status=SendStatus.SCHEDULED, at=at)],
        timezone="America/New_York",
    )
    _, tree = parse(
        render_campaign_page(report, now=at - dt.timedelta(days=1), timelines={"ann": timeline})
    )
    ol = _timeline(tree, "ann")
    first = next(li for li in ol.find_all("li") if li.parent is ol)
    assert "now-edge" in first.classes
    assert first.find("time").text == "Wed 2026-12-09 10:00 America/New_York"


def test_the_page_says_when_it_was_made_and_how_many_timelines_it_left_out(kit: Kit) -> None:
    page = campaign_page(
        kit.service, WS, CID, now=dt.datetime(2026, 12, 1, 9, 30, tzinfo=dt.UTC), max_timelines=2
    )
    _, tree = parse(page)
    assert "As of Tue 2026-12-01 09:30 UTC" in tree.find("body").text
    assert len(tree.find_all("section", class_="lead")) == 2
    assert "2 more contact(s) have a timeline that this page leaves out" in tree.text
    linked = [a.attrs["href"] for a in tree.find("section", id="contacts").find_all("a")]
    assert linked[:2] == ["#lead-1", "#lead-2"]
    for href in linked[:2]:
        assert tree.find_all(id=href[1:])


# --------------------------------------------------------------------------- safety


def test_the_page_has_no_script_and_no_external_reference(page: str, tree: Element) -> None:
    assert tree.find_all("script") == []
    assert tree.find_all("link") == []
    assert tree.find_all("img") == []
    assert tree.find_all("iframe") == []
    for element in tree.iter():
        for name, value in element.attrs.items():
            assert not name.startswith("on"), (element.tag, name)
            if name in ("src", "href", "xlink:href", "action", "srcset", "poster"):
                assert value.startswith("#"), (element.tag, name, value)
    style = tree.find("style").text
    assert "url(" not in style
    assert "@import" not in style
    assert not re.search(r"(?i)(https?:)?//[a-z0-9]", page.replace("http://www.w3.org", ""))
    policy = tree.find("meta", http_equiv="Content-Security-Policy").attrs["content"]
    assert "default-src 'none'" in policy


def test_hostile_names_appear_as_text_and_never_as_markup(page: str, tree: Element) -> None:
    row = _row(tree.find("section", id="contacts"), "evil")
    assert f"{SCRIPT_NAME} {IMG_NAME}" in row.text
    assert TABLE_COMPANY in row.text
    assert len(row.find_all("td")) == 5, "the company did not close the cell"
    heading = tree.find("section", class_="lead", data_lead="evil").find("h3")
    assert heading.text.startswith(f"{SCRIPT_NAME} {IMG_NAME}")
    assert tree.find_all("b") == []
    assert "<script" not in page
    assert "<img" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "Q4 <b>push</b>" in tree.find("h1").text
    assert "Q4 <b>push</b>" in tree.find("title").text


def test_control_characters_in_a_reason_are_replaced(kit: Kit) -> None:
    report = kit.service.status(WS, CID)
    contacts = tuple(
        attrs.evolve(c, reason="bounce\x07\x1b[31m\nred") if c.lead.id == "carl" else c
        for c in report.contacts
    )
    page = render_campaign_page(
        attrs.evolve(report, contacts=contacts), now=dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    )
    assert "\x07" not in page
    assert "\x1b" not in page
    _, tree = parse(page)
    assert "bounce\ufffd\ufffd[31m red" in _row(tree.find("section", id="stops"), "carl").text


# --------------------------------------------------------------------------- contract


def test_a_naive_now_is_refused(kit: Kit) -> None:
    with pytest.raises(InvalidInput, match="naive"):
        render_campaign_page(kit.service.status(WS, CID), now=dt.datetime(2026, 12, 1))


def test_a_timeline_of_a_lead_not_in_the_report_is_refused(kit: Kit) -> None:
    report = kit.service.status(WS, CID)
    other: Timeline = kit.service.lead_timeline(WS, CID, "ann")
    with pytest.raises(InvalidInput, match="zed"):
        render_campaign_page(
            report, now=dt.datetime(2026, 12, 1, tzinfo=dt.UTC), timelines={"zed": other}
        )


def test_the_same_inputs_render_the_same_page(kit: Kit) -> None:
    now = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)
    assert campaign_page(kit.service, WS, CID, now=now) == campaign_page(
        kit.service, WS, CID, now=now
    )


def test_an_empty_campaign_page_says_so() -> None:
    kit = make_kit()
    kit.service.create_campaign(
        WS,
        name="Nobody",
        brief="b",
        shape="cold-email",
        leads=[lead("sam", email=False)],
        email_identity=MAILBOX,
        campaign_id=CID,
    )
    _, tree = parse(campaign_page(kit.service, WS, CID))
    assert tree.find("section", id="contacts").find("h2").text == "Enrolled contacts (0)"
    assert "No contact is enrolled." in tree.text
    assert "Nobody: no LinkedIn message waits for an acceptance." in tree.text


def test_the_module_surface_is_pinned() -> None:
    assert monitoring_page.__all__ == ["campaign_page", "render_campaign_page"]


def test_the_docs_example_runs_and_both_ways_give_the_same_page(kit: Kit) -> None:
    doc = Path(__file__).parents[2] / "docs" / "monitoring.md"
    section = doc.read_text(encoding="utf-8").split("\n## The monitoring page", 1)[1]
    section = section.split("\n## ", 1)[0]
    [code] = re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)
    assert WS == "acme"
    now = kit.clock.now()
    names = {"service": kit.service, "now": now, "lead_ids": ["ann", "bob", "carl", "evil"]}

    exec(code.replace('"q1"', f'"{CID}"'), names)

    assert names["html"] == campaign_page(kit.service, WS, CID, now=now)


def test_a_campaign_in_review_shows_steps_not_scheduled_yet_and_now_before_them() -> None:
    kit = make_kit()
    kit.service.create_campaign(
        WS,
        name="Draft",
        brief="b",
        shape="email-sequence",
        leads=[lead("ann")],
        email_identity=MAILBOX,
        campaign_id=CID,
    )
    _, tree = parse(campaign_page(kit.service, WS, CID))
    row = tree.find("section", id="contacts").find("tr", data_lead="ann")
    assert [td.text for td in row.find_all("td")][1:4] == [
        "1. Email send not scheduled",
        "in_review",
        "none",
    ]
    ol = _timeline(tree, "ann")
    items = [li for li in ol.find_all("li") if li.parent is ol]
    assert "now-edge" in items[0].classes
    steps = _steps(ol)
    assert [s.attrs["data-status"] for s in steps] == ["none", "none", "none"]
    assert all(s.text.endswith("not scheduled yet") for s in steps)
    assert all(s.find("circle").attrs["stroke-dasharray"] for s in steps)


def test_a_failed_step_shows_when_it_failed_and_why(kit: Kit) -> None:
    report = kit.service.status(WS, CID)
    enrolment = kit.storage.get_enrolment(WS, CID, LeadId("ann"))
    failed_at = dt.datetime(2026, 11, 30, 14, 0, tzinfo=dt.UTC)
    timeline = timeline_of_lead(
        "Ann",
        enrolment.steps,
        [LeadStepState(step=1, status=SendStatus.FAILED, at=failed_at, reason="550 no such user")],
        timezone="America/New_York",
    )
    _, tree = parse(render_campaign_page(report, now=failed_at, timelines={"ann": timeline}))
    step = _steps(_timeline(tree, "ann"))[0]
    assert step.attrs["data-status"] == "failed"
    assert step.text.endswith("failed Mon 2026-11-30 09:00 America/New_York : 550 no such user")
    assert step.find("circle").attrs["fill"] != "#c62828", "not the colour of the now mark"


def test_an_overdue_step_is_still_after_now(kit: Kit) -> None:
    report = kit.service.status(WS, CID)
    enrolment = kit.storage.get_enrolment(WS, CID, LeadId("ann"))
    due = dt.datetime(2026, 12, 1, 14, 0, tzinfo=dt.UTC)
    timeline = timeline_of_lead(
        "Ann",
        enrolment.steps,
        [
            LeadStepState(step=1, status=SendStatus.SENT, at=due - dt.timedelta(days=1)),
            LeadStepState(step=2, status=SendStatus.SCHEDULED, at=due),
            LeadStepState(step=3, status=SendStatus.PENDING, at=due + dt.timedelta(hours=1)),
        ],
        timezone="America/New_York",
    )
    _, tree = parse(
        render_campaign_page(report, now=due + dt.timedelta(hours=3), timelines={"ann": timeline})
    )
    ol = _timeline(tree, "ann")
    items = [li for li in ol.find_all("li") if li.parent is ol]
    assert [("has-now" in li.classes) for li in items] == [False, True, False, False, False]
    assert ol.attrs["aria-label"] == "3 steps and the waits between them"
