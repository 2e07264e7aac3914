"""The storage contract: every promise of ``ports.Storage``, checked on every adapter."""

from __future__ import annotations

import datetime as dt
import threading
from collections import Counter

import attrs
import pytest

from starlight_sequences.cadence import Cadence, resolve_cadence
from starlight_sequences.calendar import BusinessHours
from starlight_sequences.campaigns import (
    CampaignSettings,
    CampaignStatus,
    EmailIdentity,
    EnrolmentStatus,
    Excluded,
    LinkedInIdentity,
    ScheduledSend,
    SendStatus,
    StopScope,
)
from starlight_sequences.channels import Action
from starlight_sequences.credits import PriceTable
from starlight_sequences.drafts import DraftStatus
from starlight_sequences.errors import (
    CampaignNotFound,
    ConcurrentUpdate,
    EnrolmentNotFound,
    InvalidInput,
    LeaseLost,
    NotFound,
)
from starlight_sequences.events import ActivityKind
from starlight_sequences.ids import CampaignId, LeadId, SenderId
from starlight_sequences.ports.storage import (
    MAX_CURSOR_NAME,
    MAX_CURSOR_VALUE,
    Changes,
    Storage,
)
from starlight_sequences.shapes import SendShape, Step, Variant, WinnerRule
from tests.contract.conftest import (
    EMAIL_SENDER,
    LINKEDIN_SENDER,
    OTHER_WS,
    T0,
    WS,
    bumped,
    make_activity,
    make_campaign,
    make_draft,
    make_enrolment,
    make_lead,
    make_send,
)

NEW_YORK = dt.timezone(dt.timedelta(hours=-5))
LEASE = dt.timedelta(minutes=5)
HOUR = dt.timedelta(hours=1)


# --- round trips -----------------------------------------------------------------------------


def test_committed_records_come_back_equal(storage: Storage) -> None:
    campaign = make_campaign()
    lead = make_lead()
    enrolment = make_enrolment(campaign, lead)
    send = make_send(campaign)
    draft = make_draft(campaign)
    activity = make_activity(detail="sent step 1")
    assert storage.commit(
        WS,
        Changes(
            campaigns=(campaign,),
            enrolments=(enrolment,),
            sends=(send,),
            drafts=(draft,),
            activities=(activity,),
            suppress=("lead-ann",),
        ),
    )
    assert storage.get_campaign(WS, campaign.id) == campaign
    assert storage.list_campaigns(WS) == [campaign]
    assert storage.get_enrolment(WS, campaign.id, lead.id) == enrolment
    assert storage.list_enrolments(WS, campaign.id) == [enrolment]
    assert storage.list_sends(WS, campaign.id) == [send]
    assert storage.list_drafts(WS, campaign.id) == [draft]
    assert storage.list_activities(WS) == [activity]
    assert storage.suppressed(WS, ["lead-ann", "lead-bob"]) == {"lead-ann"}


def test_campaign_comes_back_with_every_setting_and_identity_field(storage: Storage) -> None:
    custom_shape = SendShape(
        key="custom-two-touch",
        name="Two touches",
        description="An email, then a note",
        steps=(
            Step(number=1, action=Action.EMAIL, guidance="Say hello ✨"),
            Step(number=2, action=Action.LINKEDIN_CONNECT, wait_days=2, with_note=True),
        ),
    )
    campaign = make_campaign(
        shape=custom_shape,
        status=CampaignStatus.PAUSED,
        settings=CampaignSettings(
            business_hours=BusinessHours(
                open=dt.time(8, 30),
                close=dt.time(18, 15, 30, 500),
                weekdays=((4, dt.time(9), dt.time(13)), (5, dt.time(10), dt.time(12))),
            ),
            start=dt.datetime(2026, 12, 1, 9, tzinfo=NEW_YORK),
            default_country="DE",
            default_timezone="Europe/Berlin",
            default_subdivision="BY",
            closures=frozenset({dt.date(2026, 12, 24), dt.date(2026, 12, 31)}),
            connection_timeout_days=7,
            stop_scope=StopScope.WORKSPACE,
            stop_company_on_reply=True,
            allow_overlap=True,
            out_of_office_days=3,
            max_attempts=2,
            seed="seed-42",
        ),
        email_identity=EmailIdentity(
            id=SenderId("box-9"),
            address="ceo@acme.example.com",
            display_name="Chief, Executive",
            timezone="Asia/Tokyo",
            min_spacing=dt.timedelta(minutes=7, microseconds=3),
            daily_cap=12,
        ),
        linkedin_identity=LinkedInIdentity(
            id=SenderId("li-9"),
            profile_url="https://www.linkedin.com/in/ceo",
            premium=True,
            notes_exhausted=True,
            send_without_note_when_exhausted=False,
            timezone="Europe/Paris",
            min_spacing=dt.timedelta(seconds=90),
            weekly_connect_cap=20,
            daily_message_cap=9,
        ),
        prices=PriceTable(draft=5, email=3, linkedin_connect=1, linkedin_message=0),
        approved_at=T0,
        paused_at=T0 + HOUR,
        finished_at=None,
        excluded=(
            Excluded(lead_id=LeadId("lead-x"), reason="no_channel", message="No way to reach x."),
            Excluded(lead_id=LeadId("lead-y"), reason="suppressed", message="On the list."),
        ),
    )
    storage.commit(WS, Changes(campaigns=(campaign,)))
    stored = storage.get_campaign(WS, campaign.id)
    assert stored == campaign
    assert stored.settings.business_hours.weekdays == campaign.settings.business_hours.weekdays
    assert stored.email_identity == campaign.email_identity
    assert stored.linkedin_identity == campaign.linkedin_identity


@pytest.mark.parametrize(
    "shape_key", ["cold-email", "email-sequence", "email-linkedin", "linkedin-note"]
)
def test_enrolment_comes_back_with_its_lead_and_cadence(storage: Storage, shape_key: str) -> None:
    campaign = make_campaign(shape_key=shape_key)
    leads = [
        make_lead("lead-ann"),
        make_lead("lead-bob", email=None, linkedin_connected=True, fields={}),
        make_lead(
            "lead-zoë",
            email="Zoë@Exämple.de",
            linkedin_url=None,
            country="DE",
            subdivision=None,
            timezone="Europe/Berlin",
            fields={"note": 'line\nbreak "quoted" ✓', "": "empty key"},
        ),
        make_lead(
            "lead-eva",
            country="ES",
            subdivision=None,
            timezone="Europe/Madrid",
            timezone_reason="Atlantic/Canary is one hour behind all year",
        ),
    ]
    enrolments = [
        make_enrolment(
            campaign,
            lead,
            status=EnrolmentStatus.OUT_OF_OFFICE,
            reason="back on Monday",
            resume_at=T0 + dt.timedelta(days=3),
            accepted_at=dt.datetime(2026, 11, 28, 9, tzinfo=NEW_YORK),
            connect_sent_at=T0 - HOUR,
        )
        for lead in leads
        if isinstance(resolve_cadence(campaign.shape, lead), Cadence)
    ]
    storage.commit(WS, Changes(campaigns=(campaign,), enrolments=tuple(enrolments)))
    assert storage.list_enrolments(WS, campaign.id) == enrolments
    for enrolment in enrolments:
        stored = storage.get_enrolment(WS, campaign.id, enrolment.lead_id)
        assert stored == enrolment
        assert dict(stored.lead.fields) == dict(enrolment.lead.fields)
        assert stored.lead.timezone_reason == enrolment.lead.timezone_reason
        assert stored.steps == enrolment.steps


