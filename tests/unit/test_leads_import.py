"""Batch import of leads: from mappings and from CSV text."""

from __future__ import annotations

import csv
import io

from starlight_sequences.ids import LeadId
from starlight_sequences.leads import (
    Lead,
    LeadImport,
    LeadProblem,
    derive_lead_id,
    import_leads,
    import_leads_csv,
)


def problems_by_row(result: LeadImport) -> dict[int | None, list[tuple[str, str]]]:
    rows: dict[int | None, list[tuple[str, str]]] = {}
    for problem in result.problems:
        rows.setdefault(problem.row, []).append((problem.field, problem.reason))
    return rows


def ids(result: LeadImport) -> list[str]:
    return [lead.id for lead in result.leads]


# --- from mappings -----------------------------------------------------------------------------


def test_one_bad_row_does_not_sink_the_others() -> None:
    result = import_leads(
        [
            {"id": "a", "email": "a@example.com", "country": "FR"},
            {"id": "b", "email": "not an email", "country": "FR"},
            {"id": "c", "linkedin": "linkedin.com/in/c-person"},
            {"id": "d", "email": "d@example.com", "country": "XX", "tz": "Mars/Base"},
            {"id": "e"},
        ]
    )
    assert ids(result) == ["a", "c", "e"]
    assert problems_by_row(result) == {
        2: [("email", "'not an email' contains whitespace")],
        4: [
            (
                "country",
                "'XX' is not an ISO 3166-1 alpha-2 code that the holidays package supports",
            ),
            ("timezone", "'Mars/Base' is not an IANA zone name"),
        ],
    }


def test_a_row_reports_every_bad_field_in_field_order() -> None:
    result = import_leads(
        [
            {
                "connected": "perhaps",
                "tz": "Nowhere/City",
                "country": "QQ",
                "linkedin": "https://www.linkedin.com/company/acme",
                "email": "x@@y.com",
                "id": "z",
            }
        ]
    )
    fields = [problem.field for problem in result.problems]
    assert fields == ["email", "linkedin_url", "country", "timezone", "linkedin_connected"]
    assert {problem.lead for problem in result.problems} == {"z"}
    assert result.leads == ()


def test_problems_read_as_sentences_naming_row_lead_and_field() -> None:
    result = import_leads([{"id": "ok", "email": "ok@example.com"}, {"id": "x", "email": "x@y"}])
    (problem,) = result.problems
    assert problem == LeadProblem(
        row=2,
        lead=LeadId("x"),
        field="email",
        reason="'x@y': the domain 'y' has no dot (expected e.g. example.com)",
    )
    assert problem.message == (
        "row 2 (lead 'x'): email: 'x@y': the domain 'y' has no dot (expected e.g. example.com)"
    )


def test_problem_messages_without_row_or_lead() -> None:
    assert LeadProblem(row=3, lead=None, field="id", reason="r").message == "row 3: id: r"
    assert LeadProblem(row=None, lead=LeadId("q"), field="id", reason="r").message == (
        "lead 'q': id: r"
    )
    assert LeadProblem(row=None, lead=None, field="id", reason="r").message == "id: r"


def test_rows_are_numbered_from_first_row() -> None:
    result = import_leads([{"id": "a"}, {"email": "bad"}], first_row=10)
    assert [problem.row for problem in result.problems] == [11]


def test_a_row_without_any_identity_is_an_id_problem() -> None:
    result = import_leads([{"First Name": "Jane", "Company": "Acme"}])
    assert [(p.row, p.lead, p.field) for p in result.problems] == [(1, None, "id")]


def test_a_row_whose_only_identity_is_invalid_reports_that_field_only() -> None:
    result = import_leads([{"email": "jane@"}])
    assert [(p.lead, p.field) for p in result.problems] == [(None, "email")]


def test_imported_leads_equal_what_from_mapping_builds() -> None:
    row = {"Email": "Jane@Acme.com", "First Name": "Jane", "Seniority": "VP", "Country": "de"}
    assert import_leads([row]).leads == (Lead.from_mapping(row),)


