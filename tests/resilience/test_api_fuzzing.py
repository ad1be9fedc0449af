"""Schemathesis against the live OpenAPI schema of a real daphne: no 5xx, only documented statuses, responses
match the schema, errors use the envelope. Fixed seed, example count and time caps (60 s + 20 s), so a run is
reproducible and bounded.

Token revocation, password change and logout would end the fuzzing user's own session half-way, so they are
fuzzed in a second, separate pass with a second user's token.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from accounts.services import api_token_create
from accounts.tests.factories import UserFactory

pytestmark = [pytest.mark.server]

ROOT = Path(__file__).resolve().parents[2]
ST = Path(sys.executable).with_name("st")
SEED = "20260101"
# status_code_conformance holds each answer to the statuses the schema documents (every operation documents its
# error statuses once, in mlplatform.api.document_error_responses).
CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "response_schema_conformance",
        "content_type_conformance",
        "error_envelope",
    ]
)
SESSION_ENDING = r"^/api/v1/(tokens/\{token_id\}/|me/password/|auth/logout/)"


def schemathesis(server_url: str, token: str, tmp_path: Path, *filters: str, examples: int, seconds: int) -> str:
    """Run the schemathesis CLI; returns its output, failing the test on a non-zero exit."""
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "tests.resilience.schemathesis_hooks", "PYTHONPATH": str(ROOT)}
    command = [
        str(ST),
        "run",
        f"{server_url}/api/v1/schema/?format=json",
        "--url",
        server_url,
        "--header",
        f"Authorization: Bearer {token}",
        "--checks",
        CHECKS,
        "--max-examples",
        str(examples),
        "--seed",
        SEED,
        "--phases",
        "examples,coverage,fuzzing,stateful",
        "--workers",
        "1",
        "--no-shrink",
        "--suppress-health-check",
        "all",
        "--request-timeout",
        "20",
        "--max-time",
        str(seconds),
        "--include-path-regex",
        "^/api/v1/",
        "--exclude-path-regex",
        r"^/api/v1/(schema|docs)/",
        "--report",
        "junit",
        "--report-dir",
        str(tmp_path),
        *filters,
    ]
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-12000:]
    return output


def test_native_api_survives_fuzzing(daphne_server, live_workspace, tmp_path) -> None:
    output = schemathesis(
        daphne_server.url,
        live_workspace.token,
        tmp_path,
        "--exclude-path-regex",
        SESSION_ENDING,
        examples=12,
        seconds=60,
    )
    assert "No issues found" in output or "passed" in output.lower(), output[-3000:]


def test_session_ending_endpoints_survive_fuzzing(daphne_server, transactional_db, tmp_path) -> None:
    user = UserFactory()
    _, token = api_token_create(user=user, name="fuzz-session-ending")
    schemathesis(daphne_server.url, token, tmp_path, "--include-path-regex", SESSION_ENDING, examples=8, seconds=20)
