from __future__ import annotations

import starlight_sequences

EXPECTED_TOP_LEVEL = {
    "Campaign",
    "CampaignSettings",
    "CampaignStatus",
    "EmailIdentity",
    "BounceBreaker",
    "SenderHold",
    "Enrolment",
    "EnrolmentStatus",
    "LinkedInIdentity",
    "ScheduledSend",
    "SendStatus",
    "StopScope",
    "UnsubscribeLinks",
    "EventKind",
    "InboundEvent",
    "Activity",
    "ActivityKind",
    "ActivityPage",
    "ActivityReason",
    "JournalEntry",
    "LeadImport",
    "LeadProblem",
    "import_leads",
    "import_leads_csv",
    "locate",
    "CampaignService",
    "AsyncCampaignService",
    "run_worker",
    "run_worker_async",
    "adapters",
    "ports",
    "Action",
    "Cadence",
    "CadenceStep",
    "CreditAccount",
    "CreditEstimate",
    "CreditMovement",
    "Exclusion",
    "ExclusionReason",
    "LeadEstimate",
    "MovementKind",
    "PriceTable",
    "calendar",
    "credits",
    "estimate_credits",
    "resolve_cadence",
    "shapes",
    "CampaignId",
    "Channel",
    "Lead",
    "LeadId",
    "SendId",
    "SendShape",
    "SenderId",
    "StarlightError",
    "Step",
    "Variant",
    "WaitAnchor",
    "WarmUp",
    "WinnerRule",
    "WorkspaceId",
    "variants",
    "pools",
}


def test_all_is_sorted_and_pinned() -> None:
    exported = starlight_sequences.__all__
    assert list(exported) == sorted(exported)
    assert set(exported) == EXPECTED_TOP_LEVEL


def test_every_exported_name_exists() -> None:
    for name in starlight_sequences.__all__:
        assert hasattr(starlight_sequences, name), name


def test_the_inbound_package_surface_is_sorted_and_pinned() -> None:
    from starlight_sequences import inbound

    # sorted as ruff's RUF022 keeps it: constants, then classes, then functions
    assert list(inbound.__all__) == sorted(
        inbound.__all__, key=lambda name: (not name.isupper(), not name[0].isupper(), name)
    )
    assert set(inbound.__all__) == {
        "MAX_MESSAGE_BYTES",
        "MAX_MIME_DEPTH",
        "InboundClassification",
        "InboundKind",
        "classify_message",
        "html_to_text",
        "normalise_address",
        "normalise_message_id",
        "reply_text",
        "strip_quoted_text",
    }
    for name in inbound.__all__:
        assert hasattr(inbound, name), name


def test_the_testing_package_surface_is_sorted_and_pinned() -> None:
    from starlight_sequences import testing
    from starlight_sequences.testing import records

    assert list(testing.__all__) == sorted(testing.__all__)
    assert set(testing.__all__) == {
        "LedgerContract",
        "StorageAgreement",
        "StorageContract",
        "settle_activities",
    }
    assert list(records.__all__) == sorted(
        records.__all__, key=lambda name: (not name.isupper(), not name[0].isupper(), name)
    )
    assert set(records.__all__) == {
        "EMAIL_SENDER",
        "LINKEDIN_SENDER",
        "OTHER_WS",
        "T0",
        "WS",
        "bumped",
        "cadence_of",
        "make_activity",
        "make_campaign",
        "make_draft",
        "make_enrolment",
        "make_lead",
        "make_send",
    }
    for module in (testing, records):
        for name in module.__all__:
            assert hasattr(module, name), name


def test_the_variants_module_surface_is_pinned() -> None:
    from starlight_sequences import variants

    assert set(variants.__all__) == {
        "Z_95",
        "VariantResult",
        "assign_variants",
        "leads_to_switch",
        "pick_winner",
        "split_evenly",
        "variant_results",
        "wilson_interval",
    }


def test_the_pools_module_surface_is_pinned() -> None:
    from starlight_sequences import pools

    assert list(pools.__all__) == ["SenderCapacity", "assign_senders", "quotas"]