def test_an_email_step_that_starts_a_new_thread_keeps_it(storage: Storage) -> None:
    campaign = make_campaign(shape_key="email-sequence")
    enrolment = make_enrolment(campaign, make_lead("lead-ann"))
    steps = tuple(attrs.evolve(step, new_thread=step.number == 3) for step in enrolment.steps)
    enrolment = attrs.evolve(enrolment, steps=steps)
    storage.commit(WS, Changes(campaigns=(campaign,), enrolments=(enrolment,)))
    stored = storage.get_enrolment(WS, campaign.id, enrolment.lead_id)
    assert [s.new_thread for s in stored.steps] == [False, False, True]


def test_an_ab_shape_its_winners_and_each_leads_variant_come_back(storage: Storage) -> None:
    ab = SendShape(
        key="ab",
        name="A/B",
        description="",
        steps=(
            Step(
                number=1,
                action=Action.EMAIL,
                guidance="One ask.",
                variants=(
                    Variant(key="roi", guidance="Numbers."),
                    Variant(key="peer", guidance="A peer."),
                ),
                winner=WinnerRule(after_sends=30, after_days=2),
            ),
            Step(number=2, action=Action.EMAIL, wait_days=3),
        ),
    )
    campaign = attrs.evolve(make_campaign(shape=ab), variant_winners=((1, "peer"),))
    enrolment = make_enrolment(campaign, make_lead("lead-ann"))
    steps = (
        attrs.evolve(enrolment.steps[0], variant="peer", new_thread=False),
        attrs.evolve(enrolment.steps[1], new_thread=True),
    )
    enrolment = attrs.evolve(enrolment, steps=steps)
    storage.commit(WS, Changes(campaigns=(campaign,), enrolments=(enrolment,)))
    assert storage.get_campaign(WS, campaign.id) == campaign
    stored = storage.get_enrolment(WS, campaign.id, enrolment.lead_id)
    assert stored.steps == steps
    assert [(s.variant, s.new_thread) for s in stored.steps] == [("peer", False), ("", True)]


def test_send_comes_back_with_every_field(storage: Storage) -> None:
    campaign = make_campaign()
    send = make_send(
        campaign,
        step=2,
        action=Action.LINKEDIN_CONNECT,
        sender_id=LINKEDIN_SENDER,
        due_at=dt.datetime(2026, 12, 1, 9, 0, 0, 123456, tzinfo=NEW_YORK),
        forecast_at=T0,
        status=SendStatus.SENT,
        attempts=3,
        lease_owner="worker-a",
        lease_expires_at=T0 + LEASE,
        sent_at=T0 + dt.timedelta(seconds=1),
        receipt="<abc@mail>",
        reason="retried after 451",
        with_note=True,
        revision=0,
    )
    storage.commit(WS, Changes(campaigns=(campaign,), sends=(send,)))
    assert storage.list_sends(WS, campaign.id) == [send]


def test_a_send_is_found_by_the_message_id_of_what_was_sent_in_its_workspace_only(
    storage: Storage,
) -> None:
    campaign = make_campaign()
    sent = make_send(
        campaign, "lead-ann", 1, status=SendStatus.SENT, sent_at=T0, receipt="<stl-1@acme.example>"
    )
    later = make_send(campaign, "lead-ann", 2, status=SendStatus.PENDING)
    other = make_campaign(workspace_id=OTHER_WS)
    theirs = make_send(
        other, "lead-ann", 1, status=SendStatus.SENT, sent_at=T0, receipt="<stl-2@acme.example>"
    )
    storage.commit(WS, Changes(campaigns=(campaign,), sends=(sent, later)))
    storage.commit(OTHER_WS, Changes(campaigns=(other,), sends=(theirs,)))
    assert storage.find_send(WS, message_id="<stl-1@acme.example>") == sent
    assert storage.find_send(WS, message_id="<stl-2@acme.example>") is None
    assert storage.find_send(OTHER_WS, message_id="<stl-2@acme.example>") == theirs
    assert storage.find_send(WS, message_id="<nobody@acme.example>") is None
    assert storage.find_send(WS, message_id="") is None, "unsent sends have no receipt"


def test_drafts_come_back_with_every_field(storage: Storage) -> None:
    campaign = make_campaign()
    drafts = (
        make_draft(campaign, step=1, version=3, edited=True),
        make_draft(
            campaign,
            step=2,
            action=Action.LINKEDIN_CONNECT,
            subject=None,
            body="",
            status=DraftStatus.NEEDS_ATTENTION,
            problem="body is empty",
        ),
    )
    storage.commit(WS, Changes(campaigns=(campaign,), drafts=drafts))
    assert storage.list_drafts(WS, campaign.id) == list(drafts)


def test_instants_come_back_as_equal_utc_aware_instants(storage: Storage) -> None:
    campaign = make_campaign(created_at=T0, approved_at=T0 + dt.timedelta(microseconds=1))
    send = make_send(campaign, due_at=T0 + HOUR)
    activity = make_activity(at=T0 + 2 * HOUR)
    storage.commit(WS, Changes(campaigns=(campaign,), sends=(send,), activities=(activity,)))
    stored = storage.get_campaign(WS, campaign.id)
    (stored_send,) = storage.list_sends(WS, campaign.id)
    (stored_activity,) = storage.list_activities(WS)
    instants = [stored.created_at, stored.approved_at, stored_send.due_at, stored_activity.at]
    assert instants == [T0, T0 + dt.timedelta(microseconds=1), T0 + HOUR, T0 + 2 * HOUR]
    assert all(t is not None and t.utcoffset() == dt.timedelta(0) for t in instants)


def test_instants_given_in_another_zone_come_back_in_utc(
    storage: Storage, request: pytest.FixtureRequest
) -> None:
    local = dt.datetime(2026, 11, 30, 9, tzinfo=NEW_YORK)
    campaign = make_campaign(created_at=local)
    storage.commit(WS, Changes(campaigns=(campaign,)))
    created = storage.get_campaign(WS, campaign.id).created_at
    assert created == local
    assert created.tzinfo == dt.UTC


# --- revisions and atomicity -----------------------------------------------------------------


def _records() -> dict[str, Changes]:
    """One change per record kind, each inserting one record at revision 0."""
    campaign = make_campaign()
    return {
        "campaign": Changes(campaigns=(campaign,)),
        "enrolment": Changes(enrolments=(make_enrolment(campaign, make_lead()),)),
        "send": Changes(sends=(make_send(campaign),)),
    }


@pytest.mark.parametrize("kind", ["campaign", "enrolment", "send"])
def test_inserting_at_revision_zero_fails_when_the_record_exists(
    storage: Storage, kind: str
) -> None:
    changes = _records()[kind]
    assert storage.commit(WS, changes)
    with pytest.raises(ConcurrentUpdate):
        storage.commit(WS, changes)


@pytest.mark.parametrize("kind", ["campaign", "enrolment", "send"])
def test_update_needs_the_revision_before_it(storage: Storage, kind: str) -> None:
    changes = _records()[kind]
    storage.commit(WS, changes)
    field = {"campaign": "campaigns", "enrolment": "enrolments", "send": "sends"}[kind]
    (record,) = getattr(changes, field)
    first = bumped(record)
    storage.commit(WS, Changes(**{field: (first,)}))
    with pytest.raises(ConcurrentUpdate):  # a stale writer, still on revision 0
        storage.commit(WS, Changes(**{field: (bumped(record),)}))
    with pytest.raises(ConcurrentUpdate):  # a revision skipped
        storage.commit(WS, Changes(**{field: (bumped(bumped(first)),)}))
    storage.commit(WS, Changes(**{field: (bumped(first),)}))
    assert _read_back(storage, kind).revision == 2  # type: ignore[attr-defined]


