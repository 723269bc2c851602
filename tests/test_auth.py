import email
import gc
import json
import re
import threading
import time
import urllib.error
import urllib.request
from datetime import timedelta
from email import policy
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
from aiosmtpd.controller import Controller
from flask_jwt_extended import create_access_token

from tests.conftest import PASSWORD, SPA_ORIGIN, create_user, free_port, make_app, running_app, spa_client
from videoflix.auth import tokens
from videoflix.auth.models import User
from videoflix.extensions import db, limiter

NEW_PASSWORD = "another-Lamp-42-river"


class Inbox:
    """A real SMTP server on 127.0.0.1 that keeps what it receives."""

    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(email.message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"

    def link(self, index=-1):
        text = self.messages[index].get_body(("plain",)).get_content()
        return re.search(r"http://\S+", text).group(0)


@pytest.fixture
def smtp():
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield inbox, controller.port
    controller.stop()


@pytest.fixture
def mail_app(app_config, smtp):
    _inbox, port = smtp
    with running_app({**app_config, "MAIL_SERVER": "127.0.0.1", "MAIL_PORT": port}) as app:
        yield app


@pytest.fixture
def mail_client(mail_app):
    return spa_client(mail_app)


def register(client, email="new@example.com", password=PASSWORD, **extra):
    body = {"email": email, "password": password, "confirmed_password": password, "privacy_policy": "on", **extra}
    return client.post("/api/register/", json=body)


def link_params(link):
    query = parse_qs(urlsplit(link).query)
    return query["uid"][0], query["token"][0]


def cookie(client, name):
    found = client.get_cookie(name)
    return found.value if found else None


def set_cookie_header(response, name):
    return next(value for value in response.headers.getlist("Set-Cookie") if value.startswith(f"{name}="))


# --- the full journeys, with mail through a real SMTP server ---


def test_register_activate_login_refresh_logout_journey(mail_client, smtp):
    inbox, _port = smtp
    response = register(mail_client, email="  New@Example.com ")
    assert response.status_code == 201
    body = response.get_json()
    assert body["user"]["email"] == "new@example.com"
    assert set(body) == {"user", "detail"}
    assert set(body["user"]) == {"id", "email"}

    assert len(inbox.messages) == 1
    message = inbox.messages[0]
    assert message["Subject"] == "Activate Your Videoflix Account"
    assert message["To"] == "new@example.com"
    link = inbox.link()
    assert link.startswith("http://127.0.0.1:5500/pages/auth/activate.html?uid=")
    assert link in message.get_body(("html",)).get_content().replace("&amp;", "&")
    uid, token = link_params(link)
    assert "/" not in token

    assert mail_client.post("/api/login/", json={"email": "new@example.com", "password": PASSWORD}).status_code == 403

    response = mail_client.get(f"/api/activate/{uid}/{token}/")
    assert response.status_code == 200
    assert response.get_json() == {"message": "Account successfully activated."}
    again = mail_client.get(f"/api/activate/{uid}/{token}/")
    assert again.status_code == 400
    assert again.get_json() == {"error": "Invalid activation link."}

    response = mail_client.post("/api/login/", json={"email": "NEW@example.com", "password": PASSWORD})
    assert response.status_code == 200
    assert response.get_json() == {
        "detail": "Login successful",
        "user": {"id": body["user"]["id"], "username": "new@example.com"},
    }
    access = set_cookie_header(response, "access_token")
    refresh = set_cookie_header(response, "refresh_token")
    csrf = set_cookie_header(response, "csrftoken")
    for header in (access, refresh):
        assert "HttpOnly" in header and "SameSite=Lax" in header and "Path=/" in header
        assert "Secure" not in header
    assert "HttpOnly" not in csrf and "SameSite=Lax" in csrf
    assert "Max-Age=900" in access and "Max-Age=86400" in refresh

    assert mail_client.get("/api/video/").status_code == 200

    old_refresh = cookie(mail_client, "refresh_token")
    response = mail_client.post("/api/token/refresh/")
    assert response.status_code == 200
    assert response.get_json()["detail"] == "Token refreshed"
    assert response.get_json()["access"] == cookie(mail_client, "access_token")

    csrf_value = cookie(mail_client, "csrftoken")
    response = mail_client.post("/api/logout/", headers={"X-CSRFToken": csrf_value})
    assert response.status_code == 200
    assert response.get_json() == {
        "detail": "Logout successful! All tokens will be deleted. Refresh token is now invalid."
    }
    for name in ("access_token", "refresh_token", "csrftoken"):
        assert cookie(mail_client, name) is None

    mail_client.set_cookie("refresh_token", old_refresh)
    response = mail_client.post("/api/token/refresh/")
    assert response.status_code == 401
    assert response.get_json() == {"detail": "Refresh token invalid."}


def test_password_reset_journey_revokes_old_sessions(mail_app, mail_client, smtp):
    inbox, _port = smtp
    create_user(mail_app, email="viewer@example.com")
    assert (
        mail_client.post("/api/login/", json={"email": "viewer@example.com", "password": PASSWORD}).status_code == 200
    )
    old_refresh = cookie(mail_client, "refresh_token")

    response = mail_client.post("/api/password_reset/", json={"email": "Viewer@example.com"})
    assert response.status_code == 200
    assert response.get_json() == {"detail": "An email has been sent to reset your password."}
    assert inbox.messages[-1]["Subject"] == "Reset Your Videoflix Password"
    link = inbox.link()
    assert link.startswith("http://127.0.0.1:5500/pages/auth/confirm_password.html?uid=")
    uid, token = link_params(link)

    body = {"new_password": NEW_PASSWORD, "confirm_password": NEW_PASSWORD}
    response = mail_client.post(f"/api/password_confirm/{uid}/{token}/", json=body)
    assert response.status_code == 200
    assert response.get_json() == {"detail": "Your Password has been successfully reset."}

    reused = mail_client.post(f"/api/password_confirm/{uid}/{token}/", json=body)
    assert reused.status_code == 400
    assert reused.get_json() == {"error": "Invalid or expired reset link."}

    old = mail_client.post("/api/login/", json={"email": "viewer@example.com", "password": PASSWORD})
    assert old.status_code == 401
    mail_client.set_cookie("refresh_token", old_refresh)
    assert mail_client.post("/api/token/refresh/").status_code == 401

    new = mail_client.post("/api/login/", json={"email": "viewer@example.com", "password": NEW_PASSWORD})
    assert new.status_code == 200
    assert mail_client.post("/api/token/refresh/").status_code == 200


def test_reset_for_unknown_email_answers_the_same_and_sends_nothing(mail_client, smtp):
    inbox, _port = smtp
    response = mail_client.post("/api/password_reset/", json={"email": "nobody@example.com"})
    assert response.status_code == 200
    assert response.get_json() == {"detail": "An email has been sent to reset your password."}
    assert inbox.messages == []


def test_mail_goes_to_the_outbox_without_a_mail_server(app, client):
    assert register(client).status_code == 201
    saved = list((app.config["OUTBOX_DIR"] and __import__("pathlib").Path(app.config["OUTBOX_DIR"])).glob("*.eml"))
    assert len(saved) == 1
    message = email.message_from_bytes(saved[0].read_bytes(), policy=policy.default)
    assert message["Subject"] == "Activate Your Videoflix Account"
    assert "/pages/auth/activate.html?uid=" in message.get_body(("plain",)).get_content()


# --- registration errors ---


def test_register_accepts_password2_alias(client):
    body = {"email": "alias@example.com", "password": PASSWORD, "password2": PASSWORD}
    assert client.post("/api/register/", json=body).status_code == 201


def test_register_never_returns_a_token(client):
    body = register(client).get_json()
    assert "token" not in str(body).lower()


def test_register_with_mismatched_passwords(client):
    response = register(client, confirmed_password="something-else-9")
    assert response.status_code == 400
    assert response.get_json() == {"confirmed_password": ["Passwords do not match."]}


def test_register_with_invalid_email(client):
    response = register(client, email="not-an-email")
    assert response.status_code == 400
    assert response.get_json() == {"email": ["Not a valid email address."]}


def test_register_with_missing_fields(client):
    response = client.post("/api/register/", json={})
    assert response.status_code == 400
    assert response.get_json() == {
        "email": ["Missing data for required field."],
        "password": ["Missing data for required field."],
        "confirmed_password": ["Missing data for required field."],
    }


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("short1", "This password is too short. It must contain at least 8 characters."),
        ("8451296730", "This password is entirely numeric."),
        ("password123", "This password is too common."),
        ("electronic", "This password is too common."),
        ("weakuser.name", "The password is too similar to the email."),
    ],
)
def test_register_with_weak_password(client, password, message):
    response = register(client, email="weakuser.name@example.com", password=password)
    assert response.status_code == 400
    assert message in response.get_json()["password"]


