"""The reads of ``Storage``: lookups, orders, filters, suppression, sender bookings."""

from __future__ import annotations

import pytest

from starlight_sequences.campaigns import (
    CampaignStatus,
    EnrolmentStatus,
    SendStatus,
)
from starlight_sequences.channels import Action
from starlight_sequences.errors import (
    CampaignNotFound,
    EnrolmentNotFound,
    InvalidInput,
    NotFound,
)
from starlight_sequences.events import ActivityKind
from starlight_sequences.ids import CampaignId, LeadId, SenderId
from starlight_sequences.ports.storage import Changes, Storage
from starlight_sequences.testing._storage_base import HOUR, NEW_YORK, StorageSection
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


class StorageReads(StorageSection):
    """Lookups and listings: not-found errors, orders, filters, suppression, sender bookings."""

    # --- reads ------------------------------------------------------------------------------------

    def test_get_campaign_of_an_unknown_id_raises_campaign_not_found(
        self, storage: Storage
    ) -> None:
        with pytest.raises(CampaignNotFound, match="camp-404"):
            storage.get_campaign(WS, CampaignId("camp-404"))

    def test_get_enrolment_of_an_unknown_lead_raises_enrolment_not_found(
        self, storage: Storage
    ) -> None:
        campaign = make_campaign()
        storage.commit(WS, Changes(campaigns=(campaign,)))
        with pytest.raises(EnrolmentNotFound, match="lead-404") as caught:
            storage.get_enrolment(WS, campaign.id, LeadId("lead-404"))
        assert isinstance(caught.value, NotFound)

    def test_campaigns_are_listed_oldest_first_and_an_update_keeps_its_place(
        self, storage: Storage
    ) -> None:
        campaigns = [make_campaign(f"camp-{name}") for name in ("zulu", "alpha", "mike")]
        for campaign in campaigns:
            storage.commit(WS, Changes(campaigns=(campaign,)))
        updated = bumped(campaigns[0], status=CampaignStatus.PAUSED)
        storage.commit(WS, Changes(campaigns=(updated,)))
        assert storage.list_campaigns(WS) == [updated, campaigns[1], campaigns[2]]
        assert storage.list_campaigns(OTHER_WS) == []

    def test_enrolments_are_listed_in_the_order_they_were_enrolled(self, storage: Storage) -> None:
        campaign = make_campaign()
        first = [make_enrolment(campaign, make_lead(f"lead-{n}")) for n in ("m", "b", "x")]
        later = make_enrolment(campaign, make_lead("lead-a"))
        storage.commit(WS, Changes(campaigns=(campaign,), enrolments=tuple(first)))
        storage.commit(WS, Changes(enrolments=(later, bumped(first[0], approved=False))))
        listed = storage.list_enrolments(WS, campaign.id)
        assert [e.lead_id for e in listed] == ["lead-m", "lead-b", "lead-x", "lead-a"]
        assert listed[0].approved is False

    def test_drafts_and_sends_are_ordered_by_lead_then_step(self, storage: Storage) -> None:
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

    def test_find_enrolments_by_lead_spans_every_campaign_of_the_workspace(
        self, storage: Storage
    ) -> None:
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

    def test_find_enrolments_by_email_domain_finds_the_whole_company(
        self, storage: Storage
    ) -> None:
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
        self,
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
        self,
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
        self, storage: Storage, filters: dict[str, str]
    ) -> None:
        with pytest.raises(InvalidInput):
            storage.find_enrolments(WS, **filters)  # type: ignore[arg-type]

    def test_activities_are_listed_in_append_order_and_filtered(self, storage: Storage) -> None:
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

    def test_suppressed_returns_the_listed_keys_of_the_workspace_only(
        self, storage: Storage
    ) -> None:
        storage.commit(WS, Changes(suppress=("lead-ann", "ann@acme.example.com")))
        storage.commit(WS, Changes(suppress=("lead-ann",)))
        storage.commit(OTHER_WS, Changes(suppress=("lead-bob",)))
        assert storage.suppressed(WS, ["lead-ann", "lead-bob", "ann@acme.example.com"]) == {
            "lead-ann",
            "ann@acme.example.com",
        }
        assert storage.suppressed(WS, []) == set()
        assert storage.suppressed(OTHER_WS, {"lead-ann", "lead-bob"}) == {"lead-bob"}

    def test_suppressed_handles_more_keys_than_one_query_binds(self, storage: Storage) -> None:
        keys = tuple(f"lead-{n}" for n in range(2_000))
        storage.commit(WS, Changes(suppress=keys[::2]))
        assert storage.suppressed(WS, keys) == set(keys[::2])

    # --- sender bookings --------------------------------------------------------------------------

    def test_sender_bookings_hold_sent_and_planned_instants_across_campaigns(
        self, storage: Storage
    ) -> None:
        first, second = make_campaign("camp-1"), make_campaign("camp-2")
        sends = (
            make_send(
                first, "lead-a", due_at=T0 - HOUR, status=SendStatus.SENT, sent_at=T0 + 5 * HOUR
            ),
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

    def test_last_sent_is_the_senders_latest_actual_send(self, storage: Storage) -> None:
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

    def test_sender_bookings_window_is_half_open(self, storage: Storage) -> None:
        campaign = make_campaign()
        sends = tuple(make_send(campaign, f"lead-{n}", due_at=T0 + n * HOUR) for n in range(4))
        storage.commit(WS, Changes(campaigns=(campaign,), sends=sends))
        assert storage.sender_bookings(WS, EMAIL_SENDER, T0 + HOUR, T0 + 3 * HOUR) == [
            T0 + HOUR,
            T0 + 2 * HOUR,
        ]
        local_start = (T0 + HOUR).astimezone(NEW_YORK)
        assert storage.sender_bookings(WS, EMAIL_SENDER, local_start, local_start) == []

    def test_sender_bookings_keep_only_the_given_actions(self, storage: Storage) -> None:
        campaign = make_campaign(shape_key="email-linkedin")
        sends = (
            make_send(
                campaign, "lead-a", 2, action=Action.LINKEDIN_CONNECT, sender_id=LINKEDIN_SENDER
            ),
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
        self, storage: Storage, final: EnrolmentStatus
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
        self, storage: Storage, unfinished: EnrolmentStatus
    ) -> None:
        campaign = make_campaign()
        enrolment = make_enrolment(campaign, make_lead(), status=unfinished)
        storage.commit(WS, Changes(campaigns=(campaign,), enrolments=(enrolment,)))
        assert storage.has_unfinished_enrolments(WS, campaign.id)