def _read_back(storage: Storage, kind: str) -> object:
    campaign_id = CampaignId("camp-1")
    if kind == "campaign":
        return storage.get_campaign(WS, campaign_id)
    if kind == "enrolment":
        return storage.get_enrolment(WS, campaign_id, LeadId("lead-ann"))
    (send,) = storage.list_sends(WS, campaign_id)
    return send


@pytest.mark.parametrize("kind", ["campaign", "enrolment", "send"])
def test_updating_a_record_never_stored_is_a_concurrent_update(storage: Storage, kind: str) -> None:
    field = {"campaign": "campaigns", "enrolment": "enrolments", "send": "sends"}[kind]
    (record,) = getattr(_records()[kind], field)
    with pytest.raises(ConcurrentUpdate):
        storage.commit(WS, Changes(**{field: (bumped(record),)}))


def test_a_failed_revision_check_in_the_middle_writes_nothing(storage: Storage) -> None:
    campaign = make_campaign()
    send = make_send(campaign)
    storage.commit(WS, Changes(campaigns=(campaign,), sends=(send,)))
    other = make_campaign("camp-2")
    stale_send = bumped(bumped(send), status=SendStatus.SKIPPED)
    with pytest.raises(ConcurrentUpdate):
        storage.commit(
            WS,
            Changes(
                campaigns=(other, bumped(campaign, status=CampaignStatus.PAUSED)),
                enrolments=(make_enrolment(other, make_lead()),),
                sends=(make_send(other), stale_send),
                drafts=(make_draft(campaign), make_draft(other)),
                activities=(make_activity(), make_activity(key="reply:1")),
                suppress=("lead-ann",),
            ),
        )
    assert storage.list_campaigns(WS) == [campaign]
    assert storage.list_sends(WS, campaign.id) == [send]
    assert storage.list_enrolments(WS, other.id) == []
    assert storage.list_sends(WS, other.id) == []
    assert storage.list_drafts(WS, campaign.id) == []
    assert storage.list_activities(WS) == []
    assert storage.suppressed(WS, ["lead-ann"]) == set()
    # the key of the failed commit was not recorded either
    assert storage.commit(WS, Changes(activities=(make_activity(key="reply:1"),)))


def test_drafts_are_replaced_without_a_revision_check(storage: Storage) -> None:
    campaign = make_campaign()
    storage.commit(WS, Changes(campaigns=(campaign,), drafts=(make_draft(campaign),)))
    edited = make_draft(campaign, body="Edited.", version=2, edited=True)
    storage.commit(WS, Changes(drafts=(edited,)))
    assert storage.list_drafts(WS, campaign.id) == [edited]


def test_an_empty_commit_succeeds(storage: Storage) -> None:
    assert storage.commit(WS, Changes()) is True


# --- event keys ------------------------------------------------------------------------------


def test_an_event_key_seen_before_returns_false_and_writes_nothing(storage: Storage) -> None:
    campaign = make_campaign()
    storage.commit(WS, Changes(campaigns=(campaign,)))
    reply = make_activity(ActivityKind.EVENT, key="reply:<m1@x>", detail="replied")
    assert storage.commit(WS, Changes(activities=(reply,)))
    paused = bumped(campaign, status=CampaignStatus.PAUSED)
    again = Changes(
        campaigns=(paused,),
        drafts=(make_draft(campaign),),
        activities=(make_activity(), reply),
        suppress=("lead-ann",),
    )
    assert storage.commit(WS, again) is False
    assert storage.get_campaign(WS, campaign.id) == campaign
    assert storage.list_drafts(WS, campaign.id) == []
    assert storage.list_activities(WS) == [reply]
    assert storage.suppressed(WS, ["lead-ann"]) == set()


def test_activities_without_a_key_are_never_deduplicated(storage: Storage) -> None:
    line = make_activity()
    assert storage.commit(WS, Changes(activities=(line,)))
    assert storage.commit(WS, Changes(activities=(line,)))
    assert storage.list_activities(WS) == [line, line]


def test_event_keys_are_per_workspace(storage: Storage) -> None:
    reply = make_activity(ActivityKind.EVENT, key="reply:1")
    assert storage.commit(WS, Changes(activities=(reply,)))
    assert storage.commit(OTHER_WS, Changes(activities=(reply,)))
    assert storage.list_activities(OTHER_WS) == [reply]


# --- workspaces ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["campaigns", "enrolments", "sends"])
def test_a_record_of_another_workspace_is_invalid_input_and_nothing_is_written(
    storage: Storage, kind: str
) -> None:
    mine = make_campaign("camp-mine")
    theirs = make_campaign(workspace_id=OTHER_WS)
    foreign = {
        "campaigns": Changes(campaigns=(mine, theirs)),
        "enrolments": Changes(campaigns=(mine,), enrolments=(make_enrolment(theirs, make_lead()),)),
        "sends": Changes(campaigns=(mine,), sends=(make_send(theirs),)),
    }[kind]
    with pytest.raises(InvalidInput):
        storage.commit(WS, foreign)
    assert storage.list_campaigns(WS) == []
    assert storage.list_campaigns(OTHER_WS) == []


def test_the_same_ids_in_two_workspaces_never_mix(storage: Storage) -> None:
    lead = make_lead()
    for ws, name in ((WS, "Acme's"), (OTHER_WS, "Globex's")):
        campaign = make_campaign(workspace_id=ws, name=name)
        storage.commit(
            ws,
            Changes(
                campaigns=(campaign,),
                enrolments=(make_enrolment(campaign, lead, reason=name),),
                sends=(make_send(campaign, receipt=name),),
                drafts=(make_draft(campaign, body=name),),
                activities=(make_activity(detail=name),),
                suppress=(name,),
            ),
        )
    for ws, name in ((WS, "Acme's"), (OTHER_WS, "Globex's")):
        campaign_id = CampaignId("camp-1")
        assert [c.name for c in storage.list_campaigns(ws)] == [name]
        assert storage.get_campaign(ws, campaign_id).name == name
        assert storage.get_enrolment(ws, campaign_id, lead.id).reason == name
        assert [e.reason for e in storage.find_enrolments(ws, lead_id=lead.id)] == [name]
        assert [e.reason for e in storage.find_enrolments(ws, email_domain="acme.example.com")] == [
            name
        ]
        assert [s.receipt for s in storage.list_sends(ws, campaign_id)] == [name]
        assert [d.body for d in storage.list_drafts(ws, campaign_id)] == [name]
        assert [a.detail for a in storage.list_activities(ws)] == [name]
        assert storage.suppressed(ws, ["Acme's", "Globex's"]) == {name}
        assert len(storage.sender_bookings(ws, EMAIL_SENDER, T0 - HOUR, T0 + HOUR)) == 1
    claimed = storage.claim_due(T0, worker_id="w", lease=LEASE, limit=10, workspace_id=WS)
    assert [(s.workspace_id, s.receipt) for s in claimed] == [(WS, "Acme's")]
    (theirs,) = storage.list_sends(OTHER_WS, CampaignId("camp-1"))
    assert theirs.status is SendStatus.SCHEDULED


