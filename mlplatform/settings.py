"""Django settings, read from the environment (12-factor).

Variables: DEBUG, SECRET_KEY, ALLOWED_HOSTS, CSRF_TRUSTED_ORIGINS, DATABASE_URL,
REDIS_URL, ARTIFACT_ROOT, ARTIFACT_STORAGE_BACKEND/_OPTIONS, LOG_LEVEL, API throttle rates. See README.md.
"""

import os
from datetime import timedelta
from pathlib import Path

from mlplatform import __version__, env

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("MLPLATFORM_VAR_DIR", BASE_DIR / "var"))
ENV = os.environ
VAR_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env.env_bool(ENV, "DEBUG", default=False)
SECRET_KEY = env.secret_key(ENV, debug=DEBUG)
ALLOWED_HOSTS = env.env_list(ENV, "ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.env_list(ENV, "CSRF_TRUSTED_ORIGINS", [])
VERSION = __version__

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework_simplejwt.token_blacklist",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "accounts",
    "experiments",
    "experiments.mlflow.apps.MlflowFacadeConfig",
    "registry",
]

MIDDLEWARE = [
    "mlplatform.request_log.RequestLogMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # CSP etc. on every response (static files and early refusals too); then body size/JSON depth limits.
    "mlplatform.security.SecurityHeadersMiddleware",
    "mlplatform.security.RequestLimitsMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "accounts.middleware.LoginThrottleMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, so its process_exception sees page views' exceptions first: database down -> 503.
    "mlplatform.security.DatabaseUnavailableMiddleware",
]

ROOT_URLCONF = "mlplatform.urls"
ASGI_APPLICATION = "mlplatform.asgi.application"
WSGI_APPLICATION = None

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "experiments.pages.context.nav",
            ],
        },
    },
]

DATABASES = {"default": env.database(ENV.get("DATABASE_URL", f"sqlite:///{VAR_DIR / 'db.sqlite3'}"), base_dir=BASE_DIR)}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = ENV.get("REDIS_URL") or None
# Several deployments (or parallel test workers) can share one Redis under different prefixes.
REDIS_PREFIX = ENV.get("REDIS_PREFIX", "mlplatform")
CHANNEL_LAYERS = env.channel_layers(REDIS_URL, REDIS_PREFIX)
CACHES = env.caches(REDIS_URL, REDIS_PREFIX)

