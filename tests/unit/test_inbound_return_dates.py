"""Out-of-office answers: the return date, only when the text states one as a return.

Every message here is an Exchange-style automatic reply received on Monday 21 December 2026
(its ``Date`` header) unless the test says otherwise, so "12 January" means 2027-01-12.
"""

from __future__ import annotations

import datetime as dt

import pytest

from starlight_sequences.inbound import InboundKind, classify_message
from tests.unit._inbound_messages import out_of_office

JAN_12 = dt.date(2027, 1, 12)


def return_date(text: str, *, received_on: dt.date | None = None) -> dt.date | None:
    result = classify_message(out_of_office(text), received_on=received_on)
    assert result.kind is InboundKind.AUTO_REPLY, result.reason
    return result.return_date


@pytest.mark.parametrize(
    "text",
    [
        # English
        "I'm out of the office and back on 12 January.",
        "I will return on Monday 12 January 2027.",
        "I will be back in the office on Tuesday, January 12th.",
        "Out of office until 12 January.",
        "Returning 2027-01-12.",
        "Return date: 12.01.2027",
        # German
        "Ich bin zurück am 12.01.",
        "Ab dem 12. Januar bin ich wieder erreichbar.",
        "Ich bin ab dem 12. Januar wieder im Büro.",
        "Am 12.01. bin ich wieder im Büro.",
        "Ich bin bis einschließlich 11.01.2027 nicht im Büro.",
        "Ich bin bis zum 12. Jan. im Urlaub.",
        # French
        "Je serai de retour le 12 janvier.",
        "Je suis absent jusqu'au 12 janvier.",
        "Je suis absente jusqu’au 11 janvier inclus.",
        "De retour le mardi 12/01/2027.",
        # Spanish
        "Estaré de vuelta el 12 de enero.",
        "Estoy fuera de la oficina hasta el 12 de enero de 2027.",
        "A partir del 12 de enero estaré de nuevo en la oficina.",
        # Portuguese
        "Volto dia 12 de janeiro.",
        "Estou de férias até 12/01.",
        "Retorno em 12 de janeiro de 2027.",
        # Italian
        "Rientro il 12 gennaio.",
        "Sono in ferie fino al 12 gennaio.",
        "Sarò di ritorno il 12/01/2027.",
        # Dutch
        "Ik ben terug op 12 januari.",
        "Ik ben afwezig tot en met 11 januari.",
        "Vanaf 12 januari ben ik weer aanwezig.",
    ],
)
def test_a_stated_return_in_any_of_seven_languages_gives_the_return_date(text: str) -> None:
    assert return_date(text) == JAN_12


@pytest.mark.parametrize(
    "text",
    [
        "I am out of the office with limited access to email.",
        "Our meeting on 12 January is cancelled.",  # a date, but not a return
        "I am away. Call me on 12.01. if urgent.",
        "Ich bin ab dem 20.12. im Urlaub.",  # from when, not until when
        "I'll be back on Monday.",  # no date
        "I'll be back in 2 weeks, around 12 January.",
        "I'm back on 31 February.",  # no such day
        "Back on 12 January 2035.",  # a year nobody means
    ],
)
def test_no_return_date_is_guessed_from_what_is_not_a_stated_return(text: str) -> None:
    assert return_date(text) is None


def test_an_english_numeric_date_is_read_only_when_its_order_is_unambiguous() -> None:
    assert return_date("I'll be back on 01/11/2027.") is None
    assert return_date("I'll be back on 1/20/2027.") == dt.date(2027, 1, 20)
    assert return_date("I'll be back on 20/1/2027.") == dt.date(2027, 1, 20)


def test_a_numeric_date_in_other_languages_is_day_first() -> None:
    assert return_date("Ich bin zurück am 01.02.") == dt.date(2027, 2, 1)
    assert return_date("Je serai de retour le 01/02.") == dt.date(2027, 2, 1)


def test_a_date_without_a_year_is_the_next_one_on_or_after_the_day_received() -> None:
    assert return_date("Back on 12 January.", received_on=dt.date(2026, 12, 21)) == JAN_12
    assert return_date("Back on 12 March.", received_on=dt.date(2027, 3, 12)) == dt.date(
        2027, 3, 12
    )
    assert return_date("Back on 12 June.", received_on=dt.date(2026, 6, 1)) == dt.date(2026, 6, 12)


def test_received_on_overrides_the_date_header() -> None:
    text = "Back on 12 January."
    assert return_date(text, received_on=dt.date(2027, 1, 5)) == JAN_12
    assert return_date(text, received_on=dt.date(2027, 6, 5)) == dt.date(2028, 1, 12)


def test_a_date_without_a_year_just_past_is_a_stale_notice_not_a_return_next_year() -> None:
    # the out-of-office was left on: "back on 12 January" arriving on 20 January
    assert return_date("Back on 12 January.", received_on=dt.date(2027, 1, 20)) is None


def test_without_a_received_day_or_date_header_a_date_without_a_year_is_not_resolved() -> None:
    raw = out_of_office("Back on 12 January.", date=None)
    assert classify_message(raw).return_date is None
    dated = out_of_office("Back on 12 January 2027.", date=None)
    assert classify_message(dated).return_date == JAN_12


def test_a_stated_return_wins_over_an_until() -> None:
    text = "I am out until 11 January and back in the office on 12 January."
    assert return_date(text) == JAN_12


def test_the_return_date_is_read_from_the_subject_too() -> None:
    raw = out_of_office("Thanks for your message.").replace(
        b"Subject: Automatic reply: Faster batch jobs",
        b"Subject: Out of office until 12 January",
    )
    assert classify_message(raw).return_date == JAN_12


def test_the_reason_states_the_return_date_or_its_absence() -> None:
    dated = classify_message(out_of_office("Back on 12 January."))
    undated = classify_message(out_of_office("Away for a while."))
    assert dated.reason.endswith("back on 2027-01-12")
    assert undated.reason.endswith("no return date stated")


def test_a_29_february_without_a_year_is_the_next_leap_day() -> None:
    assert return_date("Back on 29 February.", received_on=dt.date(2026, 12, 21)) == dt.date(
        2028, 2, 29
    )


def test_dates_at_the_end_of_the_calendar_do_not_overflow() -> None:
    last = dt.date.max
    assert return_date("Out through 31 December.", received_on=last) == last
