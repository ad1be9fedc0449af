"""Each environment variable is parsed as documented, and bad values are refused."""

from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from mlplatform import env


@pytest.mark.parametrize(("raw", "expected"), [("1", True), ("true", True), ("ON", True), ("0", False), ("no", False)])
def test_env_bool_words(raw, expected):
    assert env.env_bool({"DEBUG": raw}, "DEBUG") is expected


def test_env_bool_default_and_garbage():
    assert env.env_bool({}, "DEBUG") is False
    assert env.env_bool({}, "DEBUG", default=True) is True
    with pytest.raises(ImproperlyConfigured, match="DEBUG"):
        env.env_bool({"DEBUG": "maybe"}, "DEBUG")


def test_env_int():
    assert env.env_int({"N": "42"}, "N", 1) == 42
    assert env.env_int({}, "N", 7) == 7
    assert env.env_int({"N": " "}, "N", 7) == 7
    with pytest.raises(ImproperlyConfigured, match="N must be an integer"):
        env.env_int({"N": "lots"}, "N", 1)


def test_allowed_hosts_list():
    assert env.env_list({"ALLOWED_HOSTS": "a.example, b.example,,"}, "ALLOWED_HOSTS", []) == ["a.example", "b.example"]
    assert env.env_list({}, "ALLOWED_HOSTS", ["x"]) == ["x"]


def test_secret_key_from_env():
    assert env.secret_key({"SECRET_KEY": "k" * 50}, debug=False) == "k" * 50


def test_secret_key_dev_default_only_in_debug():
    assert env.secret_key({}, debug=True) == env.DEV_SECRET_KEY
    with pytest.raises(ImproperlyConfigured, match="SECRET_KEY"):
        env.secret_key({}, debug=False)
    with pytest.raises(ImproperlyConfigured, match="SECRET_KEY"):
        env.secret_key({"SECRET_KEY": env.DEV_SECRET_KEY}, debug=False)


def test_database_sqlite_relative_and_absolute(tmp_path):
    relative = env.database("sqlite:///var/x.sqlite3", base_dir=tmp_path)
    assert relative["ENGINE"] == "django.db.backends.sqlite3"
    assert relative["NAME"] == str(tmp_path / "var/x.sqlite3")
    assert "journal_mode=WAL" in relative["OPTIONS"]["init_command"]
    assert relative["TEST"]["NAME"].endswith("test_x.sqlite3")
    absolute = env.database("sqlite:////tmp/abs.sqlite3", base_dir=tmp_path)
    assert absolute["NAME"] == "/tmp/abs.sqlite3"


def test_database_postgres_url():
    config = env.database("postgres://bob:s%40cret@db.internal:6543/ml?sslmode=require", base_dir=Path("/"))
    assert config["ENGINE"] == "django.db.backends.postgresql"
    assert (config["NAME"], config["USER"], config["PASSWORD"]) == ("ml", "bob", "s@cret")
    assert (config["HOST"], config["PORT"]) == ("db.internal", "6543")
    assert config["OPTIONS"]["sslmode"] == "require"
    assert config["OPTIONS"]["pool"]["max_size"] == 20
    assert config["OPTIONS"]["pool"]["timeout"] == 3
    assert config["CONN_MAX_AGE"] == 0


def test_database_postgres_pool_size_option():
    config = env.database("postgresql://u@h/db?pool_max_size=5", base_dir=Path("/"))
    assert config["OPTIONS"]["pool"]["max_size"] == 5
    assert "pool_max_size" not in config["OPTIONS"]


@pytest.mark.parametrize("url", ["mysql://u@h/db", "postgres://u@h/", "sqlite://"])
def test_database_bad_urls(url):
    with pytest.raises(ImproperlyConfigured):
        env.database(url, base_dir=Path("/"))


def test_channel_layers_in_memory_without_redis():
    assert env.channel_layers(None)["default"]["BACKEND"] == "channels.layers.InMemoryChannelLayer"