# --- duplicates --------------------------------------------------------------------------------


def test_the_same_email_in_another_case_is_a_duplicate_of_the_earlier_row() -> None:
    result = import_leads(
        [
            {"id": "a", "email": "Jane@Example.com"},
            {"id": "b", "email": "other@example.com"},
            {"id": "c", "email": "jane@EXAMPLE.com"},
        ]
    )
    assert ids(result) == ["a", "b"]
    assert [(p.row, p.lead, p.field, p.reason) for p in result.problems] == [
        (3, "c", "email", "duplicate of row 1 (lead 'a'): same email")
    ]


def test_the_same_email_with_a_full_width_or_unicode_domain_is_a_duplicate() -> None:
    result = import_leads(
        [
            {"id": "a", "email": "a@example.com"},
            {"id": "b", "email": "a@EXAMPLE.ＣＯＭ"},
            {"id": "c", "email": "jane@bücher.de"},
            {"id": "d", "email": "Jane@xn--bcher-kva.de"},
        ]
    )
    assert ids(result) == ["a", "c"]
    assert [(p.row, p.lead, p.field, p.reason) for p in result.problems] == [
        (2, "b", "email", "duplicate of row 1 (lead 'a'): same email"),
        (4, "d", "email", "duplicate of row 3 (lead 'c'): same email"),
    ]


def test_a_row_with_an_invalid_a_label_is_reported_on_its_email() -> None:
    result = import_leads([{"id": "a", "email": "a@xn--zz.com"}, {"id": "b", "email": "b@x.com"}])
    assert ids(result) == ["b"]
    assert [(p.row, p.field) for p in result.problems] == [(1, "email")]
    assert "Invalid A-label" in result.problems[0].reason


def test_rows_with_control_characters_in_id_or_names_are_reported_and_others_kept() -> None:
    result = import_leads(
        [
            {"id": "evil\x1b]0;pwned\x07", "email": "e@example.com"},
            {"id": "ann", "first_name": "Ann\nBcc: x@evil.example", "email": "ann@example.com"},
            {"id": "bob", "first_name": "Bob\t", "last_name": "\tDoe", "email": "bob@example.com"},
        ]
    )
    assert [(lead.id, lead.first_name, lead.last_name) for lead in result.leads] == [
        ("bob", "Bob", "Doe")
    ]
    assert [(p.row, p.field) for p in result.problems] == [(1, "id"), (2, "first_name")]
    assert all(p.message.isprintable() for p in result.problems)


def test_the_same_profile_in_another_url_form_is_a_duplicate() -> None:
    result = import_leads(
        [
            {"id": "a", "linkedin": "https://www.linkedin.com/in/jane-doe"},
            {"id": "b", "linkedin": "http://uk.linkedin.com/in/Jane-Doe/?trk=x"},
        ]
    )
    assert ids(result) == ["a"]
    assert [(p.field, p.reason) for p in result.problems] == [
        ("linkedin_url", "duplicate of row 1 (lead 'a'): same LinkedIn profile")
    ]


def test_the_same_id_is_a_duplicate() -> None:
    result = import_leads([{"id": "a", "email": "a@example.com"}, {"id": "a", "email": "b@x.io"}])
    assert ids(result) == ["a"]
    assert [(p.field, p.reason) for p in result.problems] == [
        ("id", "duplicate of row 1 (lead 'a'): same id")
    ]


def test_every_repeated_key_of_a_duplicate_is_reported() -> None:
    result = import_leads(
        [
            {"id": "a", "email": "a@example.com", "linkedin": "linkedin.com/in/aaa"},
            {"id": "a", "email": "A@example.com", "linkedin": "linkedin.com/in/AAA"},
        ]
    )
    assert [p.field for p in result.problems] == ["id", "email", "linkedin_url"]


def test_a_duplicate_without_id_is_reported_by_email_not_by_its_derived_id() -> None:
    result = import_leads([{"email": "jane@example.com"}, {"Email": "JANE@example.com"}])
    assert ids(result) == [derive_lead_id(email="jane@example.com")]
    assert [p.field for p in result.problems] == ["email"]


