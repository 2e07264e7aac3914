"""reply_text / strip_quoted_text / html_to_text: what a person wrote, without the history."""

from __future__ import annotations

import email
from email import policy

import pytest

from starlight_sequences.inbound import html_to_text, reply_text, strip_quoted_text
from tests.unit._inbound_messages import message

ANSWER = "Yes, Thursday works."


@pytest.mark.parametrize(
    "history",
    [
        # Gmail, one line and wrapped
        "On Mon, 30 Nov 2026 at 09:00, Ben Baker <ben@starlight.example> wrote:\n\n> Hi\n> Call?",
        "On Mon, 30 Nov 2026 at 09:00, Ben Baker <\nben@starlight.example> wrote:\n> Call?",
        "On Wed, Dec 2, 2026 at 9:00 AM Ben Baker <ben@starlight.example>\nwrote:\n\n> Call?",
        # Apple Mail in English, German, French
        "> On 30 Nov 2026, at 09:00, Ben Baker <ben@starlight.example> wrote:\n> \n> Call?",
        "On 30 Nov 2026, at 09:00, Ben Baker <ben@starlight.example> wrote:\n\n> Call?",
        "Am 30.11.2026 um 09:00 schrieb Ben Baker <ben@starlight.example>:\n\n> Anruf?",
        "Le 30 nov. 2026 à 09:00, Ben Baker <ben@starlight.example> a écrit :\n\n> Appel ?",
        # Gmail in Spanish, Portuguese, Italian, Dutch
        "El lun, 30 nov 2026 a las 9:00, Ben (<ben@starlight.example>)\nescribió:\n> ¿Llamada?",
        "Em seg., 30 de nov. de 2026 às 06:00, Ben <ben@starlight.example> escreveu:\n> Chamada?",
        "Il giorno lun 30 nov 2026 alle ore 09:00 Ben <ben@starlight.example>\nha scritto:\n> Ok?",
        "Op ma 30 nov. 2026 om 09:00 schreef Ben Baker <ben@starlight.example>:\n> Bellen?",
        "Op 30 nov. 2026 om 09:00 heeft Ben <ben@starlight.example> het volgende geschreven:\n> Ok",
        # Outlook
        "-----Original Message-----\nFrom: Ben Baker\nSent: Monday\nTo: Ada\nSubject: Call?",
        "-----Ursprüngliche Nachricht-----\nVon: Ben Baker\nGesendet: Montag\nBetreff: Anruf?",
        "________________________________\nFrom: Ben Baker <ben@starlight.example>\nSent: Monday",
        "From: Ben Baker <ben@starlight.example>\nSent: Monday, 30 November 2026 09:00\nTo: Ada",
        "De : Ben Baker <ben@starlight.example>\nEnvoyé : lundi 30 novembre 2026 09:00\nÀ : Ada",
        "Von: Ben Baker <ben@starlight.example>\nGesendet: Montag, 30. November 2026\nAn: Ada",
        "Da: Ben Baker <ben@starlight.example>\nInviato: lunedì 30 novembre 2026\nA: Rita",
        "*From:* Ben Baker <ben@starlight.example>\n*Sent:* Monday\n*To:* Ada",
        # forwarded
        "---------- Forwarded message ---------\nFrom: Ben Baker <ben@starlight.example>",
        "Begin forwarded message:\n\nFrom: Ben Baker <ben@starlight.example>",
    ],
)
def test_quoted_history_of_every_client_style_is_removed(history: str) -> None:
    assert strip_quoted_text(f"{ANSWER}\n\n{history}\n") == ANSWER


def test_the_signature_after_a_dash_dash_space_line_is_removed() -> None:
    text = f"{ANSWER}\n\n-- \nAda Lovelace\nCTO, Analytical Engines\n"
    assert strip_quoted_text(text) == ANSWER


