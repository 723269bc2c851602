"""Sessions end when they should: after a logout, a password reset, a deactivation or a deletion the
old access cookie is refused at once on every authorised request (media included), in every app
process, and is never renewed."""

import statistics
import time
from datetime import timedelta

import pytest
import sqlalchemy as sa
from flask_jwt_extended import create_access_token

from tests.conftest import PASSWORD, create_user, make_app, spa_client
from tests.helpers import STAFF, admin_login, csrf_token, import_video, only_video
from videoflix.auth import tokens
from videoflix.auth.models import User
from videoflix.extensions import db

TOKEN_INVALID = {"detail": "Token is invalid or expired."}
TOO_DEEP = "Request body is nested too deeply."
BAD_TEXT = "Request body contains text that cannot be stored (a NUL or a lone surrogate)."
NEW_PASSWORD = "another-Lamp-42-river"


@pytest.fixture
def video(app, runner, clips):
    assert import_video(runner, clips["small"], "Short", "Drama").exit_code == 0
    return only_video(app)


def authorised_paths(video_id):
    """Everything an access cookie opens: the detail, the master, a media playlist, a segment (both forms)."""
    base = f"/api/video/{video_id}"
    return [f"{base}/", f"{base}/master.m3u8", f"{base}/480p/index.m3u8", f"{base}/480p/000.ts", f"{base}/480p/000.ts/"]


def renewal_window_token(app, user_id):
    """An access token as login issues it, but in the last third of its life (so it would be renewed)."""
    with app.app_context():
        version = db.session.get(User, user_id).token_version
        return create_access_token(str(user_id), expires_delta=timedelta(minutes=2), additional_claims={"ver": version})


def renews(response):
    return any(header.startswith("access_token=") for header in response.headers.getlist("Set-Cookie"))


def replay(client, token, path):
    client.set_cookie("access_token", token)
    return client.get(path)


# --- the four ways a session ends, each through the public interface staff or viewers use ---


def end_by_logout(app, viewer, token, user_id):
    viewer.set_cookie("access_token", token)  # the cookie the browser holds when it logs out
    response = viewer.post("/api/logout/", headers={"X-CSRFToken": viewer.get_cookie("csrftoken").value})
    assert response.status_code == 200


def end_by_password_reset(app, viewer, token, user_id):
    with app.app_context():
        link_token = tokens.make_account_token(db.session.get(User, user_id), tokens.PASSWORD_RESET)
    body = {"new_password": NEW_PASSWORD, "confirm_password": NEW_PASSWORD}
    response = viewer.post(f"/api/password_confirm/{tokens.encode_uid(user_id)}/{link_token}/", json=body)
    assert response.status_code == 200


def _staff(app):
    create_user(app, email=STAFF, staff=True)
    staff = app.test_client()
    assert admin_login(staff).status_code == 302
    return staff


def end_by_deactivation(app, viewer, token, user_id):
    staff = _staff(app)
    data = {"action": "deactivate", "rowid": [user_id], "csrf_token": csrf_token(staff, "/admin/user/")}
    assert staff.post("/admin/user/action/", data=data).status_code == 302
    with app.app_context():
        assert db.session.get(User, user_id).is_active is False


def end_by_deletion(app, viewer, token, user_id):
    staff = _staff(app)
    data = {"id": user_id, "csrf_token": csrf_token(staff, "/admin/user/")}
    assert staff.post("/admin/user/delete/", data=data).status_code == 302
    with app.app_context():
        assert db.session.get(User, user_id) is None


ENDINGS = [end_by_logout, end_by_password_reset, end_by_deactivation, end_by_deletion]


@pytest.mark.parametrize("end_session", ENDINGS, ids=lambda fn: fn.__name__)
def test_an_ended_session_is_refused_everywhere_at_once_and_never_renewed(app, video, end_session):
    user_id = create_user(app)
    viewer = spa_client(app)
    assert viewer.post("/api/login/", json={"email": "viewer@example.com", "password": PASSWORD}).status_code == 200
    token = renewal_window_token(app, user_id)
    for path in authorised_paths(video.id):  # accepted (and remembered as live) while the session lasts
        response = replay(viewer, token, path)
        assert response.status_code == 200, path
        assert renews(response), path

    end_session(app, viewer, token, user_id)

    attacker = spa_client(app)
    for path in authorised_paths(video.id):
        response = replay(attacker, token, path)
        assert response.status_code == 401, path
        assert response.get_json() == TOKEN_INVALID
        assert not renews(response), path
    assert replay(attacker, token, "/api/video/").status_code == 401


