"""Configuration: the only module that reads the environment (and an optional `.env`)."""

import os
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

from dotenv import load_dotenv

BASE_DIR = Path(__file__).resolve().parent
load_dotenv(BASE_DIR / ".env")
# The embedded default's runtime data (database, queue, media, outbox); another folder lets a
# second instance run beside the first.
INSTANCE_DIR = Path(os.environ.get("INSTANCE_DIR") or BASE_DIR / "instance")

DEV_SECRET_KEY = "dev-only-insecure-key-do-not-use-in-production"
DEFAULT_ORIGINS = "http://127.0.0.1:5500,http://localhost:5500"


def _env(name, default=None):
    value = os.environ.get(name, "").strip()
    return value if value else default


def _flag(name, default):
    value = _env(name)
    if value is None:
        return default
    return value.lower() in ("1", "true", "yes", "on")


def _list(name, default):
    return [item.strip().rstrip("/") for item in _env(name, default).split(",") if item.strip()]


def database_url(url):
    """Normalise `postgres://` and driverless `postgresql://` URLs to the psycopg2 driver
    (SQLAlchemy 2.1 would pick psycopg 3, which is not installed)."""
    for scheme in ("postgres://", "postgresql://"):
        if url and url.startswith(scheme):
            return "postgresql+psycopg2://" + url[len(scheme) :]
    return url


