"""The real settings module, loaded in a fresh process with a given environment."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

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


def test_refuses_the_development_key_when_debug_off(tmp_path):
    from mlplatform.env import DEV_SECRET_KEY

    result = load_settings(tmp_path, SECRET_KEY=DEV_SECRET_KEY, DEBUG="0")
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr
    assert load_settings(tmp_path, SECRET_KEY=DEV_SECRET_KEY, DEBUG="1").returncode == 0


# Every other variable settings.py reads, and where its value lands.
EVERY_OTHER_VARIABLE = {
    "CSRF_TRUSTED_ORIGINS": ("https://ml.example.com, https://b.example", "CSRF_TRUSTED_ORIGINS"),
    "REDIS_PREFIX": ("team-a", "REDIS_PREFIX"),
    "LOGIN_FAILURES_PER_USERNAME": ("3", "LOGIN_THROTTLE.FAILURES_PER_USERNAME"),
    "LOGIN_FAILURES_PER_IP": ("7", "LOGIN_THROTTLE.FAILURES_PER_IP"),
    "LOGIN_FAILURE_WINDOW_SECONDS": ("60", "LOGIN_THROTTLE.WINDOW_SECONDS"),
    "USE_X_FORWARDED_FOR": ("yes", "USE_X_FORWARDED_FOR"),
    "ALLOW_SIGNUP": ("true", "ALLOW_SIGNUP"),
    "ARTIFACT_MAX_UPLOAD_BYTES": ("1048576", "ARTIFACT_MAX_UPLOAD_BYTES"),
    "DATA_UPLOAD_MAX_MEMORY_SIZE": ("2048", "DATA_UPLOAD_MAX_MEMORY_SIZE"),
    "JSON_MAX_DEPTH": ("8", "JSON_MAX_DEPTH"),
    "THROTTLE_ANON": ("30/min", "REST_FRAMEWORK.DEFAULT_THROTTLE_RATES.anon"),
    "THROTTLE_USER": ("90/s", "REST_FRAMEWORK.DEFAULT_THROTTLE_RATES.user"),
    "JWT_ACCESS_MINUTES": ("5", "SIMPLE_JWT.ACCESS_TOKEN_LIFETIME"),
    "JWT_REFRESH_DAYS": ("2", "SIMPLE_JWT.REFRESH_TOKEN_LIFETIME"),
    "LOG_LEVEL": ("warning", "LOGGING.root.level"),
    "HTTPS": ("on", "SESSION_COOKIE_SECURE"),
    "HSTS_PRELOAD": ("1", "SECURE_HSTS_PRELOAD"),
}
PROBE_ALL = (
    "import json, django; from django.conf import settings; django.setup(); "
    "import sys; out = {}\n"
    "for name in sys.argv[1:]:\n"
    "    head, *rest = name.split('.'); value = getattr(settings, head)\n"
    "    for key in rest: value = value[key]\n"
    "    out[name] = value.total_seconds() if hasattr(value, 'total_seconds') else value\n"
    "out['STATIC_ROOT'] = str(settings.STATIC_ROOT); out['SECURE_SSL_REDIRECT'] = settings.SECURE_SSL_REDIRECT\n"
    "out['SECURE_HSTS_SECONDS'] = settings.SECURE_HSTS_SECONDS\n"
    "print(json.dumps(out))"
)


def test_every_other_variable_is_read(tmp_path):
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "REDIS_URL", "SECRET_KEY", "DEBUG", *EVERY_OTHER_VARIABLE}
    }
    env.update({"DJANGO_SETTINGS_MODULE": "mlplatform.settings", "MLPLATFORM_VAR_DIR": str(tmp_path)})
    env.update({"SECRET_KEY": "z" * 50}, **{name: raw for name, (raw, _) in EVERY_OTHER_VARIABLE.items()})
    targets = [target for _, target in EVERY_OTHER_VARIABLE.values()]
    result = subprocess.run(
        [sys.executable, "-c", PROBE_ALL, *targets], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    loaded = json.loads(result.stdout)
    assert loaded == {
        "CSRF_TRUSTED_ORIGINS": ["https://ml.example.com", "https://b.example"],
        "REDIS_PREFIX": "team-a",
        "LOGIN_THROTTLE.FAILURES_PER_USERNAME": 3,
        "LOGIN_THROTTLE.FAILURES_PER_IP": 7,
        "LOGIN_THROTTLE.WINDOW_SECONDS": 60,
        "USE_X_FORWARDED_FOR": True,
        "ALLOW_SIGNUP": True,
        "ARTIFACT_MAX_UPLOAD_BYTES": 1048576,
        "DATA_UPLOAD_MAX_MEMORY_SIZE": 2048,
        "JSON_MAX_DEPTH": 8,
        "REST_FRAMEWORK.DEFAULT_THROTTLE_RATES.anon": "30/min",
        "REST_FRAMEWORK.DEFAULT_THROTTLE_RATES.user": "90/s",
        "SIMPLE_JWT.ACCESS_TOKEN_LIFETIME": 300.0,
        "SIMPLE_JWT.REFRESH_TOKEN_LIFETIME": 2 * 86400.0,
        "LOGGING.root.level": "WARNING",
        "SESSION_COOKIE_SECURE": True,
        "SECURE_HSTS_PRELOAD": True,
        # MLPLATFORM_VAR_DIR moves var/ (the SQLite file, static files, artifacts) as a whole.
        "STATIC_ROOT": str(tmp_path / "static"),
        "SECURE_SSL_REDIRECT": True,
        "SECURE_HSTS_SECONDS": 31536000,
    }


def test_defaults_of_the_other_variables(tmp_path):
    env = {
        k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "DEBUG", *EVERY_OTHER_VARIABLE}
    }
    env.update({"DJANGO_SETTINGS_MODULE": "mlplatform.settings", "MLPLATFORM_VAR_DIR": str(tmp_path)})
    env["SECRET_KEY"] = "z" * 50
    probe = (
        "import json, django; from django.conf import settings; django.setup(); "
        "print(json.dumps([settings.REST_FRAMEWORK['DEFAULT_THROTTLE_RATES'], settings.LOG_LEVEL, "
        "settings.SESSION_COOKIE_SECURE, settings.SECURE_SSL_REDIRECT, settings.ALLOW_SIGNUP, settings.REDIS_PREFIX]))"
    )
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [
        {"anon": "600/min", "user": "100000/min"},
        "INFO",
        False,
        False,
        False,
        "mlplatform",
    ]


@pytest.mark.parametrize(
    ("name", "raw"),
    [
        ("DEBUG", "maybe"),
        ("THROTTLE_ANON", "lots"),
        ("THROTTLE_USER", "100"),
        ("LOG_LEVEL", "LOUD"),
        ("JSON_MAX_DEPTH", "deep"),
        ("HTTPS", "sometimes"),
        ("DATABASE_URL", "mysql://u@h/db"),
    ],
)
def test_bad_values_stop_the_start_naming_the_variable(tmp_path, name, raw):
    result = load_settings(tmp_path, SECRET_KEY="z" * 50, **{name: raw})
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert name in result.stderr.strip().splitlines()[-1]


def test_artifact_storage_from_the_environment_and_bad_options_refuse_to_start(tmp_path):
    probe = (
        "import json, django; from django.conf import settings; django.setup(); "
        "print(json.dumps(settings.STORAGES['artifacts']))"
    )
    base = {k: v for k, v in os.environ.items() if not k.startswith("ARTIFACT_")}
    base.update(DJANGO_SETTINGS_MODULE="mlplatform.settings", MLPLATFORM_VAR_DIR=str(tmp_path), SECRET_KEY="z" * 50)

    def load(**env):
        return subprocess.run(
            [sys.executable, "-c", probe], cwd=ROOT, env={**base, **env}, capture_output=True, text=True
        )

    result = load(
        ARTIFACT_STORAGE_BACKEND="django.core.files.storage.InMemoryStorage",
        ARTIFACT_STORAGE_OPTIONS='{"location": "/artifacts"}',
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "BACKEND": "django.core.files.storage.InMemoryStorage",
        "OPTIONS": {"location": "/artifacts"},
    }
    result = load(ARTIFACT_STORAGE_OPTIONS="{bucket_name: ml}")
    assert result.returncode != 0
    assert "ImproperlyConfigured: ARTIFACT_STORAGE_OPTIONS must be a JSON object" in result.stderr
