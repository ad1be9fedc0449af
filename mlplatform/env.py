"""Turn environment variables into Django settings values.

Every function here is pure (it takes the environment as a mapping), so each
variable's parsing is tested directly and settings.py stays a list of calls.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured

DEV_SECRET_KEY = "django-insecure-dev-key-do-not-use-in-production"  # noqa: S105 (refused unless DEBUG)
TRUE_WORDS = {"1", "true", "yes", "on"}
FALSE_WORDS = {"0", "false", "no", "off", ""}
# DRF's throttle periods: the first letter of second/minute/hour/day.
RATE_PERIODS = {"s", "m", "h", "d"}
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
# redis-py 8 defaults (5 s socket read timeout, 100 connections per pool) break channels-redis 4.3: its
# blocking receive waits 5 s, so every idle WebSocket consumer died with a read timeout, and a burst of
# 100+ subscriptions raised MaxConnectionsError.
REDIS_LAYER_SOCKET_TIMEOUT_S = 30
REDIS_LAYER_MAX_CONNECTIONS = 2000
# Artifacts live on the filesystem under ARTIFACT_ROOT unless ARTIFACT_STORAGE_BACKEND names another storage.
ARTIFACT_FILESYSTEM_STORAGE = "experiments.storage.ArtifactFileSystemStorage"
DJANGO_FILESYSTEM_STORAGE = "django.core.files.storage.FileSystemStorage"


def env_bool(env: Mapping[str, str], name: str, default: bool = False) -> bool:
    """Read a boolean flag; unknown words are an error rather than a silent False."""
    raw = env.get(name)
    if raw is None:
        return default
    word = raw.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ImproperlyConfigured(f"{name} must be one of 1/0, true/false, yes/no, on/off; got {raw!r}")


def env_int(env: Mapping[str, str], name: str, default: int) -> int:
    """Read a whole number, naming the variable when it is not one."""
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be an integer; got {raw!r}") from exc


def env_list(env: Mapping[str, str], name: str, default: list[str]) -> list[str]:
    """Read a comma-separated list, dropping blanks."""
    raw = env.get(name)
    if raw is None:
        return list(default)
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_rate(env: Mapping[str, str], name: str, default: str) -> str:
    """Read a DRF throttle rate ``N/period`` (period s, m, h or d, e.g. ``600/min``); refuse anything else.

    DRF parses rates only when a request is throttled, so a typo would otherwise turn every API call into a 500.
    """
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    count, slash, period = raw.strip().partition("/")
    if not slash or not count.isdigit() or int(count) < 1 or period[:1].lower() not in RATE_PERIODS:
        raise ImproperlyConfigured(f"{name} must look like 600/min (a count, then /s, /min, /hour or /day): {raw!r}")
    return f"{int(count)}/{period.lower()}"


def log_level(env: Mapping[str, str], name: str = "LOG_LEVEL", default: str = "INFO") -> str:
    """Read a logging level name (DEBUG, INFO, WARNING, ERROR, CRITICAL), case-insensitively."""
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    level = raw.strip().upper()
    if level not in LOG_LEVELS or not isinstance(logging.getLevelName(level), int):
        raise ImproperlyConfigured(f"{name} must be one of {', '.join(LOG_LEVELS)}; got {raw!r}")
    return level


def artifact_storage(env: Mapping[str, str], *, artifact_root: Path) -> dict[str, Any]:
    """The ``STORAGES["artifacts"]`` entry: ``ARTIFACT_STORAGE_BACKEND`` with ``ARTIFACT_STORAGE_OPTIONS`` (JSON).

    Without a backend it is the filesystem store under ``ARTIFACT_ROOT``, which follows the setting when it
    changes (tests move it). Django's own ``FileSystemStorage`` without a ``location`` option gets
    ``ARTIFACT_ROOT`` too, never ``MEDIA_ROOT``. Options that are not a JSON object refuse to start.
    """
    backend = (env.get("ARTIFACT_STORAGE_BACKEND") or "").strip() or ARTIFACT_FILESYSTEM_STORAGE
    raw = (env.get("ARTIFACT_STORAGE_OPTIONS") or "").strip()
    options: Any = {}
    if raw:
        try:
            options = json.loads(raw)
        except ValueError as exc:
            raise ImproperlyConfigured(
                f"ARTIFACT_STORAGE_OPTIONS must be a JSON object; it is not JSON: {exc}"
            ) from exc
        if not isinstance(options, dict):
            raise ImproperlyConfigured(
                f"ARTIFACT_STORAGE_OPTIONS must be a JSON object of the backend's options; got {type(options).__name__}"
            )
    if backend == DJANGO_FILESYSTEM_STORAGE and "location" not in options:
        options = {**options, "location": str(artifact_root)}
    return {"BACKEND": backend, "OPTIONS": options}


def secret_key(env: Mapping[str, str], *, debug: bool) -> str:
    """Return SECRET_KEY; refuse the development key (or none) when DEBUG is off."""
    key = env.get("SECRET_KEY", "")
    if not key or key == DEV_SECRET_KEY:
        if debug:
            return DEV_SECRET_KEY
        raise ImproperlyConfigured(
            "SECRET_KEY must be set to a long random value when DEBUG is off (for local development set DEBUG=1)."
        )
    return key


def database(url: str, *, base_dir: Path) -> dict[str, Any]:
    """Translate a DATABASE_URL (sqlite:///path or postgres://...) to a DATABASES entry."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "sqlite":
        # sqlite:///relative/path and sqlite:////absolute/path, as dj-database-url reads them.
        raw_path = unquote(parts.path)
        path = Path(raw_path[1:]) if raw_path.startswith("/") else Path(raw_path)
        if not path.is_absolute():
            path = base_dir / path
        if not raw_path.strip("/"):
            raise ImproperlyConfigured("DATABASE_URL sqlite:// needs a file path, e.g. sqlite:///var/db.sqlite3")
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(path),
            "OPTIONS": {
                # WAL lets readers work while a writer commits; IMMEDIATE takes the write
                # lock at BEGIN so concurrent writers queue instead of failing mid-transaction.
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=20000;",
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
            },
            "TEST": {"NAME": str(path.with_name(f"test_{path.stem}.sqlite3"))},
        }
    if scheme in {"postgres", "postgresql", "pgsql"}:
        name = unquote(parts.path.lstrip("/"))
        if not name:
            raise ImproperlyConfigured("DATABASE_URL needs a database name, e.g. postgres://user@host:5432/mlplatform")
        query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
        pool_max = int(query.pop("pool_max_size", "20"))
        # A request waits at most this long for a connection, so an outage answers 503 quickly.
        pool_timeout = float(query.pop("pool_timeout", "3"))
        options: dict[str, Any] = dict(query)
        # Django's psycopg 3 pool replaces persistent connections, which ASGI cannot reuse safely.
        options["pool"] = {"min_size": 1, "max_size": pool_max, "timeout": pool_timeout}
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": name,
            "USER": unquote(parts.username or ""),
            "PASSWORD": unquote(parts.password or ""),
            "HOST": parts.hostname or "",
            "PORT": str(parts.port or ""),
            "CONN_MAX_AGE": 0,
            "OPTIONS": options,
        }
    raise ImproperlyConfigured(f"DATABASE_URL scheme {scheme!r} is not supported; use sqlite:// or postgres://")


