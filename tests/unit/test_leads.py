"""Lead validation, normalisation, ``Lead.from_mapping`` and ``locate``."""

from __future__ import annotations

from typing import Any

import attrs
import pytest

from starlight_sequences.errors import (
    InvalidLead,
    MissingLocation,
    UnknownCountry,
    UnknownTimezone,
)
from starlight_sequences.ids import LeadId
from starlight_sequences.leads import Lead, derive_lead_id, locate, normalise_email


def lead(**overrides: Any) -> Lead:
    values: dict[str, Any] = {"id": LeadId("lead-1")}
    values.update(overrides)
    return Lead(**values)


# --- email -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("jane@example.com", "jane@example.com"),
        ("Jane.Doe@Example.COM", "Jane.Doe@example.com"),
        ("  jane@example.com\t", "jane@example.com"),
        ("jane+news@mail.example.co.uk", "jane+news@mail.example.co.uk"),
        ("o'brien@example.ie", "o'brien@example.ie"),
        ("a!#$%&'*/=?^_`{|}~-b@example.com", "a!#$%&'*/=?^_`{|}~-b@example.com"),
        ("x@sub-domain.example.io", "x@sub-domain.example.io"),
        ("jane@bücher.de", "jane@xn--bcher-kva.de"),
        ("jane@BÜCHER.DE", "jane@xn--bcher-kva.de"),
        ("jane@xn--bcher-kva.de", "jane@xn--bcher-kva.de"),
        ("jane@XN--BCHER-KVA.DE", "jane@xn--bcher-kva.de"),
        ("用户@例子.广告", "用户@xn--fsqu00a.xn--4rr70v"),
        ("用户@例子。广告", "用户@xn--fsqu00a.xn--4rr70v"),
        ("Dörte@example.de", "Dörte@example.de"),
        ("josé@correo.es", "josé@correo.es"),
        ("чебурашка@ящик-с-апельсинами.рф", "чебурашка@xn-----8kcayoeblonkwzf2jqc1b.xn--p1ai"),
        ("Ωmega@Ελληνικά.gr", "Ωmega@xn--hxargifdar.gr"),
        ("a" * 64 + "@example.com", "a" * 64 + "@example.com"),
        # UTS 46 mapping: full-width letters and dots are the ASCII ones.
        ("a@EXAMPLE.ＣＯＭ", "a@example.com"),
        ("a@ｅｘａｍｐｌｅ．ｃｏｍ", "a@example.com"),
        # IDNA 2008, non-transitional: "ß" is its own letter, not "ss" (faß.de is not fass.de).
        ("a@faß.de", "a@xn--fa-hia.de"),
    ],
)
def test_valid_emails_are_kept_with_a_lower_case_ascii_domain(given: str, stored: str) -> None:
    assert lead(email=given).email == stored