def test_register_with_taken_email_does_not_confirm_the_account(app, client):
    create_user(app, email="taken@example.com")
    response = register(client, email="Taken@Example.com")
    assert response.status_code == 400
    assert response.get_json() == {"email": ["Please check your entries and try again."]}


# --- what one anonymous request can cost ---

HOSTILE_PASSWORD = "Ab1." * 25_000  # 100,000 characters
DOTTED_EMAIL = ".".join(["ab"] * 60) + "@" + ".".join(["cd"] * 15) + ".com"  # 228 characters, 76 parts
TOO_LONG = ["This password is too long. It must contain at most 4096 bytes."]


def cpu_seconds_of(call, runs=3):
    """The least CPU time this thread spends on `call` over `runs` calls (the test client runs the
    app in this thread), with the garbage collector paused: a collection or a stolen time slice
    once is noise, while a password hash costs its hundreds of milliseconds on every call."""
    spent = []
    gc.collect()
    gc.disable()
    try:
        for _ in range(runs):
            started = time.thread_time()
            result = call()
            spent.append(time.thread_time() - started)
    finally:
        gc.enable()
    return result, min(spent)


@pytest.mark.parametrize("confirmation", ["different", "same"])
def test_a_hostile_registration_is_answered_at_once(client, confirmation):
    body = {"email": DOTTED_EMAIL, "password": HOSTILE_PASSWORD,
            "confirmed_password": HOSTILE_PASSWORD if confirmation == "same" else HOSTILE_PASSWORD[:-1]}  # fmt: skip
    client.post("/api/register/", json=body)  # the first request of a process loads the common passwords
    response, cpu = cpu_seconds_of(lambda: client.post("/api/register/", json=body))
    assert response.status_code == 400
    expected = {"password": TOO_LONG}
    if confirmation == "different":
        expected["confirmed_password"] = ["Passwords do not match."]
    assert response.get_json() == expected
    assert cpu < 0.05, f"{cpu * 1000:.0f} ms of CPU"