def test_a_workspace_cannot_read_another_workspaces_records(storage: Storage) -> None:
    campaign = make_campaign(workspace_id=OTHER_WS)
    lead = make_lead()
    storage.commit(
        OTHER_WS,
        Changes(campaigns=(campaign,), enrolments=(make_enrolment(campaign, lead),)),
    )
    with pytest.raises(CampaignNotFound):
        storage.get_campaign(WS, campaign.id)
    with pytest.raises(EnrolmentNotFound):
        storage.get_enrolment(WS, campaign.id, lead.id)
    assert storage.list_enrolments(WS, campaign.id) == []
    assert storage.find_enrolments(WS, lead_id=lead.id) == []


# --- reads -----------------------------------------------------------------------------------


def test_get_campaign_of_an_unknown_id_raises_campaign_not_found(storage: Storage) -> None:
    with pytest.raises(CampaignNotFound, match="camp-404"):
        storage.get_campaign(WS, CampaignId("camp-404"))


def test_get_enrolment_of_an_unknown_lead_raises_enrolment_not_found(storage: Storage) -> None:
    campaign = make_campaign()
    storage.commit(WS, Changes(campaigns=(campaign,)))
    with pytest.raises(EnrolmentNotFound, match="lead-404") as caught:
        storage.get_enrolment(WS, campaign.id, LeadId("lead-404"))
    assert isinstance(caught.value, NotFound)


def test_campaigns_are_listed_oldest_first_and_an_update_keeps_its_place(storage: Storage) -> None:
    campaigns = [make_campaign(f"camp-{name}") for name in ("zulu", "alpha", "mike")]
    for campaign in campaigns:
        storage.commit(WS, Changes(campaigns=(campaign,)))
    updated = bumped(campaigns[0], status=CampaignStatus.PAUSED)
    storage.commit(WS, Changes(campaigns=(updated,)))
    assert storage.list_campaigns(WS) == [updated, campaigns[1], campaigns[2]]
    assert storage.list_campaigns(OTHER_WS) == []


def test_enrolments_are_listed_in_the_order_they_were_enrolled(storage: Storage) -> None:
    campaign = make_campaign()
    first = [make_enrolment(campaign, make_lead(f"lead-{n}")) for n in ("m", "b", "x")]
    later = make_enrolment(campaign, make_lead("lead-a"))
    storage.commit(WS, Changes(campaigns=(campaign,), enrolments=tuple(first)))
    storage.commit(WS, Changes(enrolments=(later, bumped(first[0], approved=False))))
    listed = storage.list_enrolments(WS, campaign.id)
    assert [e.lead_id for e in listed] == ["lead-m", "lead-b", "lead-x", "lead-a"]
    assert listed[0].approved is False


def test_drafts_and_sends_are_ordered_by_lead_then_step(storage: Storage) -> None:
    campaign = make_campaign()
    pairs = [("lead-b", 2), ("lead-a", 3), ("lead-b", 1), ("lead-a", 1), ("lead-c", 2)]
    storage.commit(
        WS,
        Changes(
            campaigns=(campaign,),
            drafts=tuple(make_draft(campaign, lead, step) for lead, step in pairs),
            sends=tuple(make_send(campaign, lead, step) for lead, step in pairs),
        ),
    )
    expected = sorted(pairs)
    assert [(d.lead_id, d.step) for d in storage.list_drafts(WS, campaign.id)] == expected
    assert [(s.lead_id, s.step) for s in storage.list_sends(WS, campaign.id)] == expected
    assert [d.step for d in storage.list_drafts(WS, campaign.id, LeadId("lead-a"))] == [1, 3]
    assert [s.step for s in storage.list_sends(WS, campaign.id, LeadId("lead-b"))] == [1, 2]
    assert storage.list_sends(WS, CampaignId("camp-other")) == []


def test_find_enrolments_by_lead_spans_every_campaign_of_the_workspace(storage: Storage) -> None:
    first, second = make_campaign("camp-1"), make_campaign("camp-2")
    ann, bob = make_lead("lead-ann"), make_lead("lead-bob")
    enrolments = (
        make_enrolment(first, ann),
        make_enrolment(first, bob),
        make_enrolment(second, ann),
    )
    storage.commit(WS, Changes(campaigns=(first, second), enrolments=enrolments))
    found = storage.find_enrolments(WS, lead_id=ann.id)
    assert [(e.campaign_id, e.lead_id) for e in found] == [
        ("camp-1", "lead-ann"),
        ("camp-2", "lead-ann"),
    ]
    assert storage.find_enrolments(WS, lead_id=LeadId("lead-nobody")) == []


def test_find_enrolments_by_email_domain_finds_the_whole_company(storage: Storage) -> None:
    campaign = make_campaign(shape_key="email-linkedin")
    leads = [
        make_lead("lead-ann", email="ann@Globex.COM"),
        make_lead("lead-bob", email="bob@globex.com"),
        make_lead("lead-cy", email="cy@sub.globex.com"),
        make_lead("lead-dee", email=None),
    ]
    storage.commit(
        WS,
        Changes(
            campaigns=(campaign,),
            enrolments=tuple(make_enrolment(campaign, lead) for lead in leads),
        ),
    )
    found = storage.find_enrolments(WS, email_domain="globex.com")
    assert [e.lead_id for e in found] == ["lead-ann", "lead-bob"]
    assert [e.lead_id for e in storage.find_enrolments(WS, email_domain="sub.globex.com")] == [
        "lead-cy"
    ]


def test_find_enrolments_by_lead_ids_finds_every_given_lead_in_enrolment_order(
    storage: Storage,
) -> None:
    first, second = make_campaign("camp-1"), make_campaign("camp-2")
    ann, bob, cy = make_lead("lead-ann"), make_lead("lead-bob"), make_lead("lead-cy")
    storage.commit(
        WS,
        Changes(
            campaigns=(first, second),
            enrolments=(
                make_enrolment(second, bob),
                make_enrolment(first, ann),
                make_enrolment(first, cy),
                make_enrolment(second, ann),
            ),
        ),
    )
    storage.commit(OTHER_WS, Changes(campaigns=(make_campaign(workspace_id=OTHER_WS),)))
    found = storage.find_enrolments(
        WS, lead_ids=[LeadId("lead-ann"), LeadId("lead-bob"), LeadId("lead-nobody")]
    )
    assert [(e.campaign_id, e.lead_id) for e in found] == [
        ("camp-2", "lead-bob"),
        ("camp-1", "lead-ann"),
        ("camp-2", "lead-ann"),
    ]
    assert storage.find_enrolments(WS, lead_ids=[]) == []
    assert storage.find_enrolments(OTHER_WS, lead_ids=[ann.id, bob.id]) == []


def test_find_enrolments_by_lead_ids_handles_more_leads_than_one_query_binds(
    storage: Storage,
) -> None:
    campaign = make_campaign()
    leads = [make_lead(f"lead-{n:04}") for n in range(1200)]
    storage.commit(
        WS,
        Changes(
            campaigns=(campaign,),
            enrolments=tuple(make_enrolment(campaign, lead) for lead in leads),
        ),
    )
    wanted = [lead.id for lead in leads[::-3]]
    found = storage.find_enrolments(WS, lead_ids=wanted)
    assert [e.lead_id for e in found] == sorted(wanted)


@pytest.mark.parametrize(
    "filters",
    [
        {},
        {"lead_id": LeadId("lead-ann"), "email_domain": "acme.example.com"},
        {"lead_id": LeadId("lead-ann"), "lead_ids": [LeadId("lead-ann")]},
    ],
)
def test_find_enrolments_needs_exactly_one_filter(
    storage: Storage, filters: dict[str, str]
) -> None:
    with pytest.raises(InvalidInput):
        storage.find_enrolments(WS, **filters)  # type: ignore[arg-type]


