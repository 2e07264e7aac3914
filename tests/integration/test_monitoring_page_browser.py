"""The monitoring page in a real browser: headless Chromium renders it, and the test reads the
DOM the browser built and the screenshot it took.

Needs Debian's ``chromium`` package (or ``chromium-browser`` / ``google-chrome`` on the PATH, or
``STARLIGHT_CHROMIUM`` naming the binary). Without one the tests skip, unless
``STARLIGHT_REQUIRE_BROWSER=1`` (CI) makes them fail.
"""

from __future__ import annotations

import collections
import os
import shutil
import struct
import subprocess
import zlib
from pathlib import Path
from typing import Final

import pytest

from starlight_sequences.monitoring_page import campaign_page
from tests.html_tree import parse
from tests.monitoring_scenario import CID, IMG_NAME, SCRIPT_NAME, campaign_a_day_in
from tests.service_kit import WS

REQUIRE_VARIABLE: Final = "STARLIGHT_REQUIRE_BROWSER"
CANDIDATES: Final = ("chromium", "chromium-browser", "google-chrome")
WIDTH: Final = 1200
HEIGHT: Final = 2000
RUN_TIMEOUT: Final = 120.0
EMAIL_TEAL: Final = (0x00, 0x79, 0x6B)
LINKEDIN_BLUE: Final = (0x0A, 0x66, 0xC2)
NOW_RED: Final = (0xC6, 0x28, 0x28)


def _browser() -> str:
    """The browser binary, or skip (fail when required) with the reason."""
    named = os.environ.get("STARLIGHT_CHROMIUM", "")
    found = shutil.which(named) if named else None
    for candidate in CANDIDATES if not found else ():
        found = shutil.which(candidate)
        if found:
            break
    if found:
        return found
    what = (
        "no headless Chromium here (looked for "
        + ", ".join(([named] if named else []) + list(CANDIDATES))
        + "): install Debian's chromium package to run the browser tests"
    )
    if os.environ.get(REQUIRE_VARIABLE, "") not in ("", "0"):
        pytest.fail(f"{REQUIRE_VARIABLE}=1 but {what}", pytrace=False)
    pytest.skip(what)


def _run(browser: str, profile: Path, *arguments: str) -> subprocess.CompletedProcess[bytes]:
    command = [
        browser,
        "--headless",
        # Root (CI) cannot use Chromium's sandbox; the page is our own file without scripts.
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--hide-scrollbars",
        "--force-device-scale-factor=1",
        f"--user-data-dir={profile}",
        *arguments,
    ]
    result = subprocess.run(command, capture_output=True, timeout=RUN_TIMEOUT, check=False)
    assert result.returncode == 0, result.stderr.decode(errors="replace")[-2000:]
    return result


@pytest.fixture(scope="module")
def browser() -> str:
    return _browser()


@pytest.fixture(scope="module")
def page_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    kit = campaign_a_day_in()
    path = tmp_path_factory.mktemp("page") / "monitoring.html"
    path.write_text(campaign_page(kit.service, WS, CID), encoding="utf-8")
    return path


def test_chromium_builds_the_dom_of_the_page_with_every_section_and_no_script(
    browser: str, page_file: Path, tmp_path: Path
) -> None:
    result = _run(browser, tmp_path / "profile", "--dump-dom", page_file.as_uri())

    _, dom = parse(result.stdout.decode("utf-8"))
    for section in ("contacts", "waiting", "stops", "counts", "timelines"):
        assert dom.find("section", id=section)
    assert dom.find_all("script") == [], "the browser parsed no script out of the names"
    assert dom.find_all("img") == []
    evil = dom.find("section", id="contacts").find("tr", data_lead="evil")
    assert f"{SCRIPT_NAME} {IMG_NAME}" in evil.text
    assert len(evil.find_all("td")) == 5
    timelines = dom.find_all("section", class_="lead")
    assert [t.attrs["data-lead"] for t in timelines] == ["ann", "bob", "carl", "evil"]
    ann = timelines[0].find("ol", class_="timeline")
    steps = [li for li in ann.find_all("li") if "step" in li.classes]
    assert [li.attrs["data-position"] for li in steps] == ["1", "2", "3"]
    carl_steps = [li for li in timelines[2].find_all("li") if "step" in li.classes]
    assert "skipped : reply" in carl_steps[1].text


