"""Round trips, revisions, event keys and workspaces: what ``Storage.commit`` keeps and refuses."""

from __future__ import annotations

import datetime as dt

import attrs
import pytest

from starlight_sequences.cadence import Cadence, resolve_cadence
from starlight_sequences.calendar import BusinessHours, WarmUp
from starlight_sequences.campaigns import (
    CampaignSettings,
    CampaignStatus,
    EmailIdentity,
    EnrolmentStatus,
    Excluded,
    LinkedInIdentity,
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
)
from starlight_sequences.events import ActivityKind
from starlight_sequences.ids import CampaignId, LeadId, SenderId
from starlight_sequences.ports.storage import Changes, Storage
from starlight_sequences.shapes import SendShape, Step, Variant, WinnerRule
from starlight_sequences.testing._storage_base import HOUR, LEASE, NEW_YORK, StorageSection
from starlight_sequences.testing.records import (
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


def _records() -> dict[str, Changes]:
    """One change per record kind, each inserting one record at revision 0."""
    campaign = make_campaign()
    return {
        "campaign": Changes(campaigns=(campaign,)),
        "enrolment": Changes(enrolments=(make_enrolment(campaign, make_lead()),)),
        "send": Changes(sends=(make_send(campaign),)),
    }


def _read_back(storage: Storage, kind: str) -> object:
    campaign_id = CampaignId("camp-1")
    if kind == "campaign":
        return storage.get_campaign(WS, campaign_id)
    if kind == "enrolment":
        return storage.get_enrolment(WS, campaign_id, LeadId("lead-ann"))
    (send,) = storage.list_sends(WS, campaign_id)
    return send


class StorageRoundTrips(StorageSection):
    """Every record comes back equal to what was committed, instants in UTC."""

    # --- round trips ------------------------------------------------------------------------------

    def test_committed_records_come_back_equal(self, storage: Storage) -> None:
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

    def test_campaign_comes_back_with_every_setting_and_identity_field(
        self, storage: Storage
    ) -> None:
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
                warm_up=WarmUp(
                    start=3, step=2, ceiling=12, since=dt.date(2026, 11, 16), country="JP"
                ),
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
                Excluded(
                    lead_id=LeadId("lead-x"), reason="no_channel", message="No way to reach x."
                ),
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
    def test_enrolment_comes_back_with_its_lead_and_cadence(
        self, storage: Storage, shape_key: str
    ) -> None:
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

    def test_an_email_step_that_starts_a_new_thread_keeps_it(self, storage: Storage) -> None:
        campaign = make_campaign(shape_key="email-sequence")
        enrolment = make_enrolment(campaign, make_lead("lead-ann"))
        steps = tuple(attrs.evolve(step, new_thread=step.number == 3) for step in enrolment.steps)
        enrolment = attrs.evolve(enrolment, steps=steps)
        storage.commit(WS, Changes(campaigns=(campaign,), enrolments=(enrolment,)))
        stored = storage.get_enrolment(WS, campaign.id, enrolment.lead_id)
        assert [s.new_thread for s in stored.steps] == [False, False, True]

    def test_an_ab_shape_its_winners_and_each_leads_variant_come_back(
        self, storage: Storage
    ) -> None:
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

    def test_send_comes_back_with_every_field(self, storage: Storage) -> None:
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
        self,
        storage: Storage,
    ) -> None:
        campaign = make_campaign()
        sent = make_send(
            campaign,
            "lead-ann",
            1,
            status=SendStatus.SENT,
            sent_at=T0,
            receipt="<stl-1@acme.example>",
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

    def test_drafts_come_back_with_every_field(self, storage: Storage) -> None:
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

    def test_instants_come_back_as_equal_utc_aware_instants(self, storage: Storage) -> None:
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
        self, storage: Storage, request: pytest.FixtureRequest
    ) -> None:
        local = dt.datetime(2026, 11, 30, 9, tzinfo=NEW_YORK)
        campaign = make_campaign(created_at=local)
        storage.commit(WS, Changes(campaigns=(campaign,)))
        created = storage.get_campaign(WS, campaign.id).created_at
        assert created == local
        assert created.tzinfo == dt.UTC


