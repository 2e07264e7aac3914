"""What host apps write type-checks under ``mypy --strict`` (run on a snippet of user code)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from mypy import api

import starlight_sequences

SOURCE = Path(starlight_sequences.__file__).resolve().parents[1]

USER_CODE = """
    from __future__ import annotations

    import attrs

    import starlight_sequences as sl
    from starlight_sequences.ids import LeadId, SenderId

    lead = sl.Lead(id="ann", first_name="Ann", email="ann@example.com")
    mailbox = sl.EmailIdentity(id="ada", address="ada@example.com", display_name="Ada")
    account = sl.LinkedInIdentity(id="ada-li", premium=True)
    moved = attrs.evolve(lead, id="bob")
    imported = sl.Lead.from_mapping({"id": "carl", "email": "carl@example.com"})

    lead_id: LeadId = moved.id
    sender: SenderId = mailbox.id
    other: SenderId = account.id
    again: LeadId = imported.id
"""


@pytest.mark.slow
def test_constructors_take_plain_strings_and_attributes_keep_their_id_types(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    snippet = tmp_path / "host_app.py"
    snippet.write_text(textwrap.dedent(USER_CODE), encoding="utf-8")
    # This checkout's source, not whatever copy of the package the interpreter has installed.
    monkeypatch.setenv("MYPYPATH", str(SOURCE))
    monkeypatch.chdir(tmp_path)

    out, err, status = api.run(["--strict", "--no-incremental", "--no-error-summary", str(snippet)])

    assert (status, out, err) == (0, "", "")