def test_activities_are_listed_in_append_order_and_filtered(storage: Storage) -> None:
    lines = [
        make_activity(ActivityKind.DRAFTED, campaign_id="camp-1", lead_id="lead-ann"),
        make_activity(ActivityKind.APPROVED, campaign_id="camp-1", lead_id=None),
        make_activity(ActivityKind.SENT, campaign_id="camp-2", lead_id="lead-ann", step=2),
        make_activity(ActivityKind.EVENT, campaign_id=None, lead_id="lead-bob", key="reply:9"),
        make_activity(ActivityKind.SENT, campaign_id="camp-1", lead_id="lead-bob", step=1),
    ]
    storage.commit(WS, Changes(activities=tuple(lines[:2])))
    storage.commit(WS, Changes(activities=tuple(lines[2:])))
    assert storage.list_activities(WS) == lines
    assert storage.list_activities(WS, campaign_id=CampaignId("camp-1")) == [
        lines[0],
        lines[1],
        lines[4],
    ]
    assert storage.list_activities(WS, lead_id=LeadId("lead-ann")) == [lines[0], lines[2]]
    assert storage.list_activities(
        WS, campaign_id=CampaignId("camp-1"), lead_id=LeadId("lead-bob")
    ) == [lines[4]]
    assert storage.list_activities(OTHER_WS) == []


def test_suppressed_returns_the_listed_keys_of_the_workspace_only(storage: Storage) -> None:
    storage.commit(WS, Changes(suppress=("lead-ann", "ann@acme.example.com")))
    storage.commit(WS, Changes(suppress=("lead-ann",)))
    storage.commit(OTHER_WS, Changes(suppress=("lead-bob",)))
    assert storage.suppressed(WS, ["lead-ann", "lead-bob", "ann@acme.example.com"]) == {
        "lead-ann",
        "ann@acme.example.com",
    }
    assert storage.suppressed(WS, []) == set()
    assert storage.suppressed(OTHER_WS, {"lead-ann", "lead-bob"}) == {"lead-bob"}


def test_suppressed_handles_more_keys_than_one_query_binds(storage: Storage) -> None:
    keys = tuple(f"lead-{n}" for n in range(2_000))
    storage.commit(WS, Changes(suppress=keys[::2]))
    assert storage.suppressed(WS, keys) == set(keys[::2])


# --- sender bookings -------------------------------------------------------------------------


def test_sender_bookings_hold_sent_and_planned_instants_across_campaigns(storage: Storage) -> None:
    first, second = make_campaign("camp-1"), make_campaign("camp-2")
    sends = (
        make_send(first, "lead-a", due_at=T0 - HOUR, status=SendStatus.SENT, sent_at=T0 + 5 * HOUR),
        make_send(first, "lead-b", due_at=T0 + HOUR, status=SendStatus.SCHEDULED),
        make_send(second, "lead-c", due_at=T0 + 2 * HOUR, status=SendStatus.CLAIMED),
        make_send(second, "lead-d", due_at=T0 + 3 * HOUR, status=SendStatus.WAITING),
        make_send(second, "lead-e", due_at=T0 + 3 * HOUR, status=SendStatus.PENDING),
        make_send(second, "lead-f", due_at=T0 + 3 * HOUR, status=SendStatus.SKIPPED),
        make_send(second, "lead-g", due_at=T0 + 3 * HOUR, status=SendStatus.FAILED),
        make_send(second, "lead-h", due_at=T0 + 4 * HOUR, sender_id=SenderId("mailbox-2")),
    )
    storage.commit(WS, Changes(campaigns=(first, second), sends=sends))
    bookings = storage.sender_bookings(WS, EMAIL_SENDER, T0 - 10 * HOUR, T0 + 10 * HOUR)
    assert bookings == [T0 + HOUR, T0 + 2 * HOUR, T0 + 5 * HOUR]
    assert storage.sender_bookings(OTHER_WS, EMAIL_SENDER, T0 - 10 * HOUR, T0 + 10 * HOUR) == []


def test_last_sent_is_the_senders_latest_actual_send(storage: Storage) -> None:
    first, second = make_campaign("camp-1"), make_campaign("camp-2")
    sends = (
        make_send(first, "lead-a", status=SendStatus.SENT, sent_at=T0 + 2 * HOUR),
        make_send(second, "lead-b", status=SendStatus.SENT, sent_at=T0 + 5 * HOUR),
        make_send(second, "lead-c", due_at=T0 + 9 * HOUR, status=SendStatus.SCHEDULED),
        make_send(
            second,
            "lead-d",
            status=SendStatus.SENT,
            sent_at=T0 + 7 * HOUR,
            sender_id=SenderId("mailbox-2"),
        ),
    )
    storage.commit(WS, Changes(campaigns=(first, second), sends=sends))
    assert storage.last_sent(WS, EMAIL_SENDER) == T0 + 5 * HOUR
    assert storage.last_sent(WS, EMAIL_SENDER, actions=[Action.LINKEDIN_MESSAGE]) is None
    assert storage.last_sent(WS, EMAIL_SENDER, actions=[Action.EMAIL]) == T0 + 5 * HOUR
    assert storage.last_sent(OTHER_WS, EMAIL_SENDER) is None
    assert storage.last_sent(WS, SenderId("nobody")) is None


def test_sender_bookings_window_is_half_open(storage: Storage) -> None:
    campaign = make_campaign()
    sends = tuple(make_send(campaign, f"lead-{n}", due_at=T0 + n * HOUR) for n in range(4))
    storage.commit(WS, Changes(campaigns=(campaign,), sends=sends))
    assert storage.sender_bookings(WS, EMAIL_SENDER, T0 + HOUR, T0 + 3 * HOUR) == [
        T0 + HOUR,
        T0 + 2 * HOUR,
    ]
    local_start = (T0 + HOUR).astimezone(NEW_YORK)
    assert storage.sender_bookings(WS, EMAIL_SENDER, local_start, local_start) == []


def test_sender_bookings_keep_only_the_given_actions(storage: Storage) -> None:
    campaign = make_campaign(shape_key="email-linkedin")
    sends = (
        make_send(campaign, "lead-a", 2, action=Action.LINKEDIN_CONNECT, sender_id=LINKEDIN_SENDER),
        make_send(
            campaign,
            "lead-a",
            3,
            action=Action.LINKEDIN_MESSAGE,
            sender_id=LINKEDIN_SENDER,
            due_at=T0 + HOUR,
        ),
    )
    storage.commit(WS, Changes(campaigns=(campaign,), sends=sends))
    window = (T0 - HOUR, T0 + 2 * HOUR)
    assert storage.sender_bookings(WS, LINKEDIN_SENDER, *window) == [T0, T0 + HOUR]
    assert storage.sender_bookings(
        WS, LINKEDIN_SENDER, *window, actions={Action.LINKEDIN_CONNECT}
    ) == [T0]
    assert storage.sender_bookings(WS, LINKEDIN_SENDER, *window, actions=[Action.EMAIL]) == []
    assert storage.sender_bookings(WS, LINKEDIN_SENDER, *window, actions=()) == []


