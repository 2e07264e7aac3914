"""The worked A/B example of docs/monitoring.md, run: the page shows what the script prints."""

from __future__ import annotations

import contextlib
import io
import runpy
from pathlib import Path

ROOT = Path(__file__).parents[2]


def test_the_monitoring_page_shows_what_the_ab_example_prints() -> None:
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        runpy.run_path(str(ROOT / "docs" / "examples" / "ab_test.py"), run_name="__main__")
    output = printed.getvalue()
    assert "variant 'peer' wins" in output
    page = (ROOT / "docs" / "monitoring.md").read_text(encoding="utf-8")
    assert f"```text\n{output}```" in page
