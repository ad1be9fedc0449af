"""The Makefile's recipes, read with ``make -n`` (what would run, in order, without running it)."""

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs GNU make")


def dry_run(target: str, *variables: str) -> list[str]:
    result = subprocess.run(
        ["make", "-n", target, *variables], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True
    )
    return result.stdout.splitlines()


def position(lines: list[str], fragment: str) -> int:
    matches = [index for index, line in enumerate(lines) if fragment in line]
    assert matches, f"{fragment!r} not in:\n" + "\n".join(lines)
    return matches[0]


def test_make_test_on_a_fresh_clone_installs_then_lints_then_tests_with_coverage(tmp_path):
    lines = dry_run("test", f"VENV={tmp_path}/.venv")
    venv = position(lines, f"python3 -m venv {tmp_path}/.venv")
    install = position(lines, "pip install -q --disable-pip-version-check -r requirements.txt")
    check = position(lines, "ruff check .")
    format_check = position(lines, "ruff format --check .")
    pytest_line = position(lines, "-m pytest")
    assert venv < install < check < format_check < pytest_line
    assert "--cov " in lines[pytest_line] + " "
    assert "--cov-report=term" in lines[pytest_line]
    assert "--cov-fail-under=90" in lines[pytest_line]


def test_make_test_with_the_venv_installed_skips_the_install():
    if not list((ROOT / ".venv").glob(".installed-*")):
        pytest.skip("the project's .venv was not installed by make")
    lines = dry_run("test")
    assert not any("pip install" in line for line in lines)
    assert position(lines, "ruff check .") < position(lines, "-m pytest")


def test_make_run_migrates_then_serves_daphne_on_loopback_8000(tmp_path):
    lines = dry_run("run", f"VENV={tmp_path}/.venv")
    install = position(lines, "-r requirements.txt")
    migrate = position(lines, "manage.py migrate --noinput")
    serve = position(lines, "daphne")
    assert install < migrate < serve
    assert "-b 127.0.0.1 -p 8000 mlplatform.asgi:application" in lines[serve]