@pytest.mark.parametrize(
    "final",
    [status for status in EnrolmentStatus if status.is_final],
)
def test_a_campaign_has_unfinished_enrolments_until_every_one_is_final(
    storage: Storage, final: EnrolmentStatus
) -> None:
    campaign, other = make_campaign("camp-1"), make_campaign("camp-2")
    ann, bob = (make_enrolment(campaign, make_lead(n)) for n in ("lead-ann", "lead-bob"))
    storage.commit(
        WS,
        Changes(
            campaigns=(campaign, other),
            enrolments=(ann, bob, make_enrolment(other, make_lead("lead-cy"))),
        ),
    )
    storage.commit(OTHER_WS, Changes(campaigns=(make_campaign(workspace_id=OTHER_WS),)))
    assert storage.has_unfinished_enrolments(WS, campaign.id)
    storage.commit(WS, Changes(enrolments=(bumped(ann, status=final),)))
    assert storage.has_unfinished_enrolments(WS, campaign.id)
    storage.commit(WS, Changes(enrolments=(bumped(bob, status=final),)))
    assert not storage.has_unfinished_enrolments(WS, campaign.id)
    assert storage.has_unfinished_enrolments(WS, other.id)
    assert not storage.has_unfinished_enrolments(OTHER_WS, campaign.id)
    assert not storage.has_unfinished_enrolments(WS, CampaignId("camp-none"))


@pytest.mark.parametrize(
    "unfinished", [status for status in EnrolmentStatus if not status.is_final]
)
def test_every_status_that_is_not_final_counts_as_unfinished(
    storage: Storage, unfinished: EnrolmentStatus
) -> None:
    campaign = make_campaign()
    enrolment = make_enrolment(campaign, make_lead(), status=unfinished)
    storage.commit(WS, Changes(campaigns=(campaign,), enrolments=(enrolment,)))
    assert storage.has_unfinished_enrolments(WS, campaign.id)


# --- claiming --------------------------------------------------------------------------------


def test_next_due_is_the_earliest_later_instant_a_claim_would_find(storage: Storage) -> None:
    active = make_campaign("camp-active")
    paused = make_campaign("camp-paused", status=CampaignStatus.PAUSED)
    sends = (
        make_send(active, "lead-due", due_at=T0 - HOUR),
        make_send(active, "lead-now", due_at=T0),
        make_send(paused, "lead-paused", due_at=T0 + HOUR),
        make_send(active, "lead-pending", due_at=T0 + HOUR, status=SendStatus.PENDING),
        make_send(active, "lead-later", due_at=T0 + 3 * HOUR),
        make_send(active, "lead-waiting", due_at=T0 + 2 * HOUR, status=SendStatus.WAITING),
    )
    storage.commit(WS, Changes(campaigns=(active, paused), sends=sends))
    assert storage.next_due(T0) == T0 + 2 * HOUR
    assert storage.next_due(T0 + 2 * HOUR) == T0 + 3 * HOUR
    assert storage.next_due(T0 + 3 * HOUR) is None
    assert storage.next_due(T0, workspace_id=OTHER_WS) is None
    assert storage.next_due(T0.astimezone(NEW_YORK), workspace_id=WS) == T0 + 2 * HOUR


def test_next_due_counts_the_expiry_of_a_live_lease(storage: Storage) -> None:
    campaign = make_campaign()
    storage.commit(
        WS,
        Changes(
            campaigns=(campaign,),
            sends=(
                make_send(campaign, "lead-ann", due_at=T0),
                make_send(campaign, "lead-bob", due_at=T0 + HOUR),
            ),
        ),
    )
    assert len(_claim(storage, limit=1)) == 1
    assert storage.next_due(T0) == T0 + LEASE
    assert storage.next_due(T0 + LEASE) == T0 + HOUR


def test_next_due_is_scoped_to_a_workspace_when_one_is_given(storage: Storage) -> None:
    mine, theirs = make_campaign("camp-1"), make_campaign("camp-2", workspace_id=OTHER_WS)
    storage.commit(WS, Changes(campaigns=(mine,), sends=(make_send(mine, due_at=T0 + HOUR),)))
    storage.commit(
        OTHER_WS, Changes(campaigns=(theirs,), sends=(make_send(theirs, due_at=T0 + 2 * HOUR),))
    )
    assert storage.next_due(T0, workspace_id=OTHER_WS) == T0 + 2 * HOUR
    assert storage.next_due(T0, workspace_id=WS) == T0 + HOUR
    assert storage.next_due(T0) == T0 + HOUR


def _claim(
    storage: Storage, now: dt.datetime = T0, worker: str = "worker-a", **kw: object
) -> list[ScheduledSend]:
    options: dict[str, object] = {"lease": LEASE, "limit": 100}
    options.update(kw)
    return storage.claim_due(now, worker_id=worker, **options)  # type: ignore[arg-type]


def test_claim_takes_due_scheduled_and_waiting_sends_of_active_campaigns_only(
    storage: Storage,
) -> None:
    active = make_campaign("camp-active")
    paused = make_campaign("camp-paused", status=CampaignStatus.PAUSED)
    draft = make_campaign("camp-draft", status=CampaignStatus.DRAFT)
    cancelled = make_campaign("camp-cancelled", status=CampaignStatus.CANCELLED)
    sends = (
        make_send(active, "lead-due", due_at=T0 - HOUR),
        make_send(active, "lead-now", due_at=T0),
        make_send(active, "lead-waiting", due_at=T0 - HOUR, status=SendStatus.WAITING),
        make_send(active, "lead-future", due_at=T0 + dt.timedelta(microseconds=1)),
        make_send(active, "lead-pending", due_at=T0 - HOUR, status=SendStatus.PENDING),
        make_send(active, "lead-sent", due_at=T0 - HOUR, status=SendStatus.SENT, sent_at=T0),
        make_send(active, "lead-skipped", due_at=T0 - HOUR, status=SendStatus.SKIPPED),
        make_send(active, "lead-failed", due_at=T0 - HOUR, status=SendStatus.FAILED),
        make_send(paused, "lead-p", due_at=T0 - HOUR),
        make_send(draft, "lead-d", due_at=T0 - HOUR),
        make_send(cancelled, "lead-c", due_at=T0 - HOUR),
    )
    storage.commit(WS, Changes(campaigns=(active, paused, draft, cancelled), sends=sends))
    claimed = _claim(storage)
    assert sorted(s.lead_id for s in claimed) == ["lead-due", "lead-now", "lead-waiting"]


def test_a_send_of_a_campaign_never_stored_is_not_claimed(storage: Storage) -> None:
    storage.commit(WS, Changes(sends=(make_send(make_campaign("camp-ghost"), due_at=T0 - HOUR),)))
    assert _claim(storage) == []


def test_claim_returns_the_oldest_first_up_to_the_limit(storage: Storage) -> None:
    campaign = make_campaign()
    dues = {"lead-c": T0 - HOUR, "lead-a": T0 - 3 * HOUR, "lead-b": T0 - 2 * HOUR, "lead-d": T0}
    storage.commit(
        WS,
        Changes(
            campaigns=(campaign,),
            sends=tuple(make_send(campaign, lead, due_at=due) for lead, due in dues.items()),
        ),
    )
    assert [s.lead_id for s in _claim(storage, limit=2)] == ["lead-a", "lead-b"]
    assert [s.lead_id for s in _claim(storage, limit=5)] == ["lead-c", "lead-d"]
    assert _claim(storage, limit=5) == []


def test_claim_with_a_limit_of_zero_claims_nothing(storage: Storage) -> None:
    campaign = make_campaign()
    storage.commit(WS, Changes(campaigns=(campaign,), sends=(make_send(campaign),)))
    assert _claim(storage, limit=0) == []
    assert len(_claim(storage, limit=1)) == 1


