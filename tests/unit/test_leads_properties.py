"""Properties of lead normalisation and import."""

from __future__ import annotations

import csv
import io
import unicodedata
import urllib.parse

import attrs
import idna
from hypothesis import assume, given
from hypothesis import strategies as st

from starlight_sequences.errors import InvalidLead
from starlight_sequences.ids import LeadId
from starlight_sequences.leads import (
    Lead,
    derive_lead_id,
    import_leads,
    import_leads_csv,
    locate,
)

ATEXT = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+/=?^_`{|}~-"


def nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


unicode_letters = st.characters(categories=("Ll", "Lu", "Lo", "Nd"), min_codepoint=0xA0)
local_atoms = st.text(
    alphabet=st.one_of(st.sampled_from(ATEXT), unicode_letters), min_size=1, max_size=12
)
local_parts = (
    st.lists(local_atoms, min_size=1, max_size=3)
    .map(".".join)
    .filter(lambda local: len(nfc(local).encode()) <= 64)
)
ascii_labels = st.from_regex(r"[A-Za-z0-9]([A-Za-z0-9-]{0,12}[A-Za-z0-9])?", fullmatch=True)
unicode_labels = st.text(
    alphabet=st.characters(categories=("Ll", "Lo"), min_codepoint=0xA0), min_size=1, max_size=6
)
top_levels = st.from_regex(r"[A-Za-z]{2,6}", fullmatch=True)
domains = st.builds(
    lambda labels, top: ".".join([*labels, top]),
    st.lists(st.one_of(ascii_labels, unicode_labels), min_size=1, max_size=3),
    top_levels,
)
emails = st.builds(lambda local, domain: f"{local}@{domain}", local_parts, domains)


def stored_email(address: str) -> str | None:
    try:
        return Lead(id=LeadId("p"), email=address).email
    except InvalidLead:
        return None


@given(local_parts, domains)
def test_well_formed_emails_keep_their_local_part_and_store_the_idna_form_of_their_domain(
    local: str, domain: str
) -> None:
    # The reference: the idna package's UTS 46 + IDNA 2008 (non-transitional, STD3) encoding.
    try:
        expected: str | None = idna.encode(domain, uts46=True, std3_rules=True).decode("ascii")
    except idna.IDNAError:
        expected = None
    stored = stored_email(f"{local}@{domain}")
    if expected is None:
        assert stored is None
        return
    assert stored is not None
    stored_local, stored_domain = stored.split("@")
    assert stored_local == nfc(local)
    assert stored_domain == expected


@given(local_parts, st.lists(ascii_labels, min_size=1, max_size=3), top_levels)
def test_plain_ascii_domains_are_only_lower_cased(local: str, labels: list[str], top: str) -> None:
    assume(not any(label.lower().startswith("xn--") for label in labels))  # A-labels: above
    domain = ".".join([*labels, top])
    stored = stored_email(f"{local}@{domain}")
    if any(label[2:4] == "--" for label in labels):  # reserved by IDNA 2008 for A-labels
        assert stored is None
    else:
        assert stored == f"{nfc(local)}@{domain.lower()}"


@given(
    st.one_of(
        emails,
        st.text(max_size=40),
        st.builds(lambda e, c, i: e[:i] + c + e[i:], emails, st.characters(), st.integers(0, 40)),
    )
)
def test_any_accepted_email_validates_again_unchanged(address: str) -> None:
    stored = stored_email(address)
    if stored is not None:
        assert stored_email(stored) == stored
        assert " " not in stored
        assert stored.count("@") == 1


slugs = st.text(
    alphabet=st.one_of(
        st.sampled_from("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_"),
        st.characters(categories=("Ll", "Lu", "Lo", "Nd", "Mn"), min_codepoint=0xA0),
    ),
    min_size=3,
    max_size=30,
)


def stored_url(url: str) -> str | None:
    try:
        return Lead(id=LeadId("p"), linkedin_url=url).linkedin_url
    except InvalidLead:
        return None


@st.composite
def profile_url_variants(draw: st.DrawFn, slug: str) -> str:
    scheme = draw(st.sampled_from(["https://", "http://", "HTTPS://", ""]))
    host = draw(st.sampled_from(["www.linkedin.com", "linkedin.com", "uk.linkedin.com", "de."]))
    if host == "de.":
        host = "de.linkedin.com"
    if draw(st.booleans()):
        host = host.upper()
    if not scheme:
        host = host.lower()
    written = urllib.parse.quote(slug, safe="") if draw(st.booleans()) else slug
    tail = draw(st.sampled_from(["", "/", "/?trk=abc", "?x=1#top", "#about", "/details/skills/"]))
    return f"{scheme}{host}/in/{written}{tail}"


@given(st.data(), slugs)
def test_every_form_of_a_profile_url_gives_the_same_canonical_url(
    data: st.DataObject, slug: str
) -> None:
    plain = stored_url(f"https://www.linkedin.com/in/{slug}")
    variant = data.draw(profile_url_variants(slug))
    assert stored_url(variant) == plain
    if plain is not None:
        assert plain.startswith("https://www.linkedin.com/in/")
        assert stored_url(plain) == plain


@given(st.one_of(slugs.map(lambda slug: f"linkedin.com/in/{slug}"), st.text(max_size=60)))
def test_a_canonical_profile_url_is_a_fixed_point(url: str) -> None:
    canonical = stored_url(url)
    if canonical is not None:
        assert stored_url(canonical) == canonical
        assert canonical.isascii()


# --- whole leads -------------------------------------------------------------------------------

countries = st.sampled_from(["FR", "us", "DE", "gb", "UK", "JP", "XX", "", "France"])
zones = st.sampled_from(["Europe/Paris", "America/New_York", "UTC", "", "Bad/Zone", "Asia/Tokyo"])
flags = st.sampled_from(["yes", "no", "1", "0", "", "maybe", "TRUE"])
pool_emails = st.sampled_from(
    ["ada@example.com", "ADA@Example.com", "grace@example.org", "alan@bücher.de", "bad@", ""]
)
pool_profiles = st.sampled_from(
    [
        "linkedin.com/in/ada-l",
        "https://uk.linkedin.com/in/ADA-L/",
        "https://www.linkedin.com/in/grace-h",
        "https://www.linkedin.com/company/acme",
        "",
    ]
)
rows = st.fixed_dictionaries(
    {
        "id": st.sampled_from(["", "a", "b", "c", "d"]),
        "First Name": st.sampled_from(["", "Ada", " Grace "]),
        "Email": pool_emails,
        "LinkedIn URL": pool_profiles,
        "Country": countries,
        "tz": zones,
        "Connected": flags,
        "Industry": st.sampled_from(["", "SaaS", "x;y", 'say "hi"', "two\nlines"]),
    }
)


@given(st.lists(rows, max_size=12))
def test_import_never_loses_a_good_row(table: list[dict[str, str]]) -> None:
    result = import_leads(table)
    bad_rows = {problem.row for problem in result.problems}
    assert len(result.leads) + len(bad_rows) == len(table)
    good = [row for number, row in enumerate(table, start=1) if number not in bad_rows]
    assert list(result.leads) == [Lead.from_mapping(row) for row in good]


@given(st.lists(rows, max_size=12))
def test_imported_leads_never_share_an_id_email_or_profile(table: list[dict[str, str]]) -> None:
    leads = import_leads(table).leads
    assert len({lead.id for lead in leads}) == len(leads)
    emails_seen = [lead.email.lower() for lead in leads if lead.email is not None]
    assert len(set(emails_seen)) == len(emails_seen)
    profiles = [lead.linkedin_url for lead in leads if lead.linkedin_url is not None]
    assert len(set(profiles)) == len(profiles)


@given(st.lists(rows, max_size=8))
def test_a_csv_file_imports_exactly_like_its_rows(table: list[dict[str, str]]) -> None:
    table = [row for row in table if any(value.strip() for value in row.values())]
    buffer = io.StringIO(newline="")
    writer = csv.DictWriter(buffer, fieldnames=list(rows_header()))
    writer.writeheader()
    writer.writerows(table)
    from_csv = import_leads_csv(io.StringIO(buffer.getvalue(), newline=""))
    assert from_csv == import_leads(table, first_row=2)


def rows_header() -> tuple[str, ...]:
    return ("id", "First Name", "Email", "LinkedIn URL", "Country", "tz", "Connected", "Industry")


@given(st.lists(rows, max_size=6))
def test_a_lead_rebuilt_from_its_own_values_is_equal(table: list[dict[str, str]]) -> None:
    for lead in import_leads(table).leads:
        assert Lead(**attrs.asdict(lead, recurse=False)) == lead


@given(emails)
def test_derived_ids_ignore_the_ascii_case_of_the_address(address: str) -> None:
    # Only ASCII letters: Unicode upper/lower case is no round trip (µ -> Μ -> μ).
    shouted = "".join(char.upper() if char.isascii() else char for char in address)
    if stored_email(address) is not None:
        assert derive_lead_id(email=address) == derive_lead_id(email=shouted)


@given(st.lists(rows, max_size=6), st.sampled_from(["FR", "US", "JP"]))
def test_locate_fills_both_or_names_the_missing_field(
    table: list[dict[str, str]], default_country: str
) -> None:
    default_zone = {"FR": None, "US": "America/Chicago", "JP": "Asia/Tokyo"}[default_country]
    failures: list[str] = []
    for lead in import_leads(table).leads:
        try:
            located = locate(lead, default_country=default_country, default_timezone=default_zone)
        except InvalidLead as exc:
            failures.append(exc.field)
            continue
        assert located.country is not None
        assert located.timezone is not None
        assert located.country == (lead.country or default_country)
        if lead.timezone is not None:
            assert located.timezone == lead.timezone
    assert set(failures) <= {"timezone"}