@pytest.mark.parametrize(
    ("given", "reason"),
    [
        ("jane doe@example.com", "whitespace"),
        ("jane@exam ple.com", "whitespace"),
        ("jane@@example.com", "more than one @"),
        ("jane@doe@example.com", "more than one @"),
        ("jane.example.com", "no @"),
        ("jane@localhost", "no dot"),
        ("@example.com", "nothing before the @"),
        ("jane@", "nothing after the @"),
        ("a" * 65 + "@example.com", "longer than 64 bytes"),
        ("é" * 33 + "@example.com", "longer than 64 bytes"),
        ("jane@" + "a" * 64 + ".com", "longer than 63 bytes"),
        ("jane@" + ".".join(["abcdefghi"] * 26) + ".com", "longer than 253 bytes"),
        ("a" * 64 + "@" + ".".join(["b" * 60] * 4) + ".com", "longer than 254 bytes"),
        (".jane@example.com", "dot"),
        ("jane.@example.com", "dot"),
        ("ja..ne@example.com", "dot"),
        ('"jane doe"@example.com', "whitespace"),
        ('"jane"@example.com', "quoted"),
        ("jane(work)@example.com", "'('"),
        ("jane,doe@example.com", "','"),
        ("Jane <jane@example.com>", "whitespace"),
        ("<jane@example.com>", "'<'"),
        ("jane@example..com", "empty label"),
        ("jane@.example.com", "empty label"),
        ("jane@example.com.", "empty label"),
        ("jane@-example.com", "hyphen"),
        ("jane@example-.com", "hyphen"),
        ("jane@exa_mple.com", "'_'"),
        ("jane@example.c", "top-level domain"),
        ("jane@192.168.0.1", "top-level domain"),
        ("jane@[192.168.0.1]", "address literals"),
        ("jane@exa☃mple.com", "'☃'"),
        ("jane@\u0301example.com", "combining mark"),
        ("j\ud800ne@example.com", "'\\ud800'"),
        ("ja\u200bne@example.com", "'\\u200b'"),
        ("ja\x00ne@example.com", "'\\x00'"),
        ("mailto:jane@example.com", "':'"),
        # IDNA 2008: invalid A-labels, labels it disallows, joiners out of context.
        ("jane@xn--zz.com", "Invalid A-label"),
        ("jane@xn--a-ecp.com", "not valid under IDNA 2008"),
        ("jane@ab--cd.com", "hyphens in 3rd and 4th position"),
        ("jane@a\u200db.com", "Joiner U+200D not allowed"),
        ("jane@ab⒈com", "not valid under IDNA 2008"),
        ("jane@example\u2024com", "not valid under IDNA 2008"),  # one dot leader: no dot
        ("jane@\u2100.com", "not valid under IDNA 2008"),  # maps to "a/c" under UTS 46
    ],
)
def test_malformed_emails_are_rejected_naming_lead_field_and_reason(
    given: str, reason: str
) -> None:
    with pytest.raises(InvalidLead) as caught:
        lead(email=given)
    assert caught.value.lead == "lead-1"
    assert caught.value.field == "email"
    assert reason in caught.value.reason
    assert str(caught.value).startswith("lead 'lead-1': email: ")


def test_blank_optional_text_means_absent() -> None:
    blank = lead(email="  ", linkedin_url="", country=" ", subdivision="", timezone="")
    assert (blank.email, blank.linkedin_url, blank.country, blank.subdivision, blank.timezone) == (
        None,
        None,
        None,
        None,
        None,
    )


def test_full_width_and_upper_case_domains_are_the_same_stored_address() -> None:
    forms = ["a@example.com", "a@EXAMPLE.ＣＯＭ", "a@ｅｘａｍｐｌｅ．ｃｏｍ", "a@Example.Com"]
    assert {lead(email=form).email for form in forms} == {"a@example.com"}
    # The service's suppression keys are the stored address lower-cased: one key per person.
    assert {str(lead(email=form).email).lower() for form in forms} == {"a@example.com"}


def test_unicode_and_a_label_domains_are_the_same_stored_address() -> None:
    forms = ["Jane@bücher.de", "Jane@BÜCHER.DE", "Jane@xn--bcher-kva.de", "Jane@XN--BCHER-KVA.de"]
    assert {lead(email=form).email for form in forms} == {"Jane@xn--bcher-kva.de"}
    assert len({derive_lead_id(email=form) for form in forms}) == 1


def test_normalise_email_is_the_rule_leads_use_and_names_the_field() -> None:
    assert normalise_email(" Ada@Analytical.EXAMPLE ") == "Ada@analytical.example"
    with pytest.raises(InvalidLead) as caught:
        normalise_email("a@xn--zz.com")
    assert (caught.value.field, caught.value.lead) == ("email", "")
    assert "Invalid A-label" in caught.value.reason


# --- LinkedIn ----------------------------------------------------------------------------------

CANONICAL = "https://www.linkedin.com/in/jane-doe"


