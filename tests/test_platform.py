"""The platform as configured, checked live: the database connection, the admin site, static files."""

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection, connections

ROOT = Path(__file__).resolve().parent.parent
ON_SQLITE = settings.DATABASES["default"]["ENGINE"].endswith("sqlite3")


@pytest.mark.skipif(not ON_SQLITE, reason="SQLite only: the journal mode of the database file")
def test_sqlite_connection_is_in_wal_mode(db):
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA journal_mode")
        (mode,) = cursor.fetchone()
        cursor.execute("PRAGMA busy_timeout")
        (busy_timeout,) = cursor.fetchone()
    assert mode.lower() == "wal"
    assert busy_timeout >= 5000  # concurrent writers wait for the lock instead of failing at once


@pytest.mark.postgres
@pytest.mark.skipif(ON_SQLITE, reason="needs PostgreSQL: the psycopg 3 connection pool")
def test_postgres_connections_are_reused_through_the_pool(transactional_db):
    """Closing a connection returns it to the pool: later requests (from any thread) reuse its backend.

    Without the pool (CONN_MAX_AGE=0), every one of these cycles would open a new PostgreSQL backend.
    """
    assert connection.pool is not None
    pids: list[int] = []

    def one_request() -> None:
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            pids.append(cursor.fetchone()[0])
        connections["default"].close()  # what Django does at the end of every request

    for cycle in range(20):
        if cycle % 2:
            thread = threading.Thread(target=one_request)
            thread.start()
            thread.join(timeout=30)
        else:
            one_request()
    assert len(pids) == 20
    assert len(set(pids)) <= connection.pool.get_stats()["pool_size"] < 20


@pytest.mark.django_db
def test_admin_login_page_carries_the_site_title(client):
    response = client.get("/admin/login/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "<title>Log in | mlplatform admin</title>" in html
    assert "mlplatform operations" in html
    assert "Django administration" not in html


def test_collectstatic_gathers_and_compresses_into_static_root(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    env.update({"DJANGO_SETTINGS_MODULE": "mlplatform.settings", "DEBUG": "0", "SECRET_KEY": "c" * 50})
    env["MLPLATFORM_VAR_DIR"] = str(tmp_path)
    result = subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    static = tmp_path / "static"
    for asset in ("admin/css/base.css", "css/app.css", "drf_spectacular_sidecar/swagger-ui-dist/swagger-ui.css"):
        assert (static / asset).is_file(), asset
        assert (static / f"{asset}.gz").is_file(), f"{asset}.gz (whitenoise compression)"
    assert "static files copied" in result.stdout


def test_whitenoise_serves_static_files_before_any_view(client):
    response = client.get("/static/admin/css/base.css")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/css")
    assert "max-age" in response["Cache-Control"]