def test_a_second_app_process_refuses_an_ended_session_at_once(app, app_config, video):
    """Two app instances sharing the database and the store (and Redis when set), as two web
    processes do: the second one remembered the token as live, and still refuses it at once."""
    user_id = create_user(app)
    viewer = spa_client(app)
    assert viewer.post("/api/login/", json={"email": "viewer@example.com", "password": PASSWORD}).status_code == 200
    token = viewer.get_cookie("access_token").value
    other_process = spa_client(make_app(app_config))
    segment = f"/api/video/{video.id}/480p/000.ts"
    assert replay(other_process, token, segment).status_code == 200
    end_by_logout(app, viewer, token, user_id)
    response = replay(other_process, token, segment)
    assert response.status_code == 401
    assert response.get_json() == TOKEN_INVALID


def test_logout_revokes_the_access_token_it_was_sent_with(app, auth, client, video):
    auth.signed_in()
    token = client.get_cookie("access_token").value
    assert client.post("/api/logout/").status_code == 200
    assert replay(client, token, f"/api/video/{video.id}/").status_code == 401
    auth.login()  # a new session of the same user works
    assert client.get(f"/api/video/{video.id}/").status_code == 200


def test_a_reactivated_account_does_not_revive_its_old_sessions(app, video):
    user_id = create_user(app)
    token = renewal_window_token(app, user_id)
    with app.app_context():
        user = db.session.get(User, user_id)
        user.is_active = False
        db.session.commit()
        user.is_active = True
        db.session.commit()
    assert replay(spa_client(app), token, f"/api/video/{video.id}/").status_code == 401


def test_a_token_of_a_deleted_user_is_refused_for_whoever_gets_the_id_next(app, video):
    """SQLite gives the highest deleted id to the next row: the old token must not open that account."""
    old_id = create_user(app, email="gone@example.com")
    token = renewal_window_token(app, old_id)
    with app.app_context():
        db.session.execute(sa.delete(User).where(User.id == old_id))
        db.session.commit()
    time.sleep(1.1)  # the token was issued in an earlier second than the next account joins
    create_user(app, email="next@example.com")
    assert replay(spa_client(app), token, f"/api/video/{video.id}/").status_code == 401


def test_a_token_for_a_user_that_never_existed_is_refused(app, video):
    with app.app_context():
        forged = create_access_token("4242", additional_claims={"ver": 0})
    response = replay(spa_client(app), forged, f"/api/video/{video.id}/480p/000.ts")
    assert response.status_code == 401
    assert response.get_json() == TOKEN_INVALID


def test_refresh_after_logout_issues_nothing(app, auth, client):
    auth.signed_in()
    refresh = client.get_cookie("refresh_token").value
    assert client.post("/api/logout/").status_code == 200
    client.set_cookie("refresh_token", refresh)
    response = client.post("/api/token/refresh/")
    assert response.status_code == 401
    assert not renews(response)


# --- no account enumeration by timing ---


def _login_seconds(client, email):
    """CPU seconds the server spends on one login (the test client runs it in this thread): the
    work that decides the answer's time, without the noise of whatever else the machine runs."""
    started = time.thread_time()
    response = client.post("/api/login/", json={"email": email, "password": "not-the-password-9"})
    elapsed = time.thread_time() - started
    assert response.status_code == 401
    return elapsed


def test_login_takes_as_long_for_an_unknown_email_as_for_a_wrong_password(app, client):
    """Medians of 30 interleaved tries each: an attacker without the password cannot tell the two apart."""
    create_user(app)
    _login_seconds(client, "viewer@example.com")  # warm-up
    known, unknown = [], []
    for _ in range(30):
        known.append(_login_seconds(client, "viewer@example.com"))
        unknown.append(_login_seconds(client, "nobody@example.com"))
    ratio = statistics.median(unknown) / statistics.median(known)
    assert 0.9 <= ratio <= 1.1, f"unknown/known login time {ratio:.2f}"