def test_a_claimed_send_is_stored_and_returned_as_held_by_the_worker(storage: Storage) -> None:
    campaign = make_campaign()
    send = make_send(campaign, due_at=T0 - HOUR, attempts=1, revision=0)
    storage.commit(WS, Changes(campaigns=(campaign,), sends=(send,)))
    now = T0.astimezone(NEW_YORK)
    (claimed,) = _claim(storage, now=now, worker="worker-a")
    expected = attrs.evolve(
        send,
        status=SendStatus.CLAIMED,
        lease_owner="worker-a",
        lease_expires_at=T0 + LEASE,
        attempts=2,
        revision=1,
    )
    assert claimed == expected
    assert storage.list_sends(WS, campaign.id) == [expected]
    assert claimed.idempotency_key == send.idempotency_key


def test_a_live_lease_is_not_claimed_again(storage: Storage) -> None:
    campaign = make_campaign()
    storage.commit(WS, Changes(campaigns=(campaign,), sends=(make_send(campaign),)))
    assert len(_claim(storage, worker="worker-a")) == 1
    assert _claim(storage, now=T0 + LEASE - dt.timedelta(microseconds=1), worker="worker-b") == []


def test_an_expired_lease_is_reclaimed_with_attempts_bumped(storage: Storage) -> None:
    campaign = make_campaign()
    storage.commit(WS, Changes(campaigns=(campaign,), sends=(make_send(campaign),)))
    (first,) = _claim(storage, worker="worker-a")
    (second,) = _claim(storage, now=T0 + LEASE, worker="worker-b")
    assert second.id == first.id
    assert second.lease_owner == "worker-b"
    assert second.lease_expires_at == T0 + 2 * LEASE
    assert (second.attempts, second.revision) == (2, 2)
    assert second.idempotency_key == first.idempotency_key


def test_an_expired_lease_is_reclaimed_even_when_the_campaign_was_paused(storage: Storage) -> None:
    campaign = make_campaign()
    storage.commit(WS, Changes(campaigns=(campaign,), sends=(make_send(campaign),)))
    _claim(storage, worker="worker-a")
    storage.commit(WS, Changes(campaigns=(bumped(campaign, status=CampaignStatus.PAUSED),)))
    assert [s.lease_owner for s in _claim(storage, now=T0 + LEASE, worker="worker-b")] == [
        "worker-b"
    ]


def test_claim_is_scoped_to_a_workspace_when_one_is_given(storage: Storage) -> None:
    mine, theirs = make_campaign("camp-1"), make_campaign("camp-2", workspace_id=OTHER_WS)
    storage.commit(WS, Changes(campaigns=(mine,), sends=(make_send(mine, due_at=T0 - HOUR),)))
    storage.commit(OTHER_WS, Changes(campaigns=(theirs,), sends=(make_send(theirs),)))
    assert [s.workspace_id for s in _claim(storage, workspace_id=OTHER_WS)] == [OTHER_WS]
    assert [s.workspace_id for s in _claim(storage, workspace_id=OTHER_WS)] == []
    assert [s.workspace_id for s in _claim(storage)] == [WS]


def test_claim_without_a_workspace_takes_from_every_workspace_oldest_first(
    storage: Storage,
) -> None:
    mine, theirs = make_campaign("camp-1"), make_campaign("camp-2", workspace_id=OTHER_WS)
    storage.commit(WS, Changes(campaigns=(mine,), sends=(make_send(mine, due_at=T0 - HOUR),)))
    storage.commit(
        OTHER_WS, Changes(campaigns=(theirs,), sends=(make_send(theirs, due_at=T0 - 2 * HOUR),))
    )
    assert [s.workspace_id for s in _claim(storage)] == [OTHER_WS, WS]