@pytest.mark.parametrize(
    ("given", "canonical"),
    [
        ("https://www.linkedin.com/in/jane-doe", CANONICAL),
        ("http://www.linkedin.com/in/jane-doe", CANONICAL),
        ("https://linkedin.com/in/jane-doe", CANONICAL),
        ("https://uk.linkedin.com/in/jane-doe", CANONICAL),
        ("https://de.linkedin.com/in/jane-doe/", CANONICAL),
        ("https://m.linkedin.com/in/jane-doe", CANONICAL),
        ("HTTPS://WWW.LINKEDIN.COM/in/Jane-Doe", CANONICAL),
        ("https://www.linkedin.com/IN/jane-doe", CANONICAL),
        ("https://www.linkedin.com/in/jane-doe/", CANONICAL),
        ("https://www.linkedin.com/in/jane-doe?trk=public_profile", CANONICAL),
        ("https://www.linkedin.com/in/jane-doe/?originalSubdomain=uk#about", CANONICAL),
        ("https://www.linkedin.com/in/jane-doe#experience", CANONICAL),
        ("https://www.linkedin.com/in/jane-doe/details/experience/", CANONICAL),
        ("www.linkedin.com/in/jane-doe", CANONICAL),
        ("linkedin.com/in/jane-doe", CANONICAL),
        ("fr.linkedin.com/in/jane-doe/", CANONICAL),
        ("  https://www.linkedin.com/in/jane-doe  ", CANONICAL),
        ("https://www.linkedin.com:443/in/jane-doe", None),
        ("https://www.linkedin.com/in/jane%2Ddoe", CANONICAL),
        ("https://www.linkedin.com/in/jane_doe_42", "https://www.linkedin.com/in/jane_doe_42"),
        (
            "https://www.linkedin.com/in/jos%C3%A9-garc%C3%ADa-1a2b3c",
            "https://www.linkedin.com/in/jos%C3%A9-garc%C3%ADa-1a2b3c",
        ),
        (
            "https://www.linkedin.com/in/jos%c3%a9-garc%c3%ada-1a2b3c",
            "https://www.linkedin.com/in/jos%C3%A9-garc%C3%ADa-1a2b3c",
        ),
        (
            "https://www.linkedin.com/in/José-García-1a2b3c",
            "https://www.linkedin.com/in/jos%C3%A9-garc%C3%ADa-1a2b3c",
        ),
        (
            "https://www.linkedin.com/in/jose\u0301-garci\u0301a-1a2b3c",
            "https://www.linkedin.com/in/jos%C3%A9-garc%C3%ADa-1a2b3c",
        ),
        (
            "https://www.linkedin.com/in/王伟-8a1b2c3d",
            "https://www.linkedin.com/in/%E7%8E%8B%E4%BC%9F-8a1b2c3d",
        ),
    ],
)
def test_linkedin_profile_urls_take_one_canonical_form(given: str, canonical: str | None) -> None:
    if canonical is None:  # an explicit port is not a profile link anyone copies
        with pytest.raises(InvalidLead):
            lead(linkedin_url=given)
        return
    assert lead(linkedin_url=given).linkedin_url == canonical


@pytest.mark.parametrize(
    ("given", "reason"),
    [
        ("https://www.linkedin.com/company/acme/", "a company page"),
        ("https://www.linkedin.com/school/mit/", "a school page"),
        ("https://www.linkedin.com/showcase/acme-labs/", "a showcase page"),
        ("https://www.linkedin.com/posts/jane-doe_activity-123", "a post"),
        ("https://www.linkedin.com/feed/update/urn:li:activity:123/", "a feed or post"),
        ("https://www.linkedin.com/feed/", "a feed or post"),
        ("https://www.linkedin.com/pulse/some-article-jane-doe", "an article"),
        ("https://www.linkedin.com/groups/12345/", "a group"),
        ("https://www.linkedin.com/jobs/view/123/", "a job listing"),
        ("https://www.linkedin.com/pub/jane-doe/1/2/3", "legacy public profile"),
        ("https://www.linkedin.com/sales/people/ABC,NAME_SEARCH", "Sales Navigator"),
        ("https://www.linkedin.com/", "not a profile"),
        ("https://www.linkedin.com/mynetwork/", "not a profile"),
        ("https://www.linkedin.com/in/", "no profile name"),
        ("https://www.linkedin.com/in//", "no profile name"),
        ("https://www.linkedin.com/in/ab", "3 to 100 characters"),
        ("https://www.linkedin.com/in/" + "a" * 101, "3 to 100 characters"),
        ("https://www.linkedin.com/in/jane.doe", "'.'"),
        ("https://www.linkedin.com/in/jane%20doe", "' '"),
        ("https://www.linkedin.com/in/jane doe", "whitespace"),
        ("https://www.linkedin.com/in/%ZZjane", "'%'"),
        ("https://www.linkedin.com/in/jane%C3", "percent-encoded UTF-8"),
        ("https://www.linkedin.com/in/jane%252Ddoe", "'%'"),
        ("ftp://www.linkedin.com/in/jane-doe", "http(s)"),
        ("linkedin/in/jane-doe", "http(s)"),
        ("jane-doe", "http(s)"),
        ("https://lnkd.in/abc123", "not a linkedin.com address"),
        ("https://www.linkedin.com.evil.example/in/jane-doe", "not a linkedin.com address"),
        ("https://evil-linkedin.com/in/jane-doe", "not a linkedin.com address"),
        ("https://a.b.linkedin.com/in/jane-doe", "not a linkedin.com address"),
        ("https://jane@www.linkedin.com/in/jane-doe", "not a linkedin.com address"),
        ("https://www.linkedin.com:99999/in/jane-doe", "not a linkedin.com address"),
    ],
)
def test_urls_that_are_not_profiles_are_rejected(given: str, reason: str) -> None:
    with pytest.raises(InvalidLead) as caught:
        lead(linkedin_url=given)
    assert caught.value.field == "linkedin_url"
    assert reason in caught.value.reason