# --- odd input answers 4xx JSON, never a 500 ---

HUGE_ID = "99999999999999999999"


@pytest.mark.parametrize(
    "path",
    [
        f"/api/video/{HUGE_ID}/",
        f"/api/video/{HUGE_ID}/master.m3u8",
        f"/api/video/{HUGE_ID}/480p/index.m3u8",
        f"/api/video/{HUGE_ID}/480p/000.ts",
        f"/api/video/{HUGE_ID}/480p/000.ts/",
        "/api/video/2147483648/",  # one past the largest id the database holds
        "/api/video/0/",
        "/api/video/%D9%A1/",  # ARABIC-INDIC DIGIT ONE: not video 1
        "/api/video/%EF%BC%91/480p/000.ts",  # FULLWIDTH DIGIT ONE
    ],
)
def test_ids_outside_ascii_digits_or_the_database_range_are_json_404(auth, client, video, path):
    auth.signed_in()
    response = client.get(path)
    assert response.status_code == 404
    assert response.get_json() == {"detail": "Not found."}


def test_video_one_is_still_video_one(auth, client, video):
    auth.signed_in()
    assert client.get(f"/api/video/{video.id}/").status_code == 200


@pytest.mark.parametrize("path", ["/api/login/", "/api/register/", "/api/password_reset/"])
@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ("[" * 1000, TOO_DEEP),
        ("[" * 100_000 + "]" * 100_000, TOO_DEEP),
        ('{"email": ' + "[" * 20 + "1" + "]" * 20 + "}", TOO_DEEP),
        ('{"email": "\\ud800@example.com", "password": "x"}', BAD_TEXT),
    ],
)
def test_deep_or_unstorable_json_is_400(client, path, body, detail):
    response = client.post(path, data=body, content_type="application/json")
    assert response.status_code == 400
    assert response.get_json() == {"detail": detail}


@pytest.mark.parametrize("field", ["email", "password"])
@pytest.mark.parametrize("text", ["\\ud800", "\\udfff", "a\\u0000b"])
@pytest.mark.parametrize("path", ["/api/login/", "/api/register/"])
def test_lone_surrogates_and_nul_in_credentials_are_400(client, path, field, text):
    fields = {"email": "viewer@example.com", "password": PASSWORD, "confirmed_password": PASSWORD}
    fields[field] = fields[field] + text
    body = "{" + ", ".join(f'"{name}": "{value}"' for name, value in fields.items()) + "}"
    response = client.post(path, data=body, content_type="application/json")
    assert response.status_code == 400
    assert response.get_json() == {"detail": BAD_TEXT}


def test_activation_link_with_an_enormous_uid_is_invalid(client):
    uid = tokens.encode_uid(HUGE_ID)
    response = client.get(f"/api/activate/{uid}/whatever/")
    assert response.status_code == 400
    assert response.get_json() == {"error": "Invalid activation link."}


def test_a_token_whose_subject_is_not_a_storable_id_is_401(app, client, video):
    with app.app_context():
        odd = [create_access_token(subject, additional_claims={"ver": 0}) for subject in (HUGE_ID, "١", "-1")]
    for token in odd:
        response = replay(client, token, f"/api/video/{video.id}/")
        assert response.status_code == 401
        assert response.get_json() == TOKEN_INVALID


def test_search_with_a_nul_is_400(auth, client):
    auth.signed_in()
    response = client.get("/api/video/?q=a%00b")
    assert response.status_code == 400
    assert response.get_json() == {"q": ["Contains a character that is not allowed."]}


# --- only the upload forms take large bodies ---


def test_admin_pages_other_than_the_upload_forms_take_small_bodies_only(app):
    staff = app.test_client()
    response = staff.post("/admin/login/", data={"email": "x" * (2 * 2**20), "password": "y"})
    assert response.status_code == 413
    create_user(app, email=STAFF, staff=True)
    assert admin_login(staff).status_code == 302
    response = staff.post("/admin/user/action/", data={"action": "activate", "rowid": ["1" * (2 * 2**20)]})
    assert response.status_code == 413