def test_concurrent_claimers_never_receive_the_same_send(storage: Storage) -> None:
    campaign = make_campaign()
    sends = tuple(
        make_send(campaign, f"lead-{n:03}", due_at=T0 - dt.timedelta(seconds=n)) for n in range(200)
    )
    storage.commit(WS, Changes(campaigns=(campaign,), sends=sends))
    taken: list[str] = []
    lock = threading.Lock()

    def work(worker: str) -> None:
        while batch := _claim(storage, worker=worker, limit=7):
            with lock:
                taken.extend(s.id for s in batch)

    threads = [threading.Thread(target=work, args=(f"w{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert Counter(taken) == Counter(s.id for s in sends)


# --- finishing -------------------------------------------------------------------------------


def _claimed(storage: Storage) -> tuple[ScheduledSend, ScheduledSend]:
    """A campaign with two sends of one lead; step 1 claimed by worker-a; (claimed, step 2)."""
    campaign = make_campaign()
    step1 = make_send(campaign, step=1)
    step2 = make_send(campaign, step=2, status=SendStatus.PENDING, due_at=T0 + 72 * HOUR)
    storage.commit(
        WS,
        Changes(
            campaigns=(campaign,),
            enrolments=(make_enrolment(campaign, make_lead()),),
            sends=(step1, step2),
        ),
    )
    (claimed,) = _claim(storage, worker="worker-a", limit=1)
    return claimed, step2


def test_finish_send_records_the_outcome_with_its_changes(storage: Storage) -> None:
    claimed, step2 = _claimed(storage)
    sent = bumped(
        claimed, status=SendStatus.SENT, sent_at=T0 + dt.timedelta(seconds=2), receipt="r1"
    )
    retimed = bumped(step2, status=SendStatus.SCHEDULED, due_at=T0 + 80 * HOUR)
    enrolment = storage.get_enrolment(WS, claimed.campaign_id, claimed.lead_id)
    line = make_activity(ActivityKind.SENT, step=1)
    storage.finish_send(
        sent,
        worker_id="worker-a",
        now=T0 + dt.timedelta(seconds=3),
        changes=Changes(
            sends=(retimed,),
            enrolments=(bumped(enrolment, reason="step 1 sent"),),
            activities=(line,),
        ),
    )
    assert storage.list_sends(WS, claimed.campaign_id) == [sent, retimed]
    assert storage.get_enrolment(WS, claimed.campaign_id, claimed.lead_id).reason == "step 1 sent"
    assert storage.list_activities(WS) == [line]


def test_finish_send_without_changes_records_the_send(storage: Storage) -> None:
    claimed, _ = _claimed(storage)
    retry = bumped(claimed, status=SendStatus.SCHEDULED, due_at=T0 + HOUR, reason="451 busy")
    storage.finish_send(retry, worker_id="worker-a", now=T0)
    assert storage.list_sends(WS, claimed.campaign_id)[0] == retry


def test_finish_send_just_before_the_lease_ends_succeeds(storage: Storage) -> None:
    claimed, _ = _claimed(storage)
    sent = bumped(claimed, status=SendStatus.SENT, sent_at=T0)
    storage.finish_send(sent, worker_id="worker-a", now=T0 + LEASE - dt.timedelta(microseconds=1))
    assert storage.list_sends(WS, claimed.campaign_id)[0].status is SendStatus.SENT


def test_finish_send_at_the_instant_the_lease_ends_is_lease_lost(storage: Storage) -> None:
    # The same rule as claim_due: at lease_expires_at another worker may take the send.
    claimed, _ = _claimed(storage)
    _assert_lease_lost_writes_nothing(storage, claimed, "worker-a", T0 + LEASE)


def test_finish_send_refuses_inbound_event_keys_and_writes_nothing(storage: Storage) -> None:
    claimed, _ = _claimed(storage)
    sent = bumped(claimed, status=SendStatus.SENT, sent_at=T0)
    with pytest.raises(InvalidInput, match="event keys"):
        storage.finish_send(
            sent,
            worker_id="worker-a",
            now=T0,
            changes=Changes(activities=(make_activity(key="reply:m1"),)),
        )
    assert storage.list_sends(WS, claimed.campaign_id)[0].status is SendStatus.CLAIMED
    assert storage.list_activities(WS) == []


def _assert_lease_lost_writes_nothing(
    storage: Storage, send: ScheduledSend, worker: str, now: dt.datetime
) -> None:
    before = storage.list_sends(WS, send.campaign_id)
    sent = bumped(send, status=SendStatus.SENT, sent_at=now)
    with pytest.raises(LeaseLost):
        storage.finish_send(
            sent,
            worker_id=worker,
            now=now,
            changes=Changes(activities=(make_activity(),), suppress=("x",)),
        )
    assert storage.list_sends(WS, send.campaign_id) == before
    assert storage.list_activities(WS) == []
    assert storage.suppressed(WS, ["x"]) == set()


def test_finish_send_by_another_worker_is_lease_lost(storage: Storage) -> None:
    claimed, _ = _claimed(storage)
    _assert_lease_lost_writes_nothing(storage, claimed, "worker-b", T0)


def test_finish_send_after_the_lease_expired_is_lease_lost(storage: Storage) -> None:
    claimed, _ = _claimed(storage)
    _assert_lease_lost_writes_nothing(
        storage, claimed, "worker-a", T0 + LEASE + dt.timedelta(microseconds=1)
    )


def test_finish_send_after_another_worker_reclaimed_it_is_lease_lost(storage: Storage) -> None:
    claimed, _ = _claimed(storage)
    _claim(storage, now=T0 + LEASE, worker="worker-b")
    _assert_lease_lost_writes_nothing(storage, claimed, "worker-a", T0 + LEASE)


def test_finish_send_of_a_send_never_claimed_is_lease_lost(storage: Storage) -> None:
    _, step2 = _claimed(storage)
    _assert_lease_lost_writes_nothing(storage, step2, "worker-a", T0)
    ghost = make_send(make_campaign(), "lead-ghost")
    with pytest.raises(LeaseLost):
        storage.finish_send(bumped(ghost), worker_id="worker-a", now=T0)


def test_finish_send_twice_is_lease_lost_the_second_time(storage: Storage) -> None:
    claimed, _ = _claimed(storage)
    sent = bumped(claimed, status=SendStatus.SENT, sent_at=T0)
    storage.finish_send(sent, worker_id="worker-a", now=T0)
    with pytest.raises(LeaseLost):
        storage.finish_send(bumped(sent), worker_id="worker-a", now=T0)


def test_finish_send_with_a_stale_change_writes_nothing(storage: Storage) -> None:
    claimed, step2 = _claimed(storage)
    sent = bumped(claimed, status=SendStatus.SENT, sent_at=T0)
    with pytest.raises(ConcurrentUpdate):
        storage.finish_send(
            sent,
            worker_id="worker-a",
            now=T0,
            changes=Changes(sends=(bumped(bumped(step2)),), activities=(make_activity(),)),
        )
    assert storage.list_sends(WS, claimed.campaign_id) == [claimed, step2]
    assert storage.list_activities(WS) == []


def test_finish_send_with_an_unbumped_revision_is_a_concurrent_update(storage: Storage) -> None:
    claimed, _ = _claimed(storage)
    with pytest.raises(ConcurrentUpdate):
        storage.finish_send(
            attrs.evolve(claimed, status=SendStatus.SENT), worker_id="worker-a", now=T0
        )
    assert storage.list_sends(WS, claimed.campaign_id)[0] == claimed


# --- cursors ---------------------------------------------------------------------------------


def test_a_cursor_never_saved_loads_as_none(storage: Storage) -> None:
    assert storage.load_cursor(WS, "imap:ann@mail.example/INBOX") is None


def test_a_saved_cursor_loads_back_exactly(storage: Storage) -> None:
    value = '{"uidvalidity": 1700000000, "last_uid": 42} ✉ ünïcode'
    storage.save_cursor(WS, "imap:ann@mail.example/INBOX", value)
    assert storage.load_cursor(WS, "imap:ann@mail.example/INBOX") == value


def test_saving_a_cursor_again_replaces_its_value(storage: Storage) -> None:
    storage.save_cursor(WS, "poller", "1")
    storage.save_cursor(WS, "poller", "2")
    storage.save_cursor(WS, "poller", "2")
    assert storage.load_cursor(WS, "poller") == "2"


def test_an_empty_value_is_a_value(storage: Storage) -> None:
    storage.save_cursor(WS, "poller", "")
    assert storage.load_cursor(WS, "poller") == ""


def test_cursors_of_one_workspace_are_invisible_to_another(storage: Storage) -> None:
    storage.save_cursor(WS, "poller", "acme")
    assert storage.load_cursor(OTHER_WS, "poller") is None
    storage.save_cursor(OTHER_WS, "poller", "globex")
    assert storage.load_cursor(WS, "poller") == "acme"
    assert storage.load_cursor(OTHER_WS, "poller") == "globex"


def test_cursors_with_other_names_are_kept_apart(storage: Storage) -> None:
    storage.save_cursor(WS, "imap:a@h/INBOX", "a")
    storage.save_cursor(WS, "imap:a@h/Replies", "b")
    storage.save_cursor(WS, "IMAP:A@H/INBOX", "c")  # names are compared exactly
    assert storage.load_cursor(WS, "imap:a@h/INBOX") == "a"
    assert storage.load_cursor(WS, "imap:a@h/Replies") == "b"
    assert storage.load_cursor(WS, "IMAP:A@H/INBOX") == "c"


def test_a_cursor_is_independent_of_commits(storage: Storage) -> None:
    storage.save_cursor(WS, "poller", "1")
    campaign = make_campaign()
    assert storage.commit(WS, Changes(campaigns=(campaign,)))
    assert storage.load_cursor(WS, "poller") == "1"
    assert storage.list_campaigns(WS) == [campaign]


def test_names_and_values_at_their_limits_are_kept(storage: Storage) -> None:
    name = "n" * MAX_CURSOR_NAME
    value = "é" * MAX_CURSOR_VALUE
    storage.save_cursor(WS, name, value)
    assert storage.load_cursor(WS, name) == value


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("", "1", "must not be empty"),
        ("n" * (MAX_CURSOR_NAME + 1), "1", "at most 200"),
        ("poller", "v" * (MAX_CURSOR_VALUE + 1), "at most 4096"),
        ("nul\x00name", "1", "NUL"),
        ("poller", "nul\x00value", "NUL"),
        ("poller", "lone \ud800 surrogate", "surrogate"),
        ("poller", 42, "must be a str"),
        (None, "1", "must be a str"),
    ],
)
def test_a_bad_cursor_name_or_value_is_invalid_input_and_nothing_is_written(
    storage: Storage, name: object, value: object, message: str
) -> None:
    storage.save_cursor(WS, "poller", "before")
    with pytest.raises(InvalidInput, match=message):
        storage.save_cursor(WS, name, value)  # type: ignore[arg-type]
    assert storage.load_cursor(WS, "poller") == "before"


@pytest.mark.parametrize("name", ["", "n" * (MAX_CURSOR_NAME + 1), "nul\x00"])
def test_loading_a_cursor_with_a_bad_name_is_invalid_input(storage: Storage, name: str) -> None:
    with pytest.raises(InvalidInput):
        storage.load_cursor(WS, name)


def test_concurrent_saves_leave_one_whole_value(storage: Storage) -> None:
    values = [f"{n:03d}" * 100 for n in range(8)]
    threads = [
        threading.Thread(target=storage.save_cursor, args=(WS, "poller", value)) for value in values
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert storage.load_cursor(WS, "poller") in values
