"""``starlight run --smtp URL``: what an SMTP URL says, and what it may not hold."""

from __future__ import annotations

import pytest

from starlight_sequences._cli_inputs import SMTPServer, parse_smtp_url
from starlight_sequences.adapters.smtp import SMTPSecurity


@pytest.mark.parametrize(
    ("url", "server"),
    [
        (
            "smtp+starttls://ada%40nimbus.example.com@mail.example.com",
            SMTPServer(
                host="mail.example.com",
                port=None,
                security=SMTPSecurity.STARTTLS,
                username="ada@nimbus.example.com",
            ),
        ),
        (
            "SMTPS://mail.example.com:2465/",
            SMTPServer(host="mail.example.com", port=2465, security=SMTPSecurity.SSL, username=""),
        ),
        (
            "smtp://[::1]:2525",
            SMTPServer(host="::1", port=2525, security=SMTPSecurity.PLAIN, username=""),
        ),
    ],
)
def test_an_smtp_url_gives_host_port_security_and_user(url: str, server: SMTPServer) -> None:
    assert parse_smtp_url(url) == server


def test_the_server_prints_as_a_url_without_a_password() -> None:
    server = parse_smtp_url("smtp+starttls://ada%40nimbus.example.com@[::1]:587")
    assert str(server) == "smtp+starttls://ada%40nimbus.example.com@[::1]:587"
    assert str(parse_smtp_url("smtps://mail.example.com")) == "smtps://mail.example.com"


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("smtps://ada:hunter2@mail.example.com", "STARLIGHT_SMTP_PASSWORD"),
        ("https://mail.example.com", "not an SMTP URL"),
        ("smtp://mail.example.com:70000", "port"),
        ("smtp://", "names no host"),
        ("smtp://mail.example.com/inbox", "no path"),
        ("smtp://mail.example.com?x=1", "no path, query"),
    ],
)
def test_an_unusable_smtp_url_is_refused_with_the_reason(url: str, words: str) -> None:
    with pytest.raises(ValueError, match=words) as caught:
        parse_smtp_url(url)
    assert "hunter2" not in str(caught.value)