def test_channel_layers_and_cache_use_redis_url():
    layers = env.channel_layers("redis://127.0.0.1:6379/3")
    assert layers["default"]["BACKEND"] == "channels_redis.core.RedisChannelLayer"
    (host,) = layers["default"]["CONFIG"]["hosts"]
    assert host["address"] == "redis://127.0.0.1:6379/3"
    # redis-py's 5 s read timeout would end every idle WebSocket consumer's blocking receive.
    assert host["socket_timeout"] > 5
    assert host["max_connections"] >= 1000
    assert layers["default"]["CONFIG"]["capacity"] > 0
    caches = env.caches("redis://127.0.0.1:6379/3")
    assert caches["default"]["BACKEND"] == "mlplatform.cache.RedisCache"
    assert env.caches(None)["default"]["BACKEND"].endswith("LocMemCache")


def test_redis_prefix_namespaces_layer_and_cache():
    assert env.channel_layers("redis://h:6379/0", "team-a")["default"]["CONFIG"]["prefix"] == "team-a"
    assert env.caches("redis://h:6379/0", "team-a")["default"]["KEY_PREFIX"] == "team-a"


@pytest.mark.parametrize(("raw", "expected"), [("600/min", "600/min"), (" 5/S ", "5/s"), ("10/hour", "10/hour")])
def test_env_rate(raw, expected):
    assert env.env_rate({"THROTTLE_ANON": raw}, "THROTTLE_ANON", "1/day") == expected
    assert env.env_rate({}, "THROTTLE_ANON", "1/day") == "1/day"


@pytest.mark.parametrize("raw", ["lots", "600", "0/min", "-1/min", "x/min", "600/week", "600/"])
def test_env_rate_refuses_what_drf_cannot_parse(raw):
    with pytest.raises(ImproperlyConfigured, match="THROTTLE_USER"):
        env.env_rate({"THROTTLE_USER": raw}, "THROTTLE_USER", "1/day")


def test_log_level():
    assert env.log_level({}) == "INFO"
    assert env.log_level({"LOG_LEVEL": " warning "}) == "WARNING"
    with pytest.raises(ImproperlyConfigured, match="LOG_LEVEL"):
        env.log_level({"LOG_LEVEL": "LOUD"})


def test_artifact_storage_defaults_to_the_artifact_root_on_disk(tmp_path):
    assert env.artifact_storage({}, artifact_root=tmp_path) == {
        "BACKEND": "experiments.storage.ArtifactFileSystemStorage",
        "OPTIONS": {},
    }
    assert env.artifact_storage(
        {"ARTIFACT_STORAGE_BACKEND": " ", "ARTIFACT_STORAGE_OPTIONS": ""}, artifact_root=tmp_path
    )["BACKEND"] == ("experiments.storage.ArtifactFileSystemStorage")


def test_artifact_storage_django_filesystem_gets_artifact_root_unless_located(tmp_path):
    backend = "django.core.files.storage.FileSystemStorage"
    assert env.artifact_storage({"ARTIFACT_STORAGE_BACKEND": backend}, artifact_root=tmp_path) == {
        "BACKEND": backend,
        "OPTIONS": {"location": str(tmp_path)},
    }
    located = {"ARTIFACT_STORAGE_BACKEND": backend, "ARTIFACT_STORAGE_OPTIONS": '{"location": "/srv/a"}'}
    assert env.artifact_storage(located, artifact_root=tmp_path)["OPTIONS"] == {"location": "/srv/a"}


def test_artifact_storage_other_backend_takes_json_options(tmp_path):
    raw = {
        "ARTIFACT_STORAGE_BACKEND": "storages.backends.s3.S3Storage",
        "ARTIFACT_STORAGE_OPTIONS": '{"bucket_name": "ml", "endpoint_url": "http://minio:9000"}',
    }
    assert env.artifact_storage(raw, artifact_root=tmp_path) == {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {"bucket_name": "ml", "endpoint_url": "http://minio:9000"},
    }


@pytest.mark.parametrize("raw", ["{bucket: ml}", "not json", '["a"]', "42", '"s"'])
def test_artifact_storage_options_must_be_a_json_object(tmp_path, raw):
    with pytest.raises(ImproperlyConfigured, match="ARTIFACT_STORAGE_OPTIONS must be a JSON object"):
        env.artifact_storage({"ARTIFACT_STORAGE_OPTIONS": raw}, artifact_root=tmp_path)