def channel_layers(redis_url: str | None, prefix: str = "mlplatform") -> dict[str, Any]:
    """Redis channel layer when REDIS_URL is set (fan-out across processes), in-memory otherwise."""
    if not redis_url:
        return {
            "default": {"BACKEND": "channels.layers.InMemoryChannelLayer", "CONFIG": {"capacity": 1000, "expiry": 60}}
        }
    return {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                "hosts": [
                    {
                        "address": redis_url,
                        "socket_timeout": REDIS_LAYER_SOCKET_TIMEOUT_S,
                        "max_connections": REDIS_LAYER_MAX_CONNECTIONS,
                    }
                ],
                # Bounded per-channel queues and expiry keep slow or dead clients from growing Redis.
                "capacity": 1000,
                "expiry": 60,
                "group_expiry": 86400,
                "prefix": prefix,
            },
        }
    }


def caches(redis_url: str | None, prefix: str = "mlplatform") -> dict[str, Any]:
    """Redis cache (shared by throttling across processes) when REDIS_URL is set."""
    if not redis_url:
        return {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "mlplatform"}}
    return {
        "default": {
            # Django's backend, with one connection pool per process instead of one per ASGI request.
            "BACKEND": "mlplatform.cache.RedisCache",
            "LOCATION": redis_url,
            "KEY_PREFIX": prefix,
        }
    }
