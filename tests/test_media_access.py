"""Hundreds of attempts to get media bytes the requester may not have, counted: credentials that are
missing, forged, expired, of the wrong kind or of an ended session, and paths that try to step out
of a video's published files. Every attempt must be refused, and no protected byte may leak."""

import base64
import json
from datetime import timedelta

import jwt
import pytest
import sqlalchemy as sa
from flask_jwt_extended import create_access_token, create_refresh_token

from tests.conftest import PASSWORD, create_user, spa_client
from tests.helpers import import_video, only_video
from videoflix.auth.models import User
from videoflix.extensions import db
from videoflix.videos.models import Status, Video

REFUSED = {400, 401, 403, 404, 405}


def media_paths(video_id):
    base = f"/api/video/{video_id}"
    return [
        f"{base}/", f"{base}/master.m3u8", f"{base}/480p/index.m3u8", f"{base}/480p/000.ts", f"{base}/480p/000.ts/",
        f"{base}/720p/index.m3u8", f"{base}/1080p/000.ts", f"{base}/storyboard.vtt",
        f"{base}/storyboard/sprite-000.jpg",
    ]  # fmt: skip


def b64(data):
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


@pytest.fixture
def library(app, runner, clips):
    """A ready video, one that is not ready, and the bytes that must never leak."""
    assert import_video(runner, clips["small"], "Protected").exit_code == 0
    video = only_video(app)
    with app.app_context():
        pending = Video(title="Pending", category="Drama", status=Status.PENDING, source_path=video.source_path)
        db.session.add(pending)
        db.session.commit()
        pending_id = pending.id
    return video, pending_id


def session_cookie(app, email):
    """An access cookie from a real login of a new viewer; the client that holds it."""
    create_user(app, email=email)
    client = spa_client(app)
    assert client.post("/api/login/", json={"email": email, "password": PASSWORD}).status_code == 200
    return client.get_cookie("access_token").value, client


def ended_sessions(app):
    """Access cookies of sessions that ended: logout, password reset, deactivation, deletion."""
    ended = {}
    token, client = session_cookie(app, "logged-out@example.com")
    assert client.post("/api/logout/").status_code == 200
    ended["after logout"] = token
    token, _client = session_cookie(app, "reset@example.com")
    with app.app_context():
        user = db.session.scalar(sa.select(User).where(User.email == "reset@example.com"))
        user.set_password("another-Lamp-42-river")
        user.token_version += 1  # what a password confirm does
        db.session.commit()
    ended["after a password reset"] = token
    token, _client = session_cookie(app, "deactivated@example.com")
    with app.app_context():
        db.session.scalar(sa.select(User).where(User.email == "deactivated@example.com")).is_active = False
        db.session.commit()
    ended["deactivated user"] = token
    token, _client = session_cookie(app, "deleted@example.com")
    with app.app_context():
        db.session.delete(db.session.scalar(sa.select(User).where(User.email == "deleted@example.com")))
        db.session.commit()
    ended["deleted user"] = token
    return ended


def forged_credentials(app):
    with app.app_context():
        user_id = create_user(app, email="victim@example.com")
        version = db.session.get(User, user_id).token_version
        key = app.config["SECRET_KEY"]
        claims = {"sub": str(user_id), "type": "access", "ver": version, "jti": "x", "fresh": False}
        forged = {
            "no cookie": None,
            "garbage": "not-a-token",
            "expired": create_access_token(
                str(user_id), additional_claims={"ver": version}, expires_delta=timedelta(seconds=-30)
            ),  # fmt: skip
            "wrong key": jwt.encode({**claims, "exp": 4_000_000_000}, "another-key-" * 4, algorithm="HS256"),
            "alg none": f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64({**claims, 'exp': 4_000_000_000})}.",
            "refresh token as access": create_refresh_token(str(user_id), additional_claims={"ver": version}),
            "future version": jwt.encode({**claims, "ver": version + 7, "exp": 4_000_000_000}, key, "HS256"),
        }
        valid = jwt.encode({**claims, "exp": 4_000_000_000, "ver": version + 1}, key, "HS256")
        header, _payload, signature = valid.split(".")
        forged["tampered payload"] = f"{header}.{b64({**claims, 'exp': 4_000_000_000})}.{signature}"
    return forged