# --- country, subdivision, timezone, other fields ----------------------------------------------


def test_country_and_subdivision_take_their_canonical_codes() -> None:
    located = lead(country=" us ", subdivision="ca")
    assert (located.country, located.subdivision) == ("US", "CA")


@pytest.mark.parametrize(
    ("given", "stored"), [("uk", "GB"), ("USA", "US"), ("fra", "FR"), ("DEU", "DE"), ("XK", "XK")]
)
def test_countries_are_stored_as_alpha_2_codes(given: str, stored: str) -> None:
    assert lead(country=given).country == stored


def test_a_campaign_default_country_may_be_alpha_3() -> None:
    located = locate(lead(), default_country="FRA", default_timezone=None)
    assert (located.country, located.timezone) == ("FR", "Europe/Paris")


def test_a_country_without_any_zone_needs_a_timezone() -> None:
    with pytest.raises(MissingLocation, match="XK has no timezone of its own"):
        locate(lead(country="XK"), default_country=None, default_timezone=None)


@pytest.mark.parametrize(
    ("overrides", "field", "reason"),
    [
        ({"id": LeadId("")}, "id", "is empty"),
        ({"id": LeadId("   ")}, "id", "is empty"),
        ({"id": 7}, "id", "must be text"),
        ({"first_name": None}, "first_name", "must be text"),
        ({"company": 3}, "company", "must be text"),
        ({"email": 42}, "email", "must be text or None"),
        ({"country": "ZZ"}, "country", "'ZZ' is not an ISO 3166-1 alpha-2 code"),
        ({"country": "France"}, "country", "'France' is not an ISO 3166-1 alpha-2 code"),
        ({"country": "US", "subdivision": "ZZ"}, "subdivision", "'ZZ' is not a subdivision of US"),
        ({"timezone": "Mars/Olympus_Mons"}, "timezone", "is not an IANA zone name"),
        ({"timezone": "../etc/passwd"}, "timezone", "is not an IANA zone name"),
        ({"linkedin_connected": "yes"}, "linkedin_connected", "True or False"),
        ({"fields": {"industry": 3}}, "fields", "must be text"),
    ],
)
def test_each_invalid_field_is_a_typed_error_naming_lead_and_field(
    overrides: dict[str, object], field: str, reason: str
) -> None:
    with pytest.raises(InvalidLead) as caught:
        lead(**overrides)
    assert caught.value.field == field
    assert reason in caught.value.reason
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize(
    ("field", "given", "kept"),
    [
        ("first_name", "Ada\t", "Ada"),
        ("first_name", "Ada\tMaria", "Ada Maria"),
        ("last_name", "  Lovelace\r\n", "Lovelace"),
        ("first_name", "محمد", "محمد"),
    ],
)
def test_names_are_tidied_for_the_to_header(field: str, given: str, kept: str) -> None:
    assert getattr(lead(**{field: given}), field) == kept


