"""examples/warm_up_ramp.py runs, and docs/settings.md shows exactly what it prints."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[2]


def test_the_warm_up_example_prints_what_the_settings_page_shows() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "warm_up_ramp.py")],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=300,
    )
    page = (ROOT / "docs" / "settings.md").read_text(encoding="utf-8")
    command = "$ PYTHONPATH=src .venv/bin/python examples/warm_up_ramp.py\n"
    assert command + result.stdout + "```" in page
    lines = result.stdout.splitlines()
    assert lines[0] == "preview: last send forecast 2026-04-13 14:57 UTC"
    assert lines[-1] == "approved: last send planned 2026-04-13 14:57 UTC"