def test_a_password_just_under_the_cap_is_still_checked_quickly(client):
    password = ("ab." * 1400)[:4000]
    body = {"email": DOTTED_EMAIL, "password": password, "confirmed_password": password + "x"}
    client.post("/api/register/", json=body)
    response, cpu = cpu_seconds_of(lambda: client.post("/api/register/", json=body))
    assert response.status_code == 400
    assert response.get_json() == {"confirmed_password": ["Passwords do not match."]}
    assert cpu < 0.05, f"{cpu * 1000:.0f} ms of CPU"


def test_a_hostile_password_confirmation_is_answered_at_once(app, client):
    uid, token = _reset_link(app, create_user(app, email=DOTTED_EMAIL))
    body = {"new_password": HOSTILE_PASSWORD, "confirm_password": HOSTILE_PASSWORD[:-1]}
    client.post(f"/api/password_confirm/{uid}/{token}/", json=body)
    response, cpu = cpu_seconds_of(lambda: client.post(f"/api/password_confirm/{uid}/{token}/", json=body))
    assert response.status_code == 400
    assert response.get_json() == {"confirm_password": ["Passwords do not match."]}
    same = {"new_password": HOSTILE_PASSWORD, "confirm_password": HOSTILE_PASSWORD}
    response, cpu_same = cpu_seconds_of(lambda: client.post(f"/api/password_confirm/{uid}/{token}/", json=same))
    assert response.status_code == 400 and response.get_json() == {"new_password": TOO_LONG}
    assert max(cpu, cpu_same) < 0.05, f"{cpu * 1000:.0f} / {cpu_same * 1000:.0f} ms of CPU"