class StorageRevisions(StorageSection):
    """Revision checks, all-or-nothing commits, event keys and workspace isolation."""

    # --- revisions and atomicity ------------------------------------------------------------------

    @pytest.mark.parametrize("kind", ["campaign", "enrolment", "send"])
    def test_inserting_at_revision_zero_fails_when_the_record_exists(
        self, storage: Storage, kind: str
    ) -> None:
        changes = _records()[kind]
        assert storage.commit(WS, changes)
        with pytest.raises(ConcurrentUpdate):
            storage.commit(WS, changes)

    @pytest.mark.parametrize("kind", ["campaign", "enrolment", "send"])
    def test_update_needs_the_revision_before_it(self, storage: Storage, kind: str) -> None:
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

    @pytest.mark.parametrize("kind", ["campaign", "enrolment", "send"])
    def test_updating_a_record_never_stored_is_a_concurrent_update(
        self, storage: Storage, kind: str
    ) -> None:
        field = {"campaign": "campaigns", "enrolment": "enrolments", "send": "sends"}[kind]
        (record,) = getattr(_records()[kind], field)
        with pytest.raises(ConcurrentUpdate):
            storage.commit(WS, Changes(**{field: (bumped(record),)}))

    def test_a_failed_revision_check_in_the_middle_writes_nothing(self, storage: Storage) -> None:
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

    def test_drafts_are_replaced_without_a_revision_check(self, storage: Storage) -> None:
        campaign = make_campaign()
        storage.commit(WS, Changes(campaigns=(campaign,), drafts=(make_draft(campaign),)))
        edited = make_draft(campaign, body="Edited.", version=2, edited=True)
        storage.commit(WS, Changes(drafts=(edited,)))
        assert storage.list_drafts(WS, campaign.id) == [edited]

    def test_an_empty_commit_succeeds(self, storage: Storage) -> None:
        assert storage.commit(WS, Changes()) is True

    # --- event keys -------------------------------------------------------------------------------

    def test_an_event_key_seen_before_returns_false_and_writes_nothing(
        self, storage: Storage
    ) -> None:
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

    def test_activities_without_a_key_are_never_deduplicated(self, storage: Storage) -> None:
        line = make_activity()
        assert storage.commit(WS, Changes(activities=(line,)))
        assert storage.commit(WS, Changes(activities=(line,)))
        assert storage.list_activities(WS) == [line, line]

    def test_event_keys_are_per_workspace(self, storage: Storage) -> None:
        reply = make_activity(ActivityKind.EVENT, key="reply:1")
        assert storage.commit(WS, Changes(activities=(reply,)))
        assert storage.commit(OTHER_WS, Changes(activities=(reply,)))
        assert storage.list_activities(OTHER_WS) == [reply]

    # --- workspaces -------------------------------------------------------------------------------

    @pytest.mark.parametrize("kind", ["campaigns", "enrolments", "sends"])
    def test_a_record_of_another_workspace_is_invalid_input_and_nothing_is_written(
        self, storage: Storage, kind: str
    ) -> None:
        mine = make_campaign("camp-mine")
        theirs = make_campaign(workspace_id=OTHER_WS)
        foreign = {
            "campaigns": Changes(campaigns=(mine, theirs)),
            "enrolments": Changes(
                campaigns=(mine,), enrolments=(make_enrolment(theirs, make_lead()),)
            ),
            "sends": Changes(campaigns=(mine,), sends=(make_send(theirs),)),
        }[kind]
        with pytest.raises(InvalidInput):
            storage.commit(WS, foreign)
        assert storage.list_campaigns(WS) == []
        assert storage.list_campaigns(OTHER_WS) == []

    def test_the_same_ids_in_two_workspaces_never_mix(self, storage: Storage) -> None:
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
            assert [
                e.reason for e in storage.find_enrolments(ws, email_domain="acme.example.com")
            ] == [name]
            assert [s.receipt for s in storage.list_sends(ws, campaign_id)] == [name]
            assert [d.body for d in storage.list_drafts(ws, campaign_id)] == [name]
            assert [a.detail for a in storage.list_activities(ws)] == [name]
            assert storage.suppressed(ws, ["Acme's", "Globex's"]) == {name}
            assert len(storage.sender_bookings(ws, EMAIL_SENDER, T0 - HOUR, T0 + HOUR)) == 1
        claimed = storage.claim_due(T0, worker_id="w", lease=LEASE, limit=10, workspace_id=WS)
        assert [(s.workspace_id, s.receipt) for s in claimed] == [(WS, "Acme's")]
        (theirs,) = storage.list_sends(OTHER_WS, CampaignId("camp-1"))
        assert theirs.status is SendStatus.SCHEDULED

    def test_a_workspace_cannot_read_another_workspaces_records(self, storage: Storage) -> None:
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
