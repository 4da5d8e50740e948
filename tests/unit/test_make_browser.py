"""`make test` runs the browser test where it can get Debian's Chromium, and says so where it cannot."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def make_browser(**variables: str) -> str:
    args = ["make", "-s", "-C", str(REPO), "browser", *(f"{k}={v}" for k, v in variables.items())]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr  # never a failure: without a browser the test skips
    return proc.stdout


def test_nothing_to_do_when_chromium_is_there():
    assert make_browser(CHROMIUM="/bin/sh") == ""


def test_says_clearly_why_the_browser_test_will_be_skipped(tmp_path):
    out = make_browser(CHROMIUM=str(tmp_path / "none"), APT_GET=str(tmp_path / "no-apt-get"))
    assert f"no Chromium at {tmp_path / 'none'}" in out and "the browser test will be skipped" in out


@pytest.mark.skipif(os.geteuid() != 0, reason="installing needs root")
def test_installs_debians_chromium_as_root_with_apt_get(tmp_path):
    calls = tmp_path / "calls"
    apt = tmp_path / "apt-get"
    apt.write_text(f'#!/bin/sh\necho "$@" >> {calls}\n')
    apt.chmod(0o755)
    out = make_browser(CHROMIUM=str(tmp_path / "none"), APT_GET=str(apt))
    assert "installing Debian's Chromium" in out
    lines = calls.read_text().splitlines()
    assert lines[0] == "update -qq" and "install" in lines[1] and "chromium" in lines[1].split()
