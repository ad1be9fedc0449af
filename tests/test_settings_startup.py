"""The real settings module, loaded in a fresh process with a given environment."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROBE = (
    "import json, django; from django.conf import settings; django.setup(); "
    "print(json.dumps({'debug': settings.DEBUG, 'hosts': settings.ALLOWED_HOSTS, "
    "'engine': settings.DATABASES['default']['ENGINE'], 'layer': settings.CHANNEL_LAYERS['default']['BACKEND'], "
    "'artifacts': str(settings.ARTIFACT_ROOT), 'cache': settings.CACHES['default']['BACKEND']}))"
)


def load_settings(tmp_path, **env):
    clean = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "SECRET_KEY", "DEBUG"}}
    clean.update({"DJANGO_SETTINGS_MODULE": "mlplatform.settings", "MLPLATFORM_VAR_DIR": str(tmp_path)}, **env)
    return subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=clean, capture_output=True, text=True)


def test_refuses_to_start_without_secret_key_when_debug_off(tmp_path):
    result = load_settings(tmp_path)
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_defaults_are_sqlite_in_memory_layer_debug_off(tmp_path):
    result = load_settings(tmp_path, SECRET_KEY="z" * 50)
    assert result.returncode == 0, result.stderr
    loaded = json.loads(result.stdout)
    assert loaded["debug"] is False
    assert loaded["engine"] == "django.db.backends.sqlite3"
    assert loaded["layer"] == "channels.layers.InMemoryChannelLayer"
    assert loaded["artifacts"] == str(tmp_path / "artifacts")


def test_environment_overrides(tmp_path):
    result = load_settings(
        tmp_path,
        DEBUG="1",
        ALLOWED_HOSTS="ml.example.com",
        DATABASE_URL="postgres://u@127.0.0.1:5432/x",
        REDIS_URL="redis://127.0.0.1:6379/0",
        ARTIFACT_ROOT=str(tmp_path / "store"),
    )
    assert result.returncode == 0, result.stderr
    loaded = json.loads(result.stdout)
    assert loaded["debug"] is True
    assert loaded["hosts"] == ["ml.example.com"]
    assert loaded["engine"] == "django.db.backends.postgresql"
    assert loaded["layer"] == "channels_redis.core.RedisChannelLayer"
    assert loaded["cache"] == "mlplatform.cache.RedisCache"
    assert loaded["artifacts"] == str(tmp_path / "store")