TRAVERSALS = [
    "/api/video/{id}/480p/..%2f..%2f..%2fsources",
    "/api/video/{id}/480p/%2e%2e%2fmaster.m3u8",
    "/api/video/{id}/480p/..%5c..%5cmaster.m3u8",
    "/api/video/{id}/480p/000.ts%00",
    "/api/video/{id}/480p/000.ts%00.jpg",
    "/api/video/{id}/..%2f{id}/480p/000.ts",
    "/api/video/{id}/480p/0000000000000000000000.ts",
    "/api/video/{id}/480p/%D9%A0%D9%A0%D9%A0.ts",  # Arabic-Indic digits
    "/api/video/%D9%A1/480p/000.ts",
    "/api/video/{id}%2f/480p/000.ts",
    "/api/video/99999999999999999999/480p/000.ts",
    "/api/video/-1/480p/000.ts",
    "/api/video/{id}/480p/-1.ts",
    "/api/video/{id}/480p/index.m3u8%2f..%2f..%2fmaster.m3u8",
    "/api/video/{id}/storyboard/..%2fmaster.m3u8",
    "/api/video/{id}/storyboard/sprite-000.jpg%00",
    "/api/video/{id}/subs/1/..%2f..%2fmaster.m3u8",
    "/api/video/{id}/subtitles/..%2f1.vtt",
    "/media/thumbnails/..%2f..%2fsources%2fx.mp4",
    "/media/thumbnails/%2e%2e%2fhls",
    "/media/hls/{id}/",
    "/media/sources/",
    "/protected-media/hls/{id}/",
    "/static/..%2f..%2fconfig.py",
    "/static/../videoflix/__init__.py",
]


def test_no_byte_of_media_leaks_to_anyone_who_may_not_have_it(app, library):
    video, pending_id = library
    _token, viewer = session_cookie(app, "viewer@example.com")
    protected = [viewer.get(path).data for path in media_paths(video.id)[1:5]]  # what a viewer may have
    assert all(protected) and all(viewer.get(path).status_code == 200 for path in media_paths(video.id)[1:5])

    attempts = []
    credentials = {**forged_credentials(app), **ended_sessions(app)}
    for name, token in credentials.items():
        client = app.test_client()
        client.environ_base["HTTP_ORIGIN"] = "http://127.0.0.1:5500"
        if token is not None:
            client.set_cookie("access_token", token)
        for path in media_paths(video.id) + media_paths(pending_id) + media_paths(999):
            attempts.append((name, path, client.get(path)))
    for path in media_paths(pending_id) + media_paths(999) + media_paths(0):  # a viewer, videos not there
        attempts.append(("viewer, other video", path, viewer.get(path)))
    for template in TRAVERSALS:
        path = template.format(id=video.id)
        attempts.append(("viewer, traversal", path, viewer.get(path)))
        attempts.append(("anonymous, traversal", path, app.test_client().get(path)))

    assert len(attempts) >= 200
    # Werkzeug merges a doubled slash with a redirect to the canonical path, which the same checks guard.
    redirected = [
        (path, response.headers["Location"]) for _n, path, response in attempts if response.status_code == 308
    ]
    assert redirected == [(f"/api/video/{video.id}%2f/480p/000.ts",
                           f"http://localhost/api/video/{video.id}/480p/000.ts")] * 2  # fmt: skip
    let_through = [(name, path, response.status_code) for name, path, response in attempts
                   if response.status_code not in REFUSED | {308}]  # fmt: skip
    assert let_through == []
    leaked = sum(len(chunk) for _n, _p, response in attempts for chunk in protected if chunk in response.data)
    assert leaked == 0
    for name, path, response in attempts:
        if path.startswith("/api/") and response.status_code != 308:
            assert response.is_json, (name, path)