def test_duplicates_are_compared_with_imported_rows_only() -> None:
    result = import_leads(
        [
            {"id": "a", "email": "a@example.com", "country": "XX"},
            {"id": "a", "email": "a@example.com"},
        ]
    )
    assert ids(result) == ["a"]
    assert [p.row for p in result.problems] == [1]


# --- CSV ---------------------------------------------------------------------------------------

CSV_TEXT = (
    "First Name,Last Name,Email,LinkedIn,Country,State,TZ,Connected,Industry\n"
    "Ada,Lovelace,ada@example.com,,GB,,,no,Computing\n"
    "Grace,Hopper,grace@navy,,US,NY,America/New_York,,Navy\n"
    "Alan,Turing,,https://uk.linkedin.com/in/alan-turing/,GB,,,yes,\n"
    "Ada,L.,ADA@EXAMPLE.COM,,GB,,,,Duplicate\n"
)


def test_csv_rows_are_numbered_as_a_spreadsheet_shows_them() -> None:
    result = import_leads_csv(io.StringIO(CSV_TEXT))
    assert [lead.first_name for lead in result.leads] == ["Ada", "Alan"]
    assert [(p.row, p.field) for p in result.problems] == [(3, "email"), (5, "email")]
    assert "row 2" in result.problems[1].reason
    ada, alan = result.leads
    assert dict(ada.fields) == {"Industry": "Computing"}
    assert alan.linkedin_url == "https://www.linkedin.com/in/alan-turing"
    assert alan.linkedin_connected is True
    assert alan.country == "GB"


def test_csv_accepts_a_list_of_lines_without_line_ends() -> None:
    result = import_leads_csv(["id,email", "a,a@example.com", "b,b@example.com"])
    assert ids(result) == ["a", "b"]


def test_csv_with_a_utf8_byte_order_mark_reads_the_first_column() -> None:
    raw = "\ufeffEmail,Name\r\njane@example.com,Jane\r\n".encode()
    with io.TextIOWrapper(io.BytesIO(raw), encoding="utf-8", newline="") as stream:
        result = import_leads_csv(stream)
    assert [lead.email for lead in result.leads] == ["jane@example.com"]
    assert result.problems == ()


def test_csv_decoded_with_utf8_sig_reads_the_same() -> None:
    raw = "\ufeffEmail,Name\r\njane@example.com,Jane\r\n".encode()
    with io.TextIOWrapper(io.BytesIO(raw), encoding="utf-8-sig", newline="") as stream:
        assert [lead.email for lead in import_leads_csv(stream).leads] == ["jane@example.com"]


def test_csv_with_semicolons_as_excel_writes_them_in_many_locales() -> None:
    text = "Nom;Email;Country\nDupont, Marie;marie@exemple.fr;FR\n"
    result = import_leads_csv(io.StringIO(text))
    (marie,) = result.leads
    assert (marie.email, marie.country) == ("marie@exemple.fr", "FR")
    assert dict(marie.fields) == {"Nom": "Dupont, Marie"}


def test_csv_with_tabs() -> None:
    result = import_leads_csv(io.StringIO("email\tcountry\njane@example.com\tDE\n"))
    assert [lead.country for lead in result.leads] == ["DE"]


def test_the_delimiter_guess_ignores_quoted_header_names() -> None:
    text = 'id;"Email";"Notes, misc, more"\na;a@example.com;x, y\n'
    (made,) = import_leads_csv(io.StringIO(text)).leads
    assert (made.email, dict(made.fields)) == ("a@example.com", {"Notes, misc, more": "x, y"})


def test_columns_without_a_name_are_ignored() -> None:
    (made,) = import_leads_csv(io.StringIO("id,,email\na,junk,a@example.com\n")).leads
    assert (made.email, dict(made.fields)) == ("a@example.com", {})


def test_csv_delimiter_can_be_given() -> None:
    result = import_leads_csv(io.StringIO("email|country\njane@example.com|DE\n"), delimiter="|")
    assert [lead.country for lead in result.leads] == ["DE"]