@pytest.mark.parametrize(
    ("field", "given", "reason"),
    [
        ("first_name", "Ada\nBcc: victim@evil.example", "line break (U+000A) at position 4"),
        ("last_name", "Love\rlace", "line break (U+000D) at position 5"),
        ("first_name", "Ada\x1b[2J", "control character (U+001B) at position 4"),
        ("last_name", "Lovelace\x00", "control character (U+0000)"),
        ("first_name", "\u202eadA", "bidirectional control (U+202E) at position 1"),
        ("last_name", "a\u2028b", "line break (U+2028)"),
    ],
)
def test_names_with_line_breaks_or_control_characters_are_refused_naming_the_field(
    field: str, given: str, reason: str
) -> None:
    with pytest.raises(InvalidLead) as caught:
        lead(**{field: given})
    assert (caught.value.lead, caught.value.field) == ("lead-1", field)
    assert reason in caught.value.reason


@pytest.mark.parametrize("given", ["ann\x1b[31m", "ann\n", "ann\tbob", "\u202eann", "a\x85b"])
def test_ids_with_control_characters_are_refused_and_shown_escaped(given: str) -> None:
    with pytest.raises(InvalidLead) as caught:
        lead(id=given)
    assert caught.value.field == "id"
    assert "an id cannot hold control characters" in caught.value.reason
    assert str(caught.value).startswith(f"lead {given!r}: id: ")
    assert str(caught.value).isprintable()


def test_a_plain_string_id_is_typed_as_a_lead_id() -> None:
    made = Lead(id="ann")
    assert made.id == LeadId("ann")
    assert attrs.evolve(made, id="bob").id == "bob"


def test_the_subdivision_error_lists_the_known_codes() -> None:
    with pytest.raises(InvalidLead, match=r"known: .*NY"):
        lead(country="US", subdivision="Narnia")


def test_a_subdivision_without_a_country_waits_for_locate() -> None:
    assert lead(subdivision="by").subdivision == "by"


def test_a_lead_without_email_or_linkedin_is_still_a_lead() -> None:
    assert lead().email is None
    assert lead().linkedin_url is None


def test_an_explicit_timezone_is_kept_even_if_far_from_the_country() -> None:
    assert lead(country="FR", timezone="Asia/Tokyo").timezone == "Asia/Tokyo"


def test_evolve_validates_again() -> None:
    with pytest.raises(InvalidLead, match="email"):
        attrs.evolve(lead(), email="not-an-email")
    assert attrs.evolve(lead(), email="A@EXAMPLE.COM").email == "A@example.com"


def test_leads_compare_and_hash_by_value_including_fields() -> None:
    one = lead(fields={"industry": "SaaS"}, email="a@Example.com")
    two = lead(fields={"industry": "SaaS"}, email="a@example.com")
    assert one == two
    assert hash(one) == hash(two)
    assert one != lead(fields={"industry": "Retail"}, email="a@example.com")


def test_fields_cannot_be_changed_through_the_lead() -> None:
    source = {"industry": "SaaS"}
    made = lead(fields=source)
    source["industry"] = "Retail"
    assert made.fields["industry"] == "SaaS"
    with pytest.raises(TypeError):
        made.fields["industry"] = "Retail"  # type: ignore[index]


# --- from_mapping ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "field", "value", "expected"),
    [
        ("id", "id", "c-1", "c-1"),
        ("Lead ID", "id", "c-1", "c-1"),
        ("contact_id", "id", "c-1", "c-1"),
        ("First Name", "first_name", "Jane", "Jane"),
        ("first_name", "first_name", "Jane", "Jane"),
        ("FIRSTNAME", "first_name", "Jane", "Jane"),
        ("  first-name ", "first_name", "Jane", "Jane"),
        ("Given name", "first_name", "Jane", "Jane"),
        ("Last Name", "last_name", "Doe", "Doe"),
        ("surname", "last_name", "Doe", "Doe"),
        ("Company Name", "company", "Acme", "Acme"),
        ("Organisation", "company", "Acme", "Acme"),
        ("Job Title", "title", "CTO", "CTO"),
        ("position", "title", "CTO", "CTO"),
        ("Email", "email", "Jane@Acme.COM", "Jane@acme.com"),
        ("email address", "email", "jane@acme.com", "jane@acme.com"),
        ("E-mail", "email", "jane@acme.com", "jane@acme.com"),
        ("Work Email", "email", "jane@acme.com", "jane@acme.com"),
        ("LinkedIn", "linkedin_url", "linkedin.com/in/jane", "https://www.linkedin.com/in/jane"),
        (
            "linkedin_url",
            "linkedin_url",
            "linkedin.com/in/jane",
            "https://www.linkedin.com/in/jane",
        ),
        (
            "LinkedIn Profile URL",
            "linkedin_url",
            "linkedin.com/in/jane",
            "https://www.linkedin.com/in/jane",
        ),
        ("Linked In", "linkedin_url", "linkedin.com/in/jane", "https://www.linkedin.com/in/jane"),
        ("Country", "country", "fr", "FR"),
        ("country_code", "country", "fr", "FR"),
        ("Country Code", "country", "fr", "FR"),
        ("TZ", "timezone", "Europe/Paris", "Europe/Paris"),
        ("Time Zone", "timezone", "Europe/Paris", "Europe/Paris"),
        ("timezone", "timezone", "Europe/Paris", "Europe/Paris"),
        ("\ufeffEmail", "email", "jane@acme.com", "jane@acme.com"),
    ],
)
def test_from_mapping_understands_common_headers(
    header: str, field: str, value: str, expected: str
) -> None:
    row = {header: value}
    if field not in ("email", "linkedin_url", "id"):
        row["id"] = "c-1"
    made = Lead.from_mapping(row)
    assert getattr(made, field) == expected
    assert dict(made.fields) == {}


