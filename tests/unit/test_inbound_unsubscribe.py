"""Unsubscribe requests: a reply whose own text is essentially only the request."""

from __future__ import annotations

import pytest

from starlight_sequences.inbound import InboundKind, classify_message
from tests.unit._inbound_messages import message

QUOTE = "\n\nOn Mon, 30 Nov 2026 at 09:00, Ben <ben@starlight.example> wrote:\n> Worth a call?\n"


def kind_of(text: str, **fields: str | None) -> InboundKind:
    return classify_message(message(text + QUOTE, **fields)).kind  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "text",
    [
        # English
        "Unsubscribe",
        "unsubscribe me",
        "STOP",
        "Stop.",
        "Please stop",
        "Remove me",
        "Please remove me from your mailing list.",
        "Please take me off your list.",
        "Take me off your list, thanks",
        "Opt me out",
        "Stop emailing me",
        "No more emails please",
        "Do not contact me again.",
        "Hi Ben, please remove me. Thanks, Ada Lovelace",
        "Unsubscribe\n\nBest regards,\nAda Lovelace",
        # German
        "Abmelden",
        "Bitte abmelden.",
        "Bitte austragen",
        "Bitte tragen Sie mich aus Ihrem Verteiler aus.",
        "Bitte nehmen Sie mich aus Ihrem Verteiler.",
        "Keine weiteren E-Mails bitte.",
        "Bitte abmelden.\n\nMit freundlichen Grüßen\nKarl Weierstraß",
        # French
        "Désinscrire",
        "Merci de me désinscrire.",
        "Désabonnez-moi s'il vous plaît",
        "Merci de me retirer de votre liste.",
        "Merci de ne plus m'envoyer d'e-mails.",
        # Spanish
        "Darse de baja",
        "Quiero darme de baja, gracias.",
        "Por favor, elimínenme de su lista.",
        "Baja",
        # Portuguese
        "Cancelar inscrição",
        "Descadastrar",
        "Por favor, me descadastre.",
        "Não quero receber mais e-mails.",
        # Italian
        "Cancellami",
        "Disiscrivimi, grazie.",
        "Cancellatemi dalla vostra lista per favore.",
        "Non inviatemi più email.",
        # Dutch
        "Afmelden",
        "Uitschrijven graag.",
        "Graag uitschrijven a.u.b.",
        "Verwijder mij uit uw lijst alstublieft.",
        "Geen e-mails meer aub.",
    ],
)
def test_a_reply_that_only_asks_to_unsubscribe_is_an_unsubscribe(text: str) -> None:
    assert kind_of(text) is InboundKind.UNSUBSCRIBE


@pytest.mark.parametrize(
    "text",
    [
        "We can't stop growing, tell me more.",
        "Stop by our booth at the fair!",
        "Don't stop, this is interesting.",
        "Please don't remove me, I'd like the case study.",
        "How do I unsubscribe from your other product emails? Also, pricing?",
        "Yes, interested. Unsubscribe my colleague Bob, he left the company last week.",
        "Nicht abmelden, wir sind interessiert!",
        "Ne me désinscrivez pas, je suis intéressé.",
        "Happy to talk next week.",
        "",
    ],
)
def test_a_reply_that_does_more_than_ask_to_unsubscribe_is_a_reply(text: str) -> None:
    assert kind_of(text) is InboundKind.REPLY


def test_the_request_in_the_quoted_history_does_not_count() -> None:
    quoted = "Sounds good.\n\nOn Mon, Ben <ben@starlight.example> wrote:\n> Reply STOP to opt out."
    assert classify_message(message(quoted)).kind is InboundKind.REPLY


def test_the_request_in_a_signature_does_not_count() -> None:
    signed = "Let's talk Tuesday.\n\n-- \nAda\nTo unsubscribe from our newsletter reply STOP"
    assert classify_message(message(signed)).kind is InboundKind.REPLY


def test_an_unsubscribe_sent_by_a_mailto_list_unsubscribe_link_is_an_unsubscribe() -> None:
    raw = message("", subject="unsubscribe", in_reply_to=None)
    result = classify_message(raw)
    assert result.kind is InboundKind.UNSUBSCRIBE
    assert result.reason == "a reply that only asks to be taken off the list ('unsubscribe')"


def test_our_own_subject_coming_back_after_re_is_not_a_request() -> None:
    raw = message("Sure, send it over.", subject="Re: Reply STOP to unsubscribe")
    assert classify_message(raw).kind is InboundKind.REPLY


def test_a_long_text_is_never_a_bare_request() -> None:
    raw = message("Unsubscribe. " + "Lorem ipsum dolor sit amet. " * 20)
    assert classify_message(raw).kind is InboundKind.REPLY