def test_an_over_long_password_at_login_is_refused_without_hashing(app, client):
    create_user(app)
    response, cpu = cpu_seconds_of(
        lambda: client.post("/api/login/", json={"email": "viewer@example.com", "password": HOSTILE_PASSWORD})
    )
    assert response.status_code == 401 and response.get_json() == {"detail": "Invalid credentials"}
    assert cpu < 0.05, f"{cpu * 1000:.0f} ms of CPU"


def test_health_answers_while_four_hostile_registrations_run(app, serve_app):
    """The audit's attack: four hostile bodies at once took every waitress thread for seconds."""
    base = serve_app(app)
    body = json.dumps({"email": DOTTED_EMAIL, "password": HOSTILE_PASSWORD, "confirmed_password": "x"}).encode()

    def hostile():
        request = urllib.request.Request(f"{base}/api/register/", data=body, method="POST",
                                         headers={"Content-Type": "application/json"})  # fmt: skip
        for _ in range(5):
            try:
                urllib.request.urlopen(request, timeout=30)
            except urllib.error.HTTPError as error:
                assert error.code == 400
                error.close()

    attackers = [threading.Thread(target=hostile) for _ in range(4)]
    for attacker in attackers:
        attacker.start()
    started = time.monotonic()
    with urllib.request.urlopen(f"{base}/api/health/", timeout=30) as health:
        assert health.status == 200
    waited = time.monotonic() - started
    for attacker in attackers:
        attacker.join(timeout=60)
    assert waited < 2, f"/api/health/ answered after {waited:.1f} s"


# --- activation errors ---


@pytest.mark.parametrize("uid", ["!!!", "eHl6", "OTk5"])  # junk, "xyz", "999"
def test_activation_with_bad_uid(app, client, uid):
    create_user(app, active=False)
    response = client.get(f"/api/activate/{uid}/whatever/")
    assert response.status_code == 400
    assert response.get_json() == {"error": "Invalid activation link."}


def test_activation_with_bad_or_expired_token(app, client):
    user_id = create_user(app, active=False)
    with app.app_context():
        user = db.session.get(User, user_id)
        token = tokens.make_account_token(user, tokens.ACTIVATION)
        reset_token = tokens.make_account_token(user, tokens.PASSWORD_RESET)
    uid = tokens.encode_uid(user_id)
    assert client.get(f"/api/activate/{uid}/{token[:-2]}xx/").status_code == 400
    assert client.get(f"/api/activate/{uid}/{reset_token}/").status_code == 400  # wrong purpose
    app.config["ACCOUNT_TOKEN_MAX_AGE"] = -1
    response = client.get(f"/api/activate/{uid}/{token}/")
    assert response.status_code == 400
    assert response.get_json() == {"error": "Invalid activation link."}


def _set_active(app, user_id, active):
    with app.app_context():
        db.session.get(User, user_id).is_active = active
        db.session.commit()


def test_an_activation_link_works_once_whatever_happens_to_the_account_later(app, client):
    user_id = create_user(app, active=False)
    with app.app_context():
        token = tokens.make_account_token(db.session.get(User, user_id), tokens.ACTIVATION)
    link = f"/api/activate/{tokens.encode_uid(user_id)}/{token}/"
    assert client.get(link).get_json() == {"message": "Account successfully activated."}
    _set_active(app, user_id, False)  # staff deactivate the account
    response = client.get(link)
    assert response.status_code == 400 and response.get_json() == {"error": "Invalid activation link."}
    assert client.post("/api/login/", json={"email": "viewer@example.com", "password": PASSWORD}).status_code == 403
    _set_active(app, user_id, True)
    _set_active(app, user_id, False)
    assert client.get(link).status_code == 400


