"""One-click unsubscribe: signed links, and approval refused without an unsubscribe target."""

from __future__ import annotations

import datetime as dt
import urllib.parse

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from starlight_sequences.campaigns import EnrolmentStatus
from starlight_sequences.errors import InvalidSettings, InvalidUnsubscribeToken
from starlight_sequences.ids import CampaignId
from starlight_sequences.unsubscribe import UnsubscribeLinks, check_unsubscribe_target
from tests.service_kit import LINKEDIN, MAILBOX, WS, lead, make_kit

SECRET = b"0123456789abcdef0123456789abcdef"
LINKS = UnsubscribeLinks(base_url="https://app.example.com/unsubscribe", secret=SECRET)
CID = CampaignId("q1")
ids = st.text(min_size=1, max_size=40).filter(lambda t: "\x1f" not in t)


@given(ids, ids, ids)
def test_a_token_names_exactly_the_workspace_campaign_and_lead_it_was_made_for(
    workspace: str, campaign: str, lead_id: str
) -> None:
    request = LINKS.verify(LINKS.token(workspace, campaign, lead_id))
    assert (request.workspace_id, request.campaign_id, request.lead_id) == (
        workspace,
        campaign,
        lead_id,
    )


def test_an_altered_or_foreign_token_is_refused() -> None:
    token = LINKS.token("acme", "q1", "ann")
    payload, mac = token.split(".")
    forged = LINKS.token("acme", "q1", "bob").split(".")[0] + "." + mac
    other = UnsubscribeLinks(base_url=LINKS.base_url, secret=b"x" * 32)
    for bad in (forged, payload + ".", "nonsense", token + "x", other.token("acme", "q1", "ann")):
        with pytest.raises(InvalidUnsubscribeToken):
            LINKS.verify(bad)


def test_the_links_refuse_a_short_secret_and_a_target_that_is_not_https() -> None:
    with pytest.raises(InvalidSettings, match="at least 16"):
        UnsubscribeLinks(base_url="https://a.example.com/u", secret=b"short")
    for base in ("http://a.example.com/u", "mailto:u@a.example.com", "https:///nohost", ""):
        with pytest.raises(InvalidSettings, match="base_url"):
            UnsubscribeLinks(base_url=base, secret=SECRET)
    assert "0123" not in repr(LINKS), "the secret never shows"


def test_a_target_is_an_https_url_or_a_mailto_address_and_nothing_else() -> None:
    assert check_unsubscribe_target("mailto:unsub@acme.example.com?subject=stop")
    assert check_unsubscribe_target("https://acme.example.com/u?t=1")
    for bad in (
        "http://acme.example.com/u",
        "ftp://x",
        "https://a.example.com/u\r\nBcc: x",
        "mailto:nobody",
        "https://a.example.com/<u>",
        "x" * 3000,
    ):
        with pytest.raises(InvalidSettings):
            check_unsubscribe_target(bad)


def _create(kit_service: object, **identities: object) -> None:
    kit_service.create_campaign(  # type: ignore[attr-defined]
        WS,
        name="q1",
        brief="b",
        shape="cold-email",
        leads=[lead("ann")],
        campaign_id=CID,
        **identities,
    )


def test_approving_an_email_campaign_without_an_unsubscribe_target_is_refused() -> None:
    kit = make_kit()
    kit.service.unsubscribe_url = None
    _create(kit.service, email_identity=MAILBOX)
    before = kit.service.balance(WS)
    with pytest.raises(InvalidSettings, match="unsubscribe"):
        kit.service.approve(WS, CID)
    assert kit.service.balance(WS) == before, "nothing reserved"
    assert kit.storage.list_sends(WS, CID) == [], "nothing scheduled"
    kit.service.send_without_unsubscribe = True  # the host opts out explicitly
    assert kit.service.approve(WS, CID).status == "active"


def test_a_target_that_is_not_https_or_mailto_is_refused_at_approval_not_at_send() -> None:
    kit = make_kit()
    kit.service.unsubscribe_url = lambda send: f"http://insecure.example.com/u/{send.lead_id}"
    _create(kit.service, email_identity=MAILBOX)
    with pytest.raises(InvalidSettings, match="https"):
        kit.service.approve(WS, CID)
    assert kit.storage.list_sends(WS, CID) == []


def test_a_linkedin_only_campaign_needs_no_unsubscribe_target() -> None:
    kit = make_kit()
    kit.service.unsubscribe_url = None
    kit.service.create_campaign(
        WS,
        name="li",
        brief="b",
        shape="linkedin-note",
        leads=[lead("ann", email=False, linkedin=True)],
        linkedin_identity=LINKEDIN,
        campaign_id=CID,
    )
    assert kit.service.approve(WS, CID).status == "active"


def test_every_email_carries_a_signed_link_whose_click_unsubscribes_the_lead_once() -> None:
    kit = make_kit()
    kit.service.unsubscribe_url = LINKS
    kit.service.create_campaign(
        WS,
        name="q1",
        brief="b",
        shape="email-sequence",
        leads=[lead("ann")],
        email_identity=attrs.evolve(MAILBOX, min_spacing=dt.timedelta(0)),
        campaign_id=CID,
    )
    kit.service.approve(WS, CID)
    kit.clock.advance(dt.timedelta(hours=8))
    kit.service.dispatch_due(worker_id="w")
    (message,) = kit.email.sent.values()
    url = urllib.parse.urlsplit(message.unsubscribe)
    assert (url.scheme, url.netloc, url.path) == ("https", "app.example.com", "/unsubscribe")
    token = urllib.parse.parse_qs(url.query)["t"][0]

    workspace, event = LINKS.event(token, at=kit.clock.now())
    assert workspace == WS
    assert [e.status for e in kit.service.report_event(workspace, event)] == [
        EnrolmentStatus.UNSUBSCRIBED
    ]
    assert kit.service.report_event(workspace, LINKS.event(token, at=kit.clock.now())[1]) == ()
    assert kit.storage.suppressed(WS, {"ann"}) == {"ann"}
    kit.clock.advance(dt.timedelta(days=10))
    kit.service.dispatch_due(worker_id="w")
    assert len(kit.email.sent) == 1, "nothing more after the click"
