"""The README example, written as a user writes it (plain string ids), passes mypy --strict."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.test_readme_example import readme_example

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_the_readme_example_passes_mypy_strict(tmp_path: Path) -> None:
    example = tmp_path / "readme_example.py"
    example.write_text(readme_example(), encoding="utf-8")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-incremental",
            "--cache-dir",
            str(tmp_path / "mypy-cache"),
            str(example),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        env={"MYPYPATH": str(ROOT / "src"), "PATH": "", "HOME": str(tmp_path)},
    )
    assert result.returncode == 0, result.stdout + result.stderr