@pytest.mark.parametrize(
    "line",
    [
        "Sent from my iPhone",
        "Get Outlook for iOS",
        "Von meinem iPhone gesendet",
        "Envoyé de mon iPad",
        "Enviado desde mi Samsung Galaxy",
        "Enviado do meu iPhone",
        "Inviato da iPhone",
        "Verzonden vanaf mijn iPhone",
    ],
)
def test_mobile_client_signature_lines_are_removed(line: str) -> None:
    assert strip_quoted_text(f"{ANSWER}\n\n{line}\n") == ANSWER


def test_answers_between_quoted_passages_are_kept() -> None:
    text = (
        "On Mon, 30 Nov 2026 at 09:00, Ben <ben@starlight.example> wrote:\n"
        "> Which day suits you?\n\nThursday.\n\n> And which time?\n\nAfternoon.\n"
    )
    assert strip_quoted_text(text) == "Thursday.\n\nAfternoon."


def test_history_quoted_without_markers_below_an_attribution_is_removed() -> None:
    text = f"{ANSWER}\n\nOn Mon, 30 Nov 2026 at 09:00, Ben <ben@starlight.example> wrote:\nHi Ada\n"
    assert strip_quoted_text(text) == ANSWER


def test_a_sentence_that_merely_starts_with_on_is_not_an_attribution() -> None:
    text = "On Thursday I can talk.\nMy colleague wrote the spec: see attached."
    assert strip_quoted_text(text) == text


def test_an_address_in_the_last_line_of_the_answer_is_not_an_attribution() -> None:
    text = "Write to ops@analytical.example\n\nOn Mon, 30 Nov 2026, Ben <b@s.example> wrote:\n> x"
    assert strip_quoted_text(text) == "Write to ops@analytical.example"


def test_line_endings_and_invisible_characters_are_normalised() -> None:
    assert strip_quoted_text("Yes,\u00a0Thursday\u200b works.\r\n\r\n> quoted\r\n") == ANSWER


def test_reply_text_reads_raw_bytes_and_parsed_messages_alike() -> None:
    raw = message(f"{ANSWER}\n\n> Worth a call?\n")
    parsed = email.message_from_bytes(raw, policy=policy.default)
    assert reply_text(raw) == ANSWER
    assert reply_text(parsed) == ANSWER


def test_reply_text_prefers_the_plain_part_and_falls_back_to_html() -> None:
    alternative = b"""From: ada@analytical.example
Content-Type: multipart/alternative; boundary="A"

--A
Content-Type: text/plain; charset=utf-8

\t
--A
Content-Type: text/html; charset=utf-8

<div>Yes, <b>Thursday</b> works.</div><blockquote type="cite">Call?</blockquote>
--A--
"""
    assert reply_text(alternative) == ANSWER


def test_reply_text_of_unreadable_bytes_is_empty_or_printable() -> None:
    assert reply_text(b"") == ""
    assert reply_text(b"\x00\x01\xff\xfe") == "ÿþ"


def test_html_to_text_keeps_the_words_and_drops_the_machinery() -> None:
    html = """<html><head><title>t</title><style>p{color:red}</style></head>
    <body><p>Hello&nbsp;<b>Ben</b> &amp; team,</p><div>line two<br>line three</div>
    <script>alert("x")</script><ul><li>one</li><li>two</li></ul>
    <pre>  keep
  spacing</pre></body></html>"""
    assert html_to_text(html) == (
        "Hello Ben & team,\nline two\nline three\none\ntwo\n  keep\n  spacing"
    )


def test_html_to_text_marks_blockquotes_and_rules_like_mail_clients_quote() -> None:
    html = "<p>Yes.</p><hr><blockquote><p>Call?</p><blockquote>Nested</blockquote></blockquote>"
    assert html_to_text(html) == "Yes.\n" + "_" * 32 + "\n> Call?\n> > Nested"


@pytest.mark.parametrize(
    "html",
    ["<", "<<<>>>", "<!-- never closed", "<![CDATA[", "</p></div>", "<p" * 1000, "&#xD800;"],
)
def test_html_to_text_never_raises_on_broken_markup(html: str) -> None:
    assert isinstance(html_to_text(html), str)