def test_an_account_activated_by_staff_cannot_be_activated_again_by_its_old_link(app, client):
    user_id = create_user(app, active=False)
    with app.app_context():
        token = tokens.make_account_token(db.session.get(User, user_id), tokens.ACTIVATION)
    _set_active(app, user_id, True)
    _set_active(app, user_id, False)
    assert client.get(f"/api/activate/{tokens.encode_uid(user_id)}/{token}/").status_code == 400


def test_a_reset_link_works_once(app, client):
    uid, token = _reset_link(app, create_user(app))
    body = {"new_password": NEW_PASSWORD, "confirm_password": NEW_PASSWORD}
    assert client.post(f"/api/password_confirm/{uid}/{token}/", json=body).status_code == 200
    again = client.post(f"/api/password_confirm/{uid}/{token}/", json={**body})
    assert again.status_code == 400 and again.get_json() == {"error": "Invalid or expired reset link."}


def test_uid_is_urlsafe_base64_of_the_id_without_padding():
    assert tokens.encode_uid(1) == "MQ"
    assert tokens.decode_uid("MQ") == 1
    assert tokens.decode_uid("MTI") == 12
    assert tokens.decode_uid("@@") is None


# --- login, refresh, logout errors ---


@pytest.mark.parametrize(
    "body",
    [
        {"email": "viewer@example.com", "password": "wrong-password-1"},
        {"email": "unknown@example.com", "password": PASSWORD},
        {"email": "viewer@example.com"},
        {"email": "not an email", "password": PASSWORD},
        {"email": 5, "password": PASSWORD},
    ],
)
def test_login_with_bad_credentials(app, client, body):
    create_user(app)
    response = client.post("/api/login/", json=body)
    assert response.status_code == 401
    assert response.get_json() == {"detail": "Invalid credentials"}


def test_login_with_inactive_account_is_refused(app, client):
    create_user(app, active=False)
    response = client.post("/api/login/", json={"email": "viewer@example.com", "password": PASSWORD})
    assert response.status_code == 403
    assert response.get_json() == {"detail": "Account not activated. Please check your email."}


def test_login_with_inactive_account_and_wrong_password_reveals_nothing(app, client):
    create_user(app, active=False)
    response = client.post("/api/login/", json={"email": "viewer@example.com", "password": "nope-nope-1"})
    assert response.status_code == 401


def test_login_updates_last_login(app, auth):
    auth.signed_in()
    with app.app_context():
        assert db.session.scalar(db.select(User.last_login)) is not None


def test_refresh_without_cookie(client):
    response = client.post("/api/token/refresh/")
    assert response.status_code == 400
    assert response.get_json() == {"detail": "Refresh token missing."}


def test_refresh_with_malformed_token(client):
    client.set_cookie("refresh_token", "not-a-jwt")
    response = client.post("/api/token/refresh/")
    assert response.status_code == 401
    assert response.get_json() == {"detail": "Refresh token invalid."}


def test_refresh_with_an_access_token_is_refused(client, auth):
    auth.signed_in()
    client.set_cookie("refresh_token", cookie(client, "access_token"))
    assert client.post("/api/token/refresh/").status_code == 401


def test_refresh_for_deactivated_or_deleted_user_is_refused(app, client, auth):
    auth.signed_in()
    with app.app_context():
        db.session.execute(db.update(User).values(is_active=False))
        db.session.commit()
    assert client.post("/api/token/refresh/").status_code == 401
    with app.app_context():
        db.session.execute(db.delete(User))
        db.session.commit()
    assert client.post("/api/token/refresh/").status_code == 401


def test_expired_refresh_token_is_refused(app_config):
    with running_app({**app_config, "JWT_REFRESH_TOKEN_EXPIRES": timedelta(seconds=1)}) as app:
        client = spa_client(app)
        create_user(app)
        login = client.post("/api/login/", json={"email": "viewer@example.com", "password": PASSWORD})
        assert login.status_code == 200
        time.sleep(2.1)
        assert client.post("/api/token/refresh/").status_code == 401


def test_logout_without_cookie(client):
    response = client.post("/api/logout/")
    assert response.status_code == 400
    assert response.get_json() == {"detail": "Refresh token missing."}


# --- password reset errors ---