AUTH_USER_MODEL = "accounts.User"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# The throttled backend refuses password checks (429) while a username or IP has too many failures.
AUTHENTICATION_BACKENDS = ["accounts.backends.ThrottledModelBackend"]
LOGIN_THROTTLE = {
    "FAILURES_PER_USERNAME": env.env_int(ENV, "LOGIN_FAILURES_PER_USERNAME", 10),
    "FAILURES_PER_IP": env.env_int(ENV, "LOGIN_FAILURES_PER_IP", 50),
    "WINDOW_SECONDS": env.env_int(ENV, "LOGIN_FAILURE_WINDOW_SECONDS", 900),
    "NAMESPACE": "",
}
# Only behind a proxy that overwrites X-Forwarded-For: the audit log and login throttling use its first hop.
USE_X_FORWARDED_FOR = env.env_bool(ENV, "USE_X_FORWARDED_FOR", default=False)
ALLOW_SIGNUP = env.env_bool(ENV, "ALLOW_SIGNUP", default=False)
LOGIN_URL = "/login/"
LOGIN_REDIRECT_URL = "/"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # whitenoise warns on every request otherwise
STATICFILES_DIRS = [BASE_DIR / "static"]
ARTIFACT_ROOT = Path(ENV.get("ARTIFACT_ROOT", VAR_DIR / "artifacts"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # Not the manifest storage: it makes every page fail until collectstatic has run, and
    # `make run` / tests must work straight from a clone. whitenoise still compresses.
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
    # Run artifacts (experiments.artifacts): ARTIFACT_ROOT on disk, or ARTIFACT_STORAGE_BACKEND/_OPTIONS.
    "artifacts": env.artifact_storage(ENV, artifact_root=ARTIFACT_ROOT),
}
# Serve straight from the app/static finders when collectstatic has not run (tests, first run).
WHITENOISE_USE_FINDERS = True

ARTIFACT_MAX_UPLOAD_BYTES = env.env_int(ENV, "ARTIFACT_MAX_UPLOAD_BYTES", 1024 * 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = env.env_int(ENV, "DATA_UPLOAD_MAX_MEMORY_SIZE", 20 * 1024 * 1024)

# Registry webhooks (registry.webhooks): hosts resolving to link-local addresses (cloud metadata) are always
# refused; loopback/private ones only when this is off.
WEBHOOK_ALLOW_PRIVATE_HOSTS = env.env_bool(ENV, "WEBHOOK_ALLOW_PRIVATE_HOSTS", default=True)

# JSON bodies nested deeper than this are a 400 before any parser recurses into them (mlplatform.security).
JSON_MAX_DEPTH = env.env_int(ENV, "JSON_MAX_DEPTH", 32)
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
SECURE_REFERRER_POLICY = "same-origin"
if env.env_bool(ENV, "HTTPS", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = True
    SECURE_HSTS_SECONDS = 31536000
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    # Preloading is a commitment for the whole domain, so it is the operator's explicit choice.
    SECURE_HSTS_PRELOAD = env.env_bool(ENV, "HSTS_PRELOAD", default=False)
    if not SECURE_HSTS_PRELOAD:
        SILENCED_SYSTEM_CHECKS = ["security.W021"]
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True

REST_FRAMEWORK = {
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    # ApiTokenAuthentication first: its WWW-Authenticate challenge makes anonymous requests 401, not 403.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.ApiTokenAuthentication",
        "rest_framework_simplejwt.authentication.JWTAuthentication",
        "accounts.authentication.BasicAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "mlplatform.api.CursorPagination",
    "PAGE_SIZE": 100,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_THROTTLE_CLASSES": [
        # O(1) fixed-window counters that fail open when Redis is down (accounts/throttling.py).
        "accounts.throttling.AnonRateThrottle",
        "accounts.throttling.UserRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": env.env_rate(ENV, "THROTTLE_ANON", "600/min"),
        "user": env.env_rate(ENV, "THROTTLE_USER", "100000/min"),
    },
    "EXCEPTION_HANDLER": "mlplatform.api.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_VERSIONING_CLASS": "rest_framework.versioning.URLPathVersioning",
    "DEFAULT_VERSION": "v1",
    "ALLOWED_VERSIONS": ["v1"],
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}

SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=env.env_int(ENV, "JWT_ACCESS_MINUTES", 15)),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=env.env_int(ENV, "JWT_REFRESH_DAYS", 7)),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "UPDATE_LAST_LOGIN": True,
    "SIGNING_KEY": SECRET_KEY,
    "AUTH_HEADER_TYPES": ("Bearer",),
    # Tokens carry a hash of the password hash: changing the password invalidates every JWT.
    "CHECK_REVOKE_TOKEN": True,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "mlplatform API",
    "DESCRIPTION": "Experiment tracking, model registry and deployments. Errors share one envelope: "
    '{"error": {"code", "message", "details"}}.',
    "VERSION": __version__,
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    # Every operation documents the error envelope for the statuses it can answer (mlplatform.api).
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "mlplatform.api.document_error_responses",
    ],
    # One schema name per choice set: several serializers use them under different field names.
    "ENUM_NAME_OVERRIDES": {
        "RunStatusEnum": "experiments.models.RunStatus",
        "DeploymentStatusEnum": "registry.models.DeploymentStatus",
        "StageEnum": "registry.models.Stage",
    },
}

LOG_LEVEL = env.log_level(ENV)
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "mlplatform.request_log.JsonFormatter"}},
    "handlers": {"stdout": {"class": "logging.StreamHandler", "stream": "ext://sys.stdout", "formatter": "json"}},
    "root": {"handlers": ["stdout"], "level": LOG_LEVEL},
    "loggers": {
        # The request log replaces Django's per-4xx warnings and daphne's access lines.
        "django.request": {"level": "ERROR", "propagate": True},
        "django.server": {"level": "WARNING", "propagate": True},
        "daphne": {"level": "WARNING", "propagate": True},
    },
}