@pytest.mark.parametrize("header", ["State", "Region", "province", "subdivision", "State Code"])
def test_from_mapping_reads_subdivision_aliases(header: str) -> None:
    made = Lead.from_mapping({"id": "c-1", "Country": "US", header: "ny"})
    assert made.subdivision == "NY"


@pytest.mark.parametrize(
    ("cell", "connected"),
    [
        ("yes", True),
        ("Yes", True),
        (" TRUE ", True),
        ("1", True),
        ("y", True),
        ("on", True),
        (True, True),
        (1, True),
        ("no", False),
        ("false", False),
        ("0", False),
        ("", False),
        ("  ", False),
        (None, False),
        (False, False),
        (0, False),
    ],
)
def test_from_mapping_reads_connection_flags(cell: object, connected: bool) -> None:
    for header in ("linkedin_connected", "Connected", "1st degree"):
        made = Lead.from_mapping({"id": "c-1", header: cell})
        assert made.linkedin_connected is connected


def test_from_mapping_rejects_an_unreadable_flag() -> None:
    with pytest.raises(InvalidLead) as caught:
        Lead.from_mapping({"id": "c-1", "connected": "maybe"})
    assert caught.value.field == "linkedin_connected"
    assert "'maybe'" in caught.value.reason


def test_from_mapping_treats_blank_cells_as_absent_and_strips_text() -> None:
    made = Lead.from_mapping(
        {
            "id": " c-1 ",
            "First Name": "  Jane ",
            "Email": "",
            "LinkedIn": "   ",
            "Country": "",
            "TZ": None,
            "Industry": "  ",
        }
    )
    assert made == Lead(id=LeadId("c-1"), first_name="Jane")


def test_from_mapping_keeps_unknown_columns_as_fields() -> None:
    made = Lead.from_mapping(
        {"id": "c-1", "Industry": " SaaS ", "Employees": 250, "Funded": True, "Notes": ""}
    )
    assert dict(made.fields) == {"Industry": "SaaS", "Employees": "250", "Funded": "true"}


def test_from_mapping_merges_a_nested_fields_object() -> None:
    made = Lead.from_mapping(
        {"id": "c-1", "fields": {"pain": "churn", "seats": 40}, "city": "Lyon"}
    )
    assert dict(made.fields) == {"pain": "churn", "seats": "40", "city": "Lyon"}


def test_from_mapping_takes_json_numbers_as_ids() -> None:
    assert Lead.from_mapping({"id": 1042}).id == "1042"


def test_from_mapping_reads_data_frame_blanks_and_whole_floats() -> None:
    made = Lead.from_mapping({"id": 1042.0, "Email": float("nan"), "Score": 0.5, "Seats": 12.0})
    assert made.id == "1042"
    assert made.email is None
    assert dict(made.fields) == {"Score": "0.5", "Seats": "12"}


def test_from_mapping_reports_a_bad_entry_of_a_nested_fields_object() -> None:
    with pytest.raises(InvalidLead) as caught:
        Lead.from_mapping({"id": "c-1", "fields": {"tags": ["a", "b"]}})
    assert caught.value.field == "tags"