@pytest.mark.parametrize("body", [{}, {"email": "not-an-email"}])
def test_password_reset_needs_a_valid_email(client, body):
    response = client.post("/api/password_reset/", json=body)
    assert response.status_code == 400
    assert list(response.get_json()) == ["email"]


def _reset_link(app, user_id):
    with app.app_context():
        user = db.session.get(User, user_id)
        return tokens.encode_uid(user_id), tokens.make_account_token(user, tokens.PASSWORD_RESET)


def test_password_confirm_with_mismatch(app, client):
    uid, token = _reset_link(app, create_user(app))
    response = client.post(
        f"/api/password_confirm/{uid}/{token}/", json={"new_password": NEW_PASSWORD, "confirm_password": "x" * 12}
    )
    assert response.status_code == 400
    assert response.get_json() == {"confirm_password": ["Passwords do not match."]}


def test_password_confirm_with_weak_password(app, client):
    uid, token = _reset_link(app, create_user(app))
    response = client.post(
        f"/api/password_confirm/{uid}/{token}/", json={"new_password": "123", "confirm_password": "123"}
    )
    assert response.status_code == 400
    assert response.get_json() == {
        "new_password": [
            "This password is too short. It must contain at least 8 characters.",
            "This password is entirely numeric.",
            "This password is too common.",
        ]
    }


def test_password_confirm_with_invalid_link(app, client):
    create_user(app)
    body = {"new_password": NEW_PASSWORD, "confirm_password": NEW_PASSWORD}
    response = client.post("/api/password_confirm/MQ/invalid-token/", json=body)
    assert response.status_code == 400
    assert response.get_json() == {"error": "Invalid or expired reset link."}


# --- CSRF and CORS ---


def test_cookie_authenticated_post_from_untrusted_origin_is_refused(client, auth):
    auth.signed_in()
    response = client.post("/api/logout/", headers={"Origin": "http://evil.example"})
    assert response.status_code == 403
    assert response.get_json() == {"detail": "CSRF check failed: request not from a trusted origin."}


def test_cookie_authenticated_post_checks_referer_without_origin(client, auth):
    auth.signed_in()
    client.environ_base.pop("HTTP_ORIGIN")
    response = client.post("/api/token/refresh/", headers={"Referer": "http://evil.example/page"})
    assert response.status_code == 403
    response = client.post("/api/token/refresh/", headers={"Referer": f"{SPA_ORIGIN}/pages/video_list.html"})
    assert response.status_code == 200


def test_mismatched_csrf_header_is_refused(client, auth):
    auth.signed_in()
    response = client.post("/api/logout/", headers={"X-CSRFToken": "forged"})
    assert response.status_code == 403
    assert response.get_json() == {"detail": "CSRF check failed: CSRF token mismatch."}


@pytest.mark.parametrize(
    "path",
    ["/api/login/", "/api/video/", "/api/video/1/480p/index.m3u8", "/api/video/1/480p/000.ts", "/api/not/a/route/"],
)
def test_preflight_from_allowed_origin(client, path):
    response = client.options(
        path,
        headers={
            "Origin": "http://localhost:5500",
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "content-type,x-csrftoken,range",
        },
    )
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == "http://localhost:5500"
    assert response.headers["Access-Control-Allow-Credentials"] == "true"
    allowed = response.headers["Access-Control-Allow-Headers"].lower()
    assert {"content-type", "x-csrftoken", "range"} <= set(allowed.replace(" ", "").split(","))


def test_preflight_from_other_origin_gets_no_cors_headers(client):
    response = client.options(
        "/api/login/", headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"}
    )
    assert "Access-Control-Allow-Origin" not in response.headers


def test_cors_exposes_length_and_range_headers(client, auth):
    auth.signed_in()
    response = client.get("/api/video/")
    assert response.headers["Access-Control-Allow-Origin"] == SPA_ORIGIN
    exposed = {h.strip().lower() for h in response.headers["Access-Control-Expose-Headers"].split(",")}
    assert {"content-length", "content-range"} <= exposed


# --- sliding access token ---


