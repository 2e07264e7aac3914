"""The worked fallback example of docs/shapes.md, run: the page shows what the script prints."""

from __future__ import annotations

import contextlib
import io
import runpy
from pathlib import Path

ROOT = Path(__file__).parents[2]


def test_the_shapes_page_shows_what_the_fallback_example_prints() -> None:
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        runpy.run_path(str(ROOT / "docs" / "examples" / "fallback.py"), run_name="__main__")
    output = printed.getvalue()
    assert "4 sent Mon 2026-12-28" in output
    assert "reserved 0" in output
    page = (ROOT / "docs" / "shapes.md").read_text(encoding="utf-8")
    assert f"```text\n{output}```" in page