def test_a_quoted_multi_line_cell_is_one_row() -> None:
    text = 'id,email,Notes\na,a@example.com,"line one\nline two"\nb,bad,\n'
    result = import_leads_csv(io.StringIO(text, newline=""))
    assert dict(result.leads[0].fields) == {"Notes": "line one\nline two"}
    assert [p.row for p in result.problems] == [3]


def test_blank_rows_are_skipped_but_still_counted() -> None:
    text = "id,email\n\na,a@example.com\n,\n  ,  \nb,bad\n"
    result = import_leads_csv(io.StringIO(text))
    assert ids(result) == ["a"]
    assert [p.row for p in result.problems] == [6]


def test_short_rows_read_missing_cells_as_blank() -> None:
    result = import_leads_csv(io.StringIO("id,email,country\na\n"))
    assert result.leads == (Lead(id=LeadId("a")),)


def test_cells_beyond_the_header_reject_the_row() -> None:
    result = import_leads_csv(io.StringIO("id,email\na,a@example.com,extra\nb,b@example.com,\n"))
    assert ids(result) == ["b"]
    (problem,) = result.problems
    assert (problem.row, problem.lead, problem.field) == (2, "a", "row")
    assert "1 non-empty cell(s) beyond the header's 2 columns" in problem.reason


def test_an_empty_csv_is_a_problem_not_a_crash() -> None:
    for text in ("", "\n", "\ufeff\r\n"):
        result = import_leads_csv(io.StringIO(text))
        assert result.leads == ()
        (problem,) = result.problems
        assert (problem.row, problem.field) == (1, "header")
        assert "header row" in problem.reason


def test_a_csv_without_a_usable_header_is_one_clear_problem() -> None:
    result = import_leads_csv(io.StringIO("jane@example.com,Jane\njohn@example.com,John\n"))
    assert result.leads == ()
    (problem,) = result.problems
    assert (problem.row, problem.field) == (1, "header")
    assert "no column for an id, an email or a LinkedIn URL" in problem.reason
    assert "'jane@example.com'" in problem.reason


def test_a_header_only_csv_imports_nothing_quietly() -> None:
    assert import_leads_csv(io.StringIO("id,email\n")) == LeadImport()


def test_a_repeated_column_name_is_reported_and_the_first_is_used() -> None:
    result = import_leads_csv(io.StringIO("id,email,email\na,a@example.com,b@example.com\n"))
    assert [lead.email for lead in result.leads] == ["a@example.com"]
    (problem,) = result.problems
    assert (problem.row, problem.field) == (1, "header")
    assert "columns 2 and 3" in problem.reason


def test_two_aliases_of_one_field_that_disagree_reject_the_row() -> None:
    text = "Email,E-mail Address\na@example.com,a@example.com\nb@example.com,c@example.com\n"
    result = import_leads_csv(io.StringIO(text))
    assert [lead.email for lead in result.leads] == ["a@example.com"]
    assert [(p.row, p.field) for p in result.problems] == [(3, "email")]


def test_an_unreadable_row_is_reported_and_the_rest_imported() -> None:
    text = 'id,email\na,a@example.com\n"b,b@example.com\n'
    result = import_leads_csv(io.StringIO(text), delimiter=",")
    # An unclosed quote swallows the rest of the file into one cell: that row is reported.
    assert ids(result) == ["a"]
    assert [p.row for p in result.problems] == [3]
    assert "never closed" in result.problems[0].reason


def test_a_stray_quote_spoils_only_its_row() -> None:
    text = 'id,email\na,"a@example.com"x\nb,b@example.com\n'
    result = import_leads_csv(io.StringIO(text))
    assert ids(result) == ["b"]
    assert [(p.row, p.field) for p in result.problems] == [(2, "row")]


def test_dict_reader_rows_with_extra_cells_are_reported() -> None:
    reader = csv.DictReader(io.StringIO("id,email\na,a@example.com,oops\nb,b@example.com\n"))
    result = import_leads(reader, first_row=2)
    assert ids(result) == ["b"]
    assert [(p.row, p.field) for p in result.problems] == [(2, "row")]