def test_an_unreachable_redis_refuses_with_503_json_not_a_pass(app, app_config, video):
    """The revocation check cannot be skipped: without its store the answer is a clear 503."""
    user_id = create_user(app)
    token = renewal_window_token(app, user_id)
    cut_off = spa_client(make_app({**app_config, "REDIS_URL": "redis://127.0.0.1:1/0"}))
    response = replay(cut_off, token, f"/api/video/{video.id}/480p/000.ts")
    assert response.status_code == 503
    assert response.get_json() == {"detail": "Service temporarily unavailable. Please try again shortly."}
    assert response.headers["Retry-After"] == "5"


# --- staff admin sessions end like viewers' sessions ---

SUPERUSER = "boss@example.com"


def admin_cookie(client):
    return client.get_cookie("session").value


def with_cookie(app, value):
    """Another browser (or another web process's client) holding a copy of a session cookie."""
    client = app.test_client()
    client.set_cookie("session", value)
    return client


def sees_the_admin(client):
    response = client.get("/admin/video/")
    return response.status_code == 200


def staff_end_by_admin_logout(app, staff, staff_id):
    data = {"csrf_token": csrf_token(staff, "/admin/")}
    assert staff.post("/admin/logout/", data=data).status_code == 302


def staff_end_by_password_reset(app, staff, staff_id):
    end_by_password_reset(app, spa_client(app), None, staff_id)


def staff_end_by_deactivation(app, staff, staff_id):
    _superuser_changes(app, staff_id, {"is_staff": "y"})  # "active" unticked, still staff


def staff_end_by_role_change(app, staff, staff_id):
    boss = _superuser_changes(app, staff_id, {"is_active": "y"})  # staff role removed, account left active
    _superuser_changes(app, staff_id, {"is_active": "y", "is_staff": "y"}, boss)  # and granted again


def _superuser_changes(app, user_id, fields, boss=None):
    if boss is None:
        create_user(app, email=SUPERUSER, staff=True, superuser=True)
        boss = app.test_client()
        assert admin_login(boss, email=SUPERUSER).status_code == 302
    url = f"/admin/user/edit/?id={user_id}"
    response = boss.post(url, data={"csrf_token": csrf_token(boss, url), **fields})
    assert response.status_code == 302, response.get_data(as_text=True)
    return boss


STAFF_ENDINGS = [staff_end_by_admin_logout, staff_end_by_password_reset, staff_end_by_deactivation,
                 staff_end_by_role_change]  # fmt: skip


@pytest.mark.parametrize("end_session", STAFF_ENDINGS, ids=lambda fn: fn.__name__)
def test_an_ended_staff_session_is_refused_on_every_process_even_from_a_copied_cookie(app, end_session):
    staff_id = create_user(app, email=STAFF, staff=True)
    staff = app.test_client()
    assert admin_login(staff).status_code == 302
    copied = admin_cookie(staff)
    other_process = make_app(app.config)  # another web process on the same database and store
    assert sees_the_admin(with_cookie(app, copied)) and sees_the_admin(with_cookie(other_process, copied))

    end_session(app, staff, staff_id)

    for process in (app, other_process):
        response = with_cookie(process, copied).get("/admin/video/")
        assert response.status_code == 302 and response.headers["Location"].startswith("/admin/login/")
    assert not sees_the_admin(staff)
    with app.app_context():
        user = db.session.get(User, staff_id)
        still_staff = user.is_staff and user.is_active
    if still_staff and end_session is not staff_end_by_password_reset:
        assert admin_login(staff).status_code == 302 and sees_the_admin(staff)  # a new sign-in works


def test_a_staff_session_ends_after_its_lifetime(app):
    create_user(app, email=STAFF, staff=True)
    staff = app.test_client()
    assert admin_login(staff).status_code == 302
    app.config["STAFF_SESSION_HOURS"] = -1
    assert not sees_the_admin(staff)


def test_a_forged_or_old_style_admin_cookie_opens_nothing(app):
    staff_id = create_user(app, email=STAFF, staff=True)
    serializer = app.session_interface.get_signing_serializer(app)  # signed with the app's real key
    old_style = serializer.dumps({"staff_user_id": staff_id})
    malformed = serializer.dumps({"staff": {"id": staff_id, "ver": "0", "sid": 1, "iat": "x"}})
    for value in (old_style, malformed):
        assert not sees_the_admin(with_cookie(app, value))
