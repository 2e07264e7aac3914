"""Follow-up emails of one lead form one thread unless a step starts a new one."""

from __future__ import annotations

import datetime as dt

import attrs
import pytest

from starlight_sequences.cadence import resolve_cadence
from starlight_sequences.channels import Action
from starlight_sequences.email_threads import (
    MAX_REFERENCES,
    follow_up_headers,
    reply_subject,
    thread_starter,
)
from starlight_sequences.errors import InvalidShape
from starlight_sequences.ids import CampaignId
from starlight_sequences.shapes import SendShape, Step
from starlight_sequences.shapes import get as stock
from tests.service_kit import MAILBOX, WS, lead, make_kit

CID = CampaignId("t")
FRESH_ANGLE = SendShape(
    key="fresh",
    name="Three emails, the third a fresh thread",
    description="",
    steps=(
        Step(number=1, action=Action.EMAIL),
        Step(number=2, action=Action.EMAIL, wait_days=2),
        Step(number=3, action=Action.EMAIL, wait_days=3, new_thread=True),
        Step(number=4, action=Action.EMAIL, wait_days=3),
    ),
)


def test_every_email_after_the_first_joins_its_thread_until_a_step_starts_a_new_one() -> None:
    steps = resolve_cadence(FRESH_ANGLE, lead("ann")).steps  # type: ignore[union-attr]
    assert [thread_starter(steps, n) for n in (1, 2, 3, 4)] == [1, 1, 3, 3]
    linkedin = resolve_cadence(stock("email-linkedin"), lead("ann", linkedin=True)).steps  # type: ignore[union-attr]
    assert [thread_starter(linkedin, s.number) for s in linkedin] == [1, None, None]


def test_a_reply_subject_never_stacks_prefixes() -> None:
    assert reply_subject("Idea for Acme") == "Re: Idea for Acme"
    assert reply_subject("Re: Idea for Acme") == "Re: Idea for Acme"
    assert reply_subject("AW: RE: Idea") == "Re: Idea"


def test_references_keep_the_first_and_the_latest_ids() -> None:
    ids = [f"<m{n}@acme.example>" for n in range(30)]
    headers = follow_up_headers("Idea", ids)
    assert headers is not None
    assert headers.in_reply_to == ids[-1]
    assert len(headers.references) == MAX_REFERENCES
    assert headers.references[0] == ids[0]
    assert headers.references[-1] == ids[-1]
    assert follow_up_headers("Idea", []) is None


def test_new_thread_is_for_email_steps_only_and_survives_the_dict_format() -> None:
    with pytest.raises(InvalidShape, match="new_thread applies to email steps only"):
        SendShape(
            key="x",
            name="x",
            description="",
            steps=(Step(number=1, action=Action.LINKEDIN_CONNECT, new_thread=True),),
        )
    assert SendShape.from_dict(FRESH_ANGLE.to_dict()) == FRESH_ANGLE


def test_follow_ups_reply_to_the_thread_and_a_new_angle_starts_its_own() -> None:
    kit = make_kit()
    kit.service.create_campaign(
        WS,
        name="t",
        brief="b",
        shape=FRESH_ANGLE,
        leads=[lead("ann")],
        email_identity=attrs.evolve(MAILBOX, min_spacing=dt.timedelta(0)),
        campaign_id=CID,
    )
    preview = kit.service.preview(WS, CID).recipients[0].steps
    first_subject = preview[0].draft.subject  # type: ignore[union-attr]
    assert [p.thread_of for p in preview] == [None, 1, None, 3]
    assert preview[1].subject == f"Re: {first_subject}"
    assert preview[2].subject == preview[2].draft.subject  # type: ignore[union-attr]
    assert preview[3].subject == f"Re: {preview[2].draft.subject}"  # type: ignore[union-attr]

    kit.service.approve(WS, CID)
    for _ in range(24 * 20):
        kit.service.dispatch_due(worker_id="w")
        kit.clock.advance(dt.timedelta(hours=1))
    sent = sorted(kit.email.sent.values(), key=lambda m: m.step)
    assert [m.step for m in sent] == [1, 2, 3, 4]
    receipts = {s.step: s.receipt for s in kit.storage.list_sends(WS, CID)}
    one, two, three, four = sent
    assert (one.in_reply_to, one.references, one.subject) == ("", (), first_subject)
    assert two.subject == f"Re: {first_subject}"
    assert (two.in_reply_to, two.references) == (receipts[1], (receipts[1],))
    assert (three.in_reply_to, three.references) == ("", ())
    assert three.subject == preview[2].draft.subject  # type: ignore[union-attr]
    assert (four.in_reply_to, four.references) == (receipts[3], (receipts[3],))
    assert four.subject == preview[3].subject