def test_a_fields_column_that_is_text_is_an_ordinary_field() -> None:
    assert dict(Lead.from_mapping({"id": "c-1", "Fields": "x"}).fields) == {"Fields": "x"}


def test_from_mapping_rejects_two_connection_columns_that_disagree() -> None:
    with pytest.raises(InvalidLead) as caught:
        Lead.from_mapping({"id": "c-1", "connected": "yes", "1st degree": "no"})
    assert caught.value.field == "linkedin_connected"


def test_from_mapping_rejects_lists_where_text_is_expected() -> None:
    with pytest.raises(InvalidLead) as caught:
        Lead.from_mapping({"id": "c-1", "email": ["a@example.com"]})
    assert caught.value.field == "email"


def test_from_mapping_rejects_two_columns_that_disagree() -> None:
    with pytest.raises(InvalidLead) as caught:
        Lead.from_mapping({"Email": "a@example.com", "email address": "b@example.com"})
    assert caught.value.field == "email"
    assert "'Email' and 'email address'" in caught.value.reason


def test_from_mapping_accepts_two_columns_that_agree() -> None:
    made = Lead.from_mapping({"id": "c-1", "Email": "a@example.com", "E-mail": " a@example.com"})
    assert made.email == "a@example.com"


def test_from_mapping_without_id_derives_a_stable_one_from_the_email() -> None:
    first = Lead.from_mapping({"Email": "Jane.Doe@Example.com"})
    again = Lead.from_mapping({"email": "jane.doe@EXAMPLE.COM", "LinkedIn": "linkedin.com/in/jd1"})
    assert first.id == again.id == derive_lead_id(email="jane.doe@example.com")
    assert first.id.startswith("lead-")
    assert len(first.id) == len("lead-") + 20


def test_a_derived_id_is_the_same_for_unicode_and_ascii_domains() -> None:
    assert derive_lead_id(email="jane@bücher.de") == derive_lead_id(email="JANE@xn--bcher-kva.de")


def test_from_mapping_without_id_or_email_derives_the_id_from_linkedin() -> None:
    made = Lead.from_mapping({"LinkedIn": "https://uk.linkedin.com/in/Jane-Doe/"})
    assert made.id == derive_lead_id(linkedin_url=CANONICAL)
    assert made.id != derive_lead_id(email="jane@example.com")


def test_from_mapping_without_any_way_to_identify_the_lead_is_an_id_error() -> None:
    with pytest.raises(InvalidLead) as caught:
        Lead.from_mapping({"First Name": "Jane", "Company": "Acme"}, row=7)
    assert caught.value.field == "id"
    assert caught.value.lead == "row 7"
    assert "no id" in caught.value.reason


def test_derive_lead_id_needs_an_email_or_a_profile() -> None:
    with pytest.raises(InvalidLead) as caught:
        derive_lead_id()
    assert caught.value.field == "id"
    with pytest.raises(InvalidLead) as caught:
        derive_lead_id(email="nope")
    assert caught.value.field == "email"
    with pytest.raises(InvalidLead) as caught:
        derive_lead_id(linkedin_url="https://www.linkedin.com/company/acme")
    assert caught.value.field == "linkedin_url"


def test_from_mapping_names_the_lead_in_its_errors() -> None:
    with pytest.raises(InvalidLead, match=r"^lead 'c-9': country: 'XX'"):
        Lead.from_mapping({"id": "c-9", "country": "XX"})


# --- locate ------------------------------------------------------------------------------------


def test_a_single_zone_country_gives_the_timezone() -> None:
    located = locate(lead(country="FR"), default_country=None, default_timezone=None)
    assert (located.country, located.timezone) == ("FR", "Europe/Paris")


@pytest.mark.parametrize(
    ("country", "zone"),
    [("GB", "Europe/London"), ("JP", "Asia/Tokyo"), ("IN", "Asia/Kolkata"), ("IT", "Europe/Rome")],
)
def test_other_single_zone_countries_give_their_zone(country: str, zone: str) -> None:
    located = locate(lead(country=country), default_country=None, default_timezone=None)
    assert located.timezone == zone


