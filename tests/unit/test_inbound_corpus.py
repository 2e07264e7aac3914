"""The hand-written corpus in ``tests/corpus/inbound``: each message comes out as listed.

``expected.json`` maps each ``.eml`` file to its kind and the fields that must come out of it
(only the fields listed are checked; ``text_contains`` / ``text_excludes`` check the reply's
own text against a phrase it wrote and one its mail client quoted; ``reason_contains`` checks
why an unmatched message is unmatched). The messages are dated in December 2026, so a return
date without a year resolves from their ``Date`` header.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from starlight_sequences.inbound import InboundKind, classify_message

CORPUS = Path(__file__).resolve().parents[1] / "corpus" / "inbound"
EXPECTED: dict[str, dict[str, Any]] = json.loads(
    (CORPUS / "expected.json").read_text(encoding="utf-8")
)
TUPLE_FIELDS = (
    "in_reply_to",
    "references",
    "failed_recipients",
    "original_message_ids",
)
PLAIN_FIELDS = ("from_address", "status_code", "message_id")


def test_every_corpus_message_has_an_expectation_and_every_expectation_a_message() -> None:
    on_disk = {path.name for path in CORPUS.glob("*.eml")}
    assert on_disk == set(EXPECTED)
    assert len(on_disk) >= 40


def test_the_corpus_covers_every_kind_and_every_required_shape() -> None:
    kinds = Counter(entry["kind"] for entry in EXPECTED.values())
    assert {kind.value for kind in InboundKind} == set(kinds)
    names = " ".join(EXPECTED)
    for shape in ("postfix", "exim-plain", "exim-rfc3464", "exchange", "gmail"):
        assert f"bounce-{shape}" in names, shape
    for client in ("gmail", "outlook", "apple-mail"):
        assert f"reply-{client}" in names, client
    for language in ("en", "de", "fr", "es", "pt", "it", "nl"):
        assert f"ooo-{language}-" in names, language
        assert f"unsubscribe-{language}-" in names, language
        dated = [n for n in EXPECTED if n.startswith(f"ooo-{language}-")]
        returns = {EXPECTED[n]["return_date"] is None for n in dated}
        assert returns == {True, False}, f"{language}: with and without a return date"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_a_corpus_message_is_classified_as_its_manifest_says(name: str) -> None:
    expected = EXPECTED[name]
    result = classify_message((CORPUS / name).read_bytes())

    assert result.kind == InboundKind(expected["kind"]), result.reason
    for field in TUPLE_FIELDS:
        if field in expected:
            assert list(getattr(result, field)) == expected[field], field
    for field in PLAIN_FIELDS:
        if field in expected:
            assert getattr(result, field) == expected[field], field
    if "return_date" in expected:
        wanted = expected["return_date"]
        assert result.return_date == (dt.date.fromisoformat(wanted) if wanted else None)
    if "text_contains" in expected:
        assert expected["text_contains"] in result.text
    if "text_excludes" in expected:
        assert expected["text_excludes"] not in result.text
    if "reason_contains" in expected:
        assert expected["reason_contains"] in result.reason
    assert result.reason
    assert "internal error" not in result.reason


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_a_corpus_message_has_a_stable_idempotency_key(name: str) -> None:
    raw = (CORPUS / name).read_bytes()
    first, second = classify_message(raw), classify_message(raw)
    assert first == second
    assert first.message_id.startswith(("<", "sha256:"))


def test_a_bounce_names_the_original_message_also_through_its_thread_headers() -> None:
    # Exim's delay warning quotes no headers but points at the original with References
    result = classify_message((CORPUS / "bounce-exim-plain-delay-warning.eml").read_bytes())
    assert result.related_message_ids == ("<cmp-7.hopper.1@starlight.example>",)


def test_a_hard_bounce_reports_what_the_remote_server_said() -> None:
    result = classify_message((CORPUS / "bounce-postfix-hard.eml").read_bytes())
    assert result.diagnostic.startswith("550 5.1.1 <nobody@analytical.example>: Recipient")
    assert "User unknown in virtual mailbox table" in result.diagnostic
    assert result.reason == (
        "a delivery status notification: delivery to nobody@analytical.example failed "
        "permanently (5.1.1)"
    )


def classify(name: str) -> tuple[InboundKind, tuple[str, ...], str | None, tuple[str, ...]]:
    result = classify_message((CORPUS / name).read_bytes())
    return result.kind, result.failed_recipients, result.status_code, result.original_message_ids


def test_a_postfix_hard_bounce_names_the_failed_recipient_and_the_original_message() -> None:
    assert classify("bounce-postfix-hard.eml") == (
        InboundKind.BOUNCE_HARD,
        ("nobody@analytical.example",),
        "5.1.1",
        ("<cmp-7.nobody.1@starlight.example>",),
    )


def test_an_exim_plain_text_bounce_is_read_from_its_text_and_x_failed_recipients() -> None:
    assert classify("bounce-exim-plain-hard.eml") == (
        InboundKind.BOUNCE_HARD,
        ("gone@babbage.example",),
        "5.1.1",
        ("<cmp-7.gone.1@starlight.example>",),
    )


def test_an_exchange_undeliverable_report_names_the_recipient_and_its_5_1_10_status() -> None:
    assert classify("bounce-exchange-hard.eml") == (
        InboundKind.BOUNCE_HARD,
        ("moved.on@contoso.example",),
        "5.1.10",
        ("<cmp-7.moved.1@starlight.example>",),
    )


def test_a_gmail_delay_notification_is_a_soft_bounce() -> None:
    assert classify("bounce-gmail-delay.eml") == (
        InboundKind.BOUNCE_SOFT,
        ("busy@overloaded.example",),
        "4.7.0",
        ("<cmp-7.busy.1@starlight.example>",),
    )
