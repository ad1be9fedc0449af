""".ci/run, driven with stand-ins for make, pg_isready, redis-cli and psql: both passes run with the right
environment, their test counts are printed, and a failing pass or a pass that ran no test fails CI."""

import os
import stat
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CI_RUN = ROOT / ".ci" / "run"

# Each stand-in `make test` behaves as FAKE_SQLITE or FAKE_PG says, by whether DATABASE_URL is set.
FAKE_MAKE = r"""#!/usr/bin/env bash
echo "make $* DATABASE_URL=${DATABASE_URL:-} REDIS_URL=${REDIS_URL:-}" >> "$FAKE_CALLS"
if [[ -n "${DATABASE_URL:-}" ]]; then mode=$FAKE_PG; else mode=$FAKE_SQLITE; fi
case $mode in
  pass-10) echo "============ 10 passed, 2 skipped, 3 warnings in 1.23s ============"; exit 0 ;;
  pass-12) echo "============ 12 passed, 1 skipped in 2.00s (0:00:02) ============"; exit 0 ;;
  fail) echo "============ 1 failed, 9 passed in 1.00s ============"; echo "make: *** [Makefile:44: test] Error 1"
        exit 2 ;;
  none) echo "============ no tests ran in 0.50s ============"; echo "make: *** [Makefile:44: test] Error 5"
        exit 2 ;;
  none-but-zero) echo "============ no tests ran in 0.50s ============"; exit 0 ;;
  silent) exit 0 ;;
esac
"""
STUBS = {
    "make": FAKE_MAKE,
    "pg_isready": "#!/usr/bin/env bash\necho '127.0.0.1:5432 - accepting connections'\n",
    "redis-cli": "#!/usr/bin/env bash\necho PONG\n",
    "psql": '#!/usr/bin/env bash\necho "psql $*" >> "$FAKE_CALLS"\n',
}


def run_ci(tmp_path: Path, sqlite: str, pg: str) -> tuple[subprocess.CompletedProcess, list[str]]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in STUBS.items():
        stub = bin_dir / name
        stub.write_text(text)
        stub.chmod(stub.stat().st_mode | stat.S_IXUSR)
    calls = tmp_path / "calls.log"
    calls.touch()
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    env.update(
        PATH=f"{bin_dir}:{env['PATH']}",
        FAKE_CALLS=str(calls),
        FAKE_SQLITE=sqlite,
        FAKE_PG=pg,
        DATABASE_URL="postgres://should-be-unset-in-pass-1/x",
    )
    result = subprocess.run(["bash", str(CI_RUN)], env=env, capture_output=True, text=True, timeout=60)
    return result, calls.read_text().splitlines()


def test_both_passes_run_with_their_environment_and_print_their_counts(tmp_path):
    result, calls = run_ci(tmp_path, "pass-10", "pass-12")
    assert result.returncode == 0, result.stdout + result.stderr
    makes = [call for call in calls if call.startswith("make")]
    assert makes == [
        "make test DATABASE_URL= REDIS_URL=",
        "make test DATABASE_URL=postgres://postgres@127.0.0.1:5432/mlplatform_ci REDIS_URL=redis://127.0.0.1:6379/1",
    ]
    assert any("CREATE DATABASE mlplatform_ci" in call for call in calls)  # a fresh database for pass 2
    out = result.stdout
    assert out.index("pass 1/2: SQLite") < out.index("pass 2/2: PostgreSQL + Redis")
    assert "SQLite: 10 passed, 0 failed, 2 skipped, 0 errors" in out
    assert "PostgreSQL+Redis: 12 passed, 0 failed, 1 skipped, 0 errors" in out
    assert out.strip().splitlines()[-1] == "CI: 22 passed, 0 failed, 3 skipped"


@pytest.mark.parametrize("mode", ["none", "none-but-zero", "silent"])
def test_a_first_pass_that_ran_no_test_fails_ci(tmp_path, mode):
    result, calls = run_ci(tmp_path, mode, "pass-12")
    assert result.returncode != 0
    assert "FAIL (SQLite): no test ran" in result.stdout
    assert len([call for call in calls if call.startswith("make")]) == 1
    assert "CI green" not in result.stdout


def test_a_second_pass_that_ran_no_test_fails_ci(tmp_path):
    result, _ = run_ci(tmp_path, "pass-10", "none")
    assert result.returncode != 0
    assert "FAIL (PostgreSQL+Redis): no test ran" in result.stdout
    assert "CI green" not in result.stdout


@pytest.mark.parametrize(("sqlite", "pg", "label"), [("fail", "pass-12", "SQLite"), ("pass-10", "fail", "PostgreSQL")])
def test_a_failing_pass_fails_ci(tmp_path, sqlite, pg, label):
    result, _ = run_ci(tmp_path, sqlite, pg)
    assert result.returncode != 0
    assert f"FAIL ({label}" in result.stdout
    assert "1 failed, 9 passed" in result.stdout
    assert "CI green" not in result.stdout