def access_token(app, expires_in, version=0, user_id=1):
    """An access token as login issues it, but with the lifetime left that a test needs."""
    with app.app_context():
        return create_access_token(str(user_id), expires_delta=expires_in, additional_claims={"ver": version})


def test_access_token_near_expiry_is_renewed(app, client, auth):
    auth.signed_in()
    old = access_token(app, timedelta(minutes=2))
    client.set_cookie("access_token", old)
    response = client.get("/api/video/")
    assert response.status_code == 200
    assert cookie(client, "access_token") != old
    assert "Max-Age=900" in set_cookie_header(response, "access_token")


def test_fresh_access_token_is_not_reissued(client, auth):
    auth.signed_in()
    response = client.get("/api/video/")
    assert response.status_code == 200
    assert not any(h.startswith("access_token=") for h in response.headers.getlist("Set-Cookie"))


def test_access_token_issued_before_a_password_reset_is_refused_and_not_renewed(app, client, auth):
    auth.signed_in()
    with app.app_context():
        db.session.execute(db.update(User).values(token_version=User.token_version + 1))
        db.session.commit()
    client.set_cookie("access_token", access_token(app, timedelta(minutes=2), version=0))
    response = client.get("/api/video/")
    assert response.status_code == 401  # its session ended with the reset (tests/test_sessions.py)
    assert response.get_json() == {"detail": "Token is invalid or expired."}
    assert not any(h.startswith("access_token=") for h in response.headers.getlist("Set-Cookie"))


def test_expired_access_token_is_401(app, client, auth):
    auth.signed_in()
    client.set_cookie("access_token", access_token(app, timedelta(seconds=-5)))
    response = client.get("/api/video/")
    assert response.status_code == 401
    assert response.get_json() == {"detail": "Token is invalid or expired."}


def test_an_accepted_access_token_is_refused_once_it_expires(app, client, auth):
    """Verified tokens are remembered per process; their expiry is still checked on every request."""
    auth.signed_in()
    short_lived = access_token(app, timedelta(seconds=2))
    client.set_cookie("access_token", short_lived)
    assert client.get("/api/video/").status_code == 200
    expires_at = jwt.decode(short_lived, options={"verify_signature": False})["exp"]
    time.sleep(max(0.0, expires_at - time.time()) + 0.05)
    client.set_cookie("access_token", short_lived)  # not the renewed cookie the first answer set
    response = client.get("/api/video/")
    assert response.status_code == 401
    assert response.get_json() == {"detail": "Token is invalid or expired."}


def test_an_accepted_access_token_is_refused_under_another_secret_key(app_config, client, auth):
    auth.signed_in()
    token = cookie(client, "access_token")
    assert client.get("/api/video/").status_code == 200
    rotated = make_app({**app_config, "SECRET_KEY": "a-rotated-secret-key-that-is-long-enough-987"})
    other_client = rotated.test_client()
    other_client.set_cookie("access_token", token)
    response = other_client.get("/api/video/")
    assert response.status_code == 401
    assert response.get_json() == {"detail": "Token is invalid or expired."}


def test_refresh_token_in_the_access_cookie_is_401(client, auth):
    auth.signed_in()
    client.set_cookie("access_token", cookie(client, "refresh_token"))
    response = client.get("/api/video/")
    assert response.status_code == 401
    assert response.get_json() == {"detail": "Token is invalid or expired."}


# --- rate limits ---


def test_login_is_rate_limited(app_config):
    with running_app({**app_config, "RATELIMIT_ENABLED": True, "RATELIMIT_AUTH": "3 per minute"}) as app:
        # No request pays for the limiter's global hook (default limits, which do not exist) ...
        assert all(getattr(hook, "__self__", None) is not limiter for hook in app.before_request_funcs[None])
        # ... and the limits of the routes still apply.
        client = app.test_client()
        body = {"email": "a@example.com", "password": "wrong-password"}
        codes = [client.post("/api/login/", json=body).status_code for _ in range(4)]
        assert codes == [401, 401, 401, 429]
        response = client.post("/api/login/", json=body)
        assert response.get_json() == {"detail": "Too many requests. Please try again later."}
