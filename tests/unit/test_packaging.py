"""What pyproject.toml promises: every runtime dependency is imported, the version has one
source, and the PostgreSQL adapter and the testing package say which extra they need."""

from __future__ import annotations

import importlib
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import starlight_sequences

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
SOURCE = ROOT / "src" / "starlight_sequences"


def _name(requirement: str) -> str:
    match = re.match(r"[A-Za-z0-9._-]+", requirement)
    assert match is not None
    return match.group().lower()


def test_every_runtime_dependency_is_imported_by_the_library() -> None:
    code = "\n".join(path.read_text(encoding="utf-8") for path in SOURCE.rglob("*.py"))
    for requirement in PYPROJECT["project"]["dependencies"]:
        module = _name(requirement).replace("-", "_")
        used = re.search(
            rf"^\s*(import|from) {module}\b|import_module\(\"{module}\"\)|files\(\"{module}\.",
            code,
            re.MULTILINE,
        )
        assert used, f"{requirement} is declared but never imported"


def test_no_unused_or_dropped_dependency_is_declared() -> None:
    names = {_name(r) for r in PYPROJECT["project"]["dependencies"]}
    assert names == {"attrs", "holidays", "tzdata", "idna"}


def test_every_declared_lower_bound_is_a_minimum() -> None:
    # The lowest-versions job of .ci/run installs exactly these versions.
    for requirement in PYPROJECT["project"]["dependencies"]:
        assert re.fullmatch(r"[a-z-]+>=[0-9.]+", requirement), requirement


def test_the_version_has_one_source() -> None:
    assert "version" not in PYPROJECT["project"]
    assert PYPROJECT["project"]["dynamic"] == ["version"]
    assert PYPROJECT["tool"]["hatch"]["version"]["path"] == "src/starlight_sequences/__init__.py"
    assert re.fullmatch(r"\d+\.\d+\.\d+", starlight_sequences.__version__)


def test_the_postgres_extra_leaves_the_libpq_choice_to_the_application() -> None:
    extras = PYPROJECT["project"]["optional-dependencies"]
    assert all("[binary]" not in r for r in extras["postgres"])
    assert any(r.startswith("psycopg[binary]") for r in extras["postgres-binary"])
    assert "test" not in extras
    assert "bench" not in extras
    assert {"test", "bench", "docs"} <= set(PYPROJECT["dependency-groups"])


def test_importing_the_postgres_adapter_without_psycopg_names_the_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # as if it were not installed
    monkeypatch.delitem(sys.modules, "starlight_sequences.adapters.postgres", raising=False)
    with pytest.raises(ImportError) as caught:
        importlib.import_module("starlight_sequences.adapters.postgres")
    assert "'postgres' extra" in str(caught.value)
    assert "pip install 'starlight-sequences[postgres]'" in str(caught.value)
    assert "postgres-binary" in str(caught.value)


def test_the_package_ships_its_type_information_and_license() -> None:
    assert (SOURCE / "py.typed").exists()
    assert (ROOT / "LICENSE").read_text(encoding="utf-8").startswith("MIT License")
    assert "Typing :: Typed" in PYPROJECT["project"]["classifiers"]


def test_the_testing_extra_brings_what_the_shipped_suites_import() -> None:
    extras = PYPROJECT["project"]["optional-dependencies"]
    assert {_name(r) for r in extras["testing"]} == {"pytest", "hypothesis"}
    # the same lower bounds as the project's own test group
    assert set(extras["testing"]) <= set(PYPROJECT["dependency-groups"]["test"])


def _run_python(code: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(SOURCE.parent)}
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False
    )


@pytest.mark.parametrize("missing", ["pytest", "hypothesis"])
def test_importing_the_testing_package_without_its_extra_names_the_extra(missing: str) -> None:
    done = _run_python(
        f"import sys; sys.modules[{missing!r}] = None  # as if it were not installed\n"
        "import starlight_sequences.testing"
    )
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: starlight_sequences.testing needs the 'testing' extra")
    assert "pip install 'starlight-sequences[testing]'" in last
    assert missing in last


def test_the_core_never_imports_the_testing_package_nor_pytest() -> None:
    core = sorted(
        ".".join(("starlight_sequences", *path.relative_to(SOURCE).with_suffix("").parts))
        .removesuffix(".__init__")
        .removesuffix(".__main__")
        for path in SOURCE.rglob("*.py")
        if path.relative_to(SOURCE).parts[0] != "testing"
    )
    assert len(core) > 50
    done = _run_python(
        "import importlib, sys\n"
        f"for name in {core!r}:\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except ImportError as exc:  # an adapter whose extra is not installed here\n"
        "        if 'extra' not in str(exc):\n"
        "            raise\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pytest', 'hypothesis')\n"
        "             or m.startswith('starlight_sequences.testing')))\n"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