def _pixels(png: bytes) -> tuple[int, int, list[bytes]]:
    """Width, height and the rows of an 8-bit RGB or RGBA PNG, as RGB bytes per row."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    offset, chunks, header = 8, [], b""
    while offset < len(png):
        (length,) = struct.unpack(">I", png[offset : offset + 4])
        kind = png[offset + 4 : offset + 8]
        data = png[offset + 8 : offset + 8 + length]
        if kind == b"IHDR":
            header = data
        elif kind == b"IDAT":
            chunks.append(data)
        offset += 12 + length
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert (depth, interlace) == (8, 0), "an 8-bit, non-interlaced PNG"
    channels = {2: 3, 6: 4}[colour]
    raw = zlib.decompress(b"".join(chunks))
    stride = width * channels
    rows: list[bytes] = []
    previous = bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        _unfilter(kind, line, previous, channels)
        rows.append(bytes(line) if channels == 3 else bytes(_rgb(line)))
        previous = line
    return width, height, rows


def _unfilter(kind: int, line: bytearray, previous: bytearray, bpp: int) -> None:
    if kind == 0:
        return
    if kind == 2:  # the most common filter, done without the per-byte branches below
        line[:] = bytes([(a + b) & 0xFF for a, b in zip(line, previous, strict=True)])
        return
    for i in range(len(line)):
        left = line[i - bpp] if i >= bpp else 0
        up = previous[i]
        corner = previous[i - bpp] if i >= bpp else 0
        if kind == 1:
            line[i] = (line[i] + left) & 0xFF
        elif kind == 2:
            line[i] = (line[i] + up) & 0xFF
        elif kind == 3:
            line[i] = (line[i] + (left + up) // 2) & 0xFF
        elif kind == 4:
            p = left + up - corner
            pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
            guess = left if pa <= pb and pa <= pc else up if pb <= pc else corner
            line[i] = (line[i] + guess) & 0xFF


def _rgb(line: bytearray) -> bytearray:
    out = bytearray()
    for i in range(0, len(line), 4):
        out += line[i : i + 3]
    return out


def _histogram(rows: list[bytes]) -> collections.Counter[bytes]:
    """How many pixels of each RGB colour."""
    return collections.Counter(row[i : i + 3] for row in rows for i in range(0, len(row), 3))


def test_chromium_draws_the_page_with_email_and_linkedin_markers_and_the_now_mark(
    browser: str, page_file: Path, tmp_path: Path
) -> None:
    shot = tmp_path / "page.png"
    _run(
        browser,
        tmp_path / "profile",
        f"--screenshot={shot}",
        f"--window-size={WIDTH},{HEIGHT}",
        page_file.as_uri(),
    )

    width, height, rows = _pixels(shot.read_bytes())
    assert (width, height) == (WIDTH, HEIGHT)
    histogram = _histogram(rows)
    assert len(histogram) > 50, f"a blank page ({len(histogram)} colours)"
    assert histogram[b"\xff\xff\xff"] < WIDTH * HEIGHT * 0.99, "almost everything white"
    # Sent steps are filled with their channel's colour; "now" is a solid red bar.
    assert histogram[bytes(EMAIL_TEAL)] > 200, "no filled email circle"
    assert histogram[bytes(LINKEDIN_BLUE)] > 200, "no filled LinkedIn square"
    assert histogram[bytes(NOW_RED)] > 30, "no now mark"


def test_a_missing_browser_fails_when_required_and_skips_otherwise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PATH", "")
    monkeypatch.setenv("STARLIGHT_CHROMIUM", "no-such-browser")
    monkeypatch.setenv(REQUIRE_VARIABLE, "1")
    with pytest.raises(pytest.fail.Exception, match=r"STARLIGHT_REQUIRE_BROWSER=1 .*chromium"):
        _browser()
    monkeypatch.delenv(REQUIRE_VARIABLE)
    with pytest.raises(pytest.skip.Exception, match="install Debian's chromium package"):
        _browser()