def test_a_multi_zone_country_without_timezone_is_a_missing_location() -> None:
    with pytest.raises(MissingLocation) as caught:
        locate(lead(country="US"), default_country=None, default_timezone=None)
    assert caught.value.field == "timezone"
    assert caught.value.lead == "lead-1"
    assert "no timezone of US is safe to assume" in caught.value.reason
    assert "America/New_York to Pacific/Honolulu" in caught.value.reason
    assert isinstance(caught.value, InvalidLead)


def test_the_campaign_defaults_fill_a_lead_without_location() -> None:
    located = locate(lead(), default_country="us", default_timezone="America/Chicago")
    assert (located.country, located.timezone) == ("US", "America/Chicago")


def test_the_campaign_timezone_applies_to_leads_of_the_campaign_country() -> None:
    located = locate(lead(country="US"), default_country="US", default_timezone="America/Denver")
    assert located.timezone == "America/Denver"


def test_the_campaign_timezone_applies_to_a_country_that_contains_it() -> None:
    located = locate(lead(country="CA"), default_country="US", default_timezone="America/Toronto")
    assert located.timezone == "America/Toronto"


def test_the_campaign_timezone_does_not_override_another_countrys_only_zone() -> None:
    located = locate(lead(country="FR"), default_country="US", default_timezone="America/New_York")
    assert located.timezone == "Europe/Paris"


def test_the_campaign_timezone_is_not_guessed_for_another_multi_zone_country() -> None:
    with pytest.raises(MissingLocation) as caught:
        locate(lead(country="AU"), default_country="US", default_timezone="America/New_York")
    assert caught.value.field == "timezone"


def test_the_lead_s_own_values_win_over_the_campaign_s() -> None:
    own = lead(country="DE", timezone="Europe/Berlin")
    located = locate(own, default_country="US", default_timezone="America/New_York")
    assert located == own


def test_a_lead_timezone_without_country_takes_the_campaign_country() -> None:
    located = locate(lead(timezone="Asia/Tokyo"), default_country="JP", default_timezone=None)
    assert (located.country, located.timezone) == ("JP", "Asia/Tokyo")


def test_no_country_anywhere_is_a_missing_location() -> None:
    with pytest.raises(MissingLocation) as caught:
        locate(lead(timezone="Europe/Paris"), default_country=None, default_timezone="Europe/Paris")
    assert caught.value.field == "country"
    assert "no default country" in caught.value.reason


def test_a_campaign_country_without_timezone_derives_it_when_it_can() -> None:
    located = locate(lead(), default_country="NL", default_timezone=None)
    assert located.timezone == "Europe/Amsterdam"


def test_the_default_subdivision_applies_only_in_the_default_country() -> None:
    home = locate(
        lead(country="US"),
        default_country="US",
        default_timezone="America/Los_Angeles",
        default_subdivision="ca",
    )
    abroad = locate(
        lead(country="FR"),
        default_country="US",
        default_timezone="America/Los_Angeles",
        default_subdivision="CA",
    )
    assert home.subdivision == "CA"
    assert abroad.subdivision is None


def test_a_lead_s_subdivision_is_checked_against_the_campaign_country() -> None:
    located = locate(
        lead(subdivision="ny"), default_country="US", default_timezone="America/New_York"
    )
    assert located.subdivision == "NY"
    with pytest.raises(InvalidLead) as caught:
        locate(lead(subdivision="BY"), default_country="US", default_timezone="America/New_York")
    assert caught.value.field == "subdivision"


def test_invalid_campaign_defaults_are_typed_errors() -> None:
    with pytest.raises(UnknownCountry, match="campaign default"):
        locate(lead(), default_country="XX", default_timezone=None)
    with pytest.raises(UnknownTimezone, match="campaign default"):
        locate(lead(country="FR"), default_country=None, default_timezone="Europe/Atlantis")


def test_locate_is_idempotent() -> None:
    once = locate(lead(country="FR"), default_country="US", default_timezone="America/New_York")
    assert locate(once, default_country="US", default_timezone="America/New_York") is once


def test_the_leads_module_exports_are_pinned() -> None:
    from starlight_sequences import leads

    assert leads.__all__ == [
        "Lead",
        "LeadImport",
        "LeadProblem",
        "derive_lead_id",
        "import_leads",
        "import_leads_csv",
        "locate",
        "normalise_email",
    ]
    for name in leads.__all__:
        assert hasattr(leads, name)