class Config:
    APP_ENV = "development"
    DEBUG = False
    TESTING = False
    SECRET_KEY = _env("SECRET_KEY", DEV_SECRET_KEY)

    SQLALCHEMY_DATABASE_URI = database_url(_env("DATABASE_URL", f"sqlite:///{INSTANCE_DIR / 'videoflix.sqlite3'}"))
    REDIS_URL = _env("REDIS_URL")
    MEDIA_ROOT = _env("MEDIA_ROOT", str(INSTANCE_DIR / "media"))
    # S3_BUCKET set: media live in that S3-compatible bucket, and MEDIA_ROOT is only this machine's
    # scratch space (uploads arriving, transcode work). S3_ENDPOINT_URL unset means AWS.
    S3_BUCKET = _env("S3_BUCKET")
    S3_ENDPOINT_URL = _env("S3_ENDPOINT_URL")
    S3_ACCESS_KEY_ID = _env("S3_ACCESS_KEY_ID")
    S3_SECRET_ACCESS_KEY = _env("S3_SECRET_ACCESS_KEY")
    S3_REGION = _env("S3_REGION", "us-east-1")
    S3_PREFIX = _env("S3_PREFIX", "")
    # A replaced rendition version stays this long, for players and proxies that looked it up just
    # before the swap; each process remembers a video's published version for less (catalogue.py).
    RETIRED_VERSION_SECONDS = int(_env("RETIRED_VERSION_SECONDS", "60"))
    OUTBOX_DIR = str(INSTANCE_DIR / "outbox")
    HUEY_SQLITE_PATH = str(INSTANCE_DIR / "huey.sqlite3")
    # Without Redis: bumped by whatever ends a session, read by every web process per request.
    SESSIONS_EPOCH_FILE = str(INSTANCE_DIR / "sessions.epoch")
    HUEY_IMMEDIATE = False
    WORKER_THREADS = int(_env("WORKER_THREADS", "2"))
    # One more thread per worker process, only for segments viewers wait for (a seek ahead while a
    # film encodes): the queue's threads may all be in the middle of chunks.
    HURRY_LANE = _flag("HURRY_LANE", True)
    # A running job writes a heartbeat this often; three missed beats and another worker re-runs it.
    JOB_HEARTBEAT_SECONDS = float(_env("JOB_HEARTBEAT_SECONDS", "5"))
    CACHE_DIR = str(INSTANCE_DIR / "cache")
    PORT = int(_env("PORT", "8000"))
    # Where clients reach this API (e.g. https://api.videoflix.example): public URLs are built from
    # it, never from a request's Host header. TRUSTED_HOSTS: the host names requests may name (others
    # get 400; a leading dot allows subdomains, "*" any host); by default PUBLIC_URL's host, and
    # without either only loopback names (videoflix/urls.py). Production needs one of the two. Kept
    # as ALLOWED_HOSTS: Flask's own TRUSTED_HOSTS uses Werkzeug's matcher, which cannot match [::1].
    PUBLIC_URL = (_env("PUBLIC_URL") or "").rstrip("/") or None
    ALLOWED_HOSTS = _list("TRUSTED_HOSTS", "") or None
    # Behind PROXY_COUNT reverse proxies (nginx: 1), waitress takes the client's address, scheme and
    # host from their X-Forwarded-* headers, and only from a peer at TRUSTED_PROXY (by default
    # 127.0.0.1; "*" where nothing but the proxy can reach the app, as in docker-compose.yml).
    PROXY_COUNT = int(_env("PROXY_COUNT", "0"))
    TRUSTED_PROXY = _env("TRUSTED_PROXY", "127.0.0.1")
    WEB_THREADS = int(_env("WEB_THREADS", "8"))
    STAFF_TIME_ZONE = _env("STAFF_TIME_ZONE", "UTC")  # the admin's dates, e.g. Europe/Berlin
    LOG_FORMAT = _env("LOG_FORMAT", "plain")  # or "json": one object per line, with the request id
    # Prometheus metrics of `flask serve` and `flask worker` on this port (off when unset, and then
    # nothing is counted): keep it off the public network (docker-compose.yml: the internal
    # network, scraped by its prometheus).
    METRICS_PORT = int(_env("METRICS_PORT", "0")) or None
    # A segment asked for before its chunk is made (a seek ahead while a film encodes) is waited
    # for this long, then answered 503 with Retry-After; at most SEGMENT_WAITERS requests of a
    # process wait at once, so waiting viewers never hold every web thread.
    SEGMENT_WAIT_SECONDS = float(_env("SEGMENT_WAIT_SECONDS", "20"))
    SEGMENT_WAITERS = int(_env("SEGMENT_WAITERS", str(max(1, int(_env("WEB_THREADS", "8")) // 2))))

    FRONTEND_URL = _env("FRONTEND_URL", "http://127.0.0.1:5500").rstrip("/")
    CORS_ALLOWED_ORIGINS = _list("CORS_ALLOWED_ORIGINS", DEFAULT_ORIGINS)
    CSRF_TRUSTED_ORIGINS = _list("CSRF_TRUSTED_ORIGINS", _env("CORS_ALLOWED_ORIGINS", DEFAULT_ORIGINS))

    MAIL_SERVER = _env("MAIL_SERVER")
    MAIL_PORT = int(_env("MAIL_PORT", "25"))
    MAIL_USE_TLS = _flag("MAIL_USE_TLS", False)
    MAIL_USE_SSL = _flag("MAIL_USE_SSL", False)
    MAIL_USERNAME = _env("MAIL_USERNAME")
    MAIL_PASSWORD = _env("MAIL_PASSWORD")
    MAIL_SUPPRESS_SEND = False  # Flask-Mail would silently drop mail whenever TESTING is on
    MAIL_DEFAULT_SENDER = _env("MAIL_DEFAULT_SENDER", "Videoflix <noreply@videoflix.local>")

    JWT_ACCESS_TOKEN_EXPIRES = timedelta(minutes=int(_env("JWT_ACCESS_MINUTES", "15")))
    JWT_REFRESH_TOKEN_EXPIRES = timedelta(days=int(_env("JWT_REFRESH_DAYS", "1")))
    JWT_COOKIE_SECURE = _flag("JWT_COOKIE_SECURE", False)
    # One algorithm and leeway for the tokens flask-jwt-extended issues and for videoflix/auth/tokens.py,
    # which verifies them; the key is JWT_SECRET_KEY when set, else SECRET_KEY (as the extension does).
    JWT_ALGORITHM = "HS256"
    JWT_DECODE_LEEWAY = 0
    JWT_TOKEN_LOCATION = ["cookies"]
    JWT_ACCESS_COOKIE_NAME = "access_token"
    JWT_REFRESH_COOKIE_NAME = "refresh_token"
    JWT_ACCESS_COOKIE_PATH = "/"
    JWT_REFRESH_COOKIE_PATH = "/"
    JWT_COOKIE_SAMESITE = "Lax"
    JWT_SESSION_COOKIE = False
    # CSRF is the origin check plus the `csrftoken` cookie of API.md, not the extension's own scheme.
    JWT_COOKIE_CSRF_PROTECT = False
    CSRF_COOKIE_NAME = "csrftoken"
    CSRF_HEADER_NAME = "X-CSRFToken"
    SESSION_COOKIE_SAMESITE = "Lax"
    ACCOUNT_TOKEN_MAX_AGE = int(_env("ACCOUNT_TOKEN_HOURS", "24")) * 3600
    # A staff admin session ends after this long, or sooner by sign-out, reset, deactivation or role change.
    STAFF_SESSION_HOURS = float(_env("STAFF_SESSION_HOURS", "12"))

    RATELIMIT_ENABLED = _flag("RATELIMIT_ENABLED", True)
    RATELIMIT_AUTH = _env("RATELIMIT_AUTH", "10 per minute;100 per hour")
    RATELIMIT_REFRESH = _env("RATELIMIT_REFRESH", "30 per minute")
    # Players report watch progress every ~10 s; per signed-in user, generous for several tabs.
    RATELIMIT_PROGRESS = _env("RATELIMIT_PROGRESS", "60 per minute")

    FFMPEG_BINARY = _env("FFMPEG_BINARY")
    MAX_UPLOAD_MB = int(_env("MAX_UPLOAD_MB", "8192"))
    MAX_CONTENT_LENGTH = 2**20  # any request body but an admin upload (JSON bodies are tiny)
    # A resumable upload that nobody continues for this long is removed with its bytes.
    UPLOAD_EXPIRY_HOURS = float(_env("UPLOAD_EXPIRY_HOURS", "24"))
    # Per staff member: resumable uploads not yet saved as videos, and the bytes they hold on disk.
    MAX_OPEN_UPLOADS = int(_env("MAX_OPEN_UPLOADS", "5"))
    MAX_PENDING_UPLOAD_MB = int(_env("MAX_PENDING_UPLOAD_MB", "20480"))
    MEDIA_ACCEL_REDIRECT = _env("MEDIA_ACCEL_REDIRECT")
    # Per-rung x264 settings; see videoflix/media/ladder.py for the defaults.
    TRANSCODE_PRESET = _env("TRANSCODE_PRESET")
    TRANSCODE_TIMEOUT_FACTOR = float(_env("TRANSCODE_TIMEOUT_FACTOR", "10"))
    # After the fast ladder plays, replace it with the efficient one (per-title CRF).
    TRANSCODE_OPTIMISE = _flag("TRANSCODE_OPTIMISE", True)
    # The efficient ladder's x264 preset (its analysis and its encode), the bill against the bits;
    # unset: media/ladder.py's.
    EFFICIENT_PRESET = _env("EFFICIENT_PRESET")


class DevelopmentConfig(Config):
    pass


class ProductionConfig(Config):
    APP_ENV = "production"
    JWT_COOKIE_SECURE = _flag("JWT_COOKIE_SECURE", True)
    SESSION_COOKIE_SECURE = JWT_COOKIE_SECURE


class TestingConfig(Config):
    APP_ENV = "testing"
    TESTING = True
    HUEY_IMMEDIATE = True
    TRANSCODE_OPTIMISE = False  # tests of the second pass switch it on
    # Tests check what the second pass makes (grid, keyframes, codecs, the swap), not its bits
    # (bench/transcode.py measures those): x264 ultrafast instead of slower.
    EFFICIENT_PRESET = "ultrafast"
    RETIRED_VERSION_SECONDS = 0  # replaced versions go at once; tests of the grace set it
    RATELIMIT_ENABLED = False
    MAIL_SERVER = None
    JWT_COOKIE_SECURE = False


def waitress_options(settings):
    """How `flask serve` (and the tests) run waitress: its threads and, behind a reverse proxy,
    which peer's X-Forwarded-* headers it believes; from any other peer it drops them."""
    options = {"threads": settings["WEB_THREADS"], "clear_untrusted_proxy_headers": True}
    if settings["PROXY_COUNT"]:
        options.update(
            trusted_proxy=settings["TRUSTED_PROXY"],
            trusted_proxy_count=settings["PROXY_COUNT"],
            trusted_proxy_headers="x-forwarded-for x-forwarded-proto x-forwarded-host",
        )
    return options


def derived(settings):
    """Settings that follow from others. The factory applies them after any overrides (tests pass
    theirs into the factory), so they always agree with what the app really runs on."""
    redis_url = settings["REDIS_URL"]
    sqlite = settings["SQLALCHEMY_DATABASE_URI"].startswith("sqlite")
    public_url = settings["PUBLIC_URL"]
    values = {
        "PUBLIC_URL": public_url.rstrip("/") if public_url else None,
        "ALLOWED_HOSTS": settings["ALLOWED_HOSTS"] or ([urlsplit(public_url).hostname] if public_url else None),
        "MAX_UPLOAD_BYTES": settings["MAX_UPLOAD_MB"] * 2**20,  # admin uploads; other bodies: MAX_CONTENT_LENGTH
        "SQLALCHEMY_ENGINE_OPTIONS": {"connect_args": {"timeout": 30}} if sqlite else {"pool_pre_ping": True},
        "RATELIMIT_STORAGE_URI": redis_url or "memory://",
        "WAITRESS_OPTIONS": waitress_options(settings),
        "RATELIMIT_HEADERS_ENABLED": True,
    }
    if redis_url:
        values.update(CACHE_TYPE="RedisCache", CACHE_REDIS_URL=redis_url, CACHE_KEY_PREFIX="videoflix:")
    else:
        # Shared on disk so the worker process can invalidate what the web process cached.
        values.update(CACHE_TYPE="FileSystemCache", CACHE_DIR=settings["CACHE_DIR"], CACHE_THRESHOLD=0)
    return values


# The test suite runs against these when set (CI sets both); SQLite and no Redis otherwise.
TEST_DATABASE_URL = database_url(_env("TEST_DATABASE_URL"))
TEST_REDIS_URL = _env("TEST_REDIS_URL")

CONFIGS = {"development": DevelopmentConfig, "production": ProductionConfig, "testing": TestingConfig}


def get_config(name=None):
    """The config class for APP_ENV (development unless set)."""
    return CONFIGS[name or _env("APP_ENV", "development")]
