"""Account links (activation, password reset), JWT cookies, the one verifier of access and refresh
tokens, and the sliding access token."""

import base64
import binascii
import hashlib
import secrets
import time
from datetime import UTC, datetime
from functools import lru_cache, wraps
from types import MappingProxyType

import jwt as pyjwt
from flask import abort, current_app, g, request
from flask_jwt_extended import (
    create_access_token,
    create_refresh_token,
    set_access_cookies,
    set_refresh_cookies,
    unset_jwt_cookies,
)
from itsdangerous import BadSignature, URLSafeTimedSerializer

from videoflix.auth import revocation
from videoflix.auth.models import User
from videoflix.extensions import db
from videoflix.validation import parse_id

ACTIVATION = "activate"
PASSWORD_RESET = "password-reset"
NO_CREDENTIALS = "Authentication credentials were not provided."
TOKEN_INVALID = "Token is invalid or expired."


# --- uidb64: the user id as URL-safe base64 without padding (as Django does it) ---


def encode_uid(user_id):
    return base64.urlsafe_b64encode(str(user_id).encode()).rstrip(b"=").decode()


def decode_uid(uidb64):
    try:
        raw = base64.urlsafe_b64decode(uidb64 + "=" * (-len(uidb64) % 4))
        return parse_id(raw.decode("ascii"))
    except (binascii.Error, ValueError):
        return None


# --- single-use, time-limited account tokens ---


def _state_fingerprint(user, purpose):
    """What the token's action changes; once it changed, the token no longer matches."""
    state = f"activated:{user.activated_at is not None}" if purpose == ACTIVATION else user.password_hash
    return hashlib.sha256(state.encode()).hexdigest()[:16]


def _serializer(purpose):
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=f"videoflix-{purpose}")


def make_account_token(user, purpose):
    return _serializer(purpose).dumps([user.id, _state_fingerprint(user, purpose)])


def user_for_account_token(uidb64, token, purpose):
    """The user a valid, unexpired, unused link was made for; None otherwise."""
    user_id = decode_uid(uidb64)
    if user_id is None:
        return None
    try:
        token_user_id, fingerprint = _serializer(purpose).loads(
            token, max_age=current_app.config["ACCOUNT_TOKEN_MAX_AGE"]
        )
    except (BadSignature, ValueError, TypeError):
        return None
    user = db.session.get(User, user_id)
    if user is None or token_user_id != user.id or fingerprint != _state_fingerprint(user, purpose):
        return None
    return user


# --- JWT cookies ---


def new_access_token(user_id, token_version):
    """Tokens carry the user's token version: a password reset stops them from being renewed."""
    return create_access_token(identity=str(user_id), additional_claims={"ver": token_version})


def set_access_cookie(response, access):
    """The access token in its cookie, which lives exactly as long as the token."""
    max_age = int(current_app.config["JWT_ACCESS_TOKEN_EXPIRES"].total_seconds())
    set_access_cookies(response, access, max_age=max_age)


def set_login_cookies(response, user):
    set_access_cookie(response, new_access_token(user.id, user.token_version))
    refresh = create_refresh_token(identity=str(user.id), additional_claims={"ver": user.token_version})
    set_refresh_cookies(response, refresh, max_age=int(current_app.config["JWT_REFRESH_TOKEN_EXPIRES"].total_seconds()))
    response.set_cookie(
        current_app.config["CSRF_COOKIE_NAME"],
        secrets.token_urlsafe(32),
        max_age=current_app.config["JWT_REFRESH_TOKEN_EXPIRES"],
        secure=current_app.config["JWT_COOKIE_SECURE"],
        httponly=False,
        samesite="Lax",
    )


def clear_login_cookies(response):
    unset_jwt_cookies(response)
    response.delete_cookie(current_app.config["CSRF_COOKIE_NAME"], samesite="Lax")


# --- verification: one verifier for access and refresh tokens ---


class InvalidToken(Exception):
    """Not a valid, unexpired token of the expected type signed with our key."""


def verified_claims(encoded, expected_type):
    """The claims of a token that verifies, has not expired and is of `expected_type`."""
    cfg = current_app.config
    key = cfg.get("JWT_SECRET_KEY") or cfg["SECRET_KEY"]
    leeway = cfg["JWT_DECODE_LEEWAY"]
    try:
        claims = signed_claims(encoded, key, cfg["JWT_ALGORITHM"], leeway)
    except pyjwt.PyJWTError as error:
        raise InvalidToken(str(error)) from None
    if claims.get("type") != expected_type or claims["exp"] + leeway < time.time():
        raise InvalidToken("wrong type or expired")
    return claims


@lru_cache(maxsize=4096)
def signed_claims(encoded, key, algorithm, leeway):
    """The read-only claims of a token whose signature verifies; its expiry is checked per request.

    One PyJWT decode per token and process: flask-jwt-extended's verify_jwt_in_request parses a
    token four times, and even one decode was a quarter of the in-process cost of an authorised
    segment request (bench/serving.py). Keyed by the exact token and settings, bounded; bad tokens
    raise, so they are never remembered."""
    claims = pyjwt.decode(
        encoded,
        key,
        algorithms=[algorithm],
        leeway=leeway,
        options={"require": ["exp", "iat", "sub", "jti"], "verify_exp": False},
    )
    if parse_id(claims["sub"]) is None:
        raise pyjwt.exceptions.InvalidSubjectError("the subject is not a user id")
    return MappingProxyType(claims)


def refresh_claims(encoded):
    """Claims of a refresh token that is valid, not revoked, and whose user may still sign in."""
    claims = verified_claims(encoded, "refresh")
    if not revocation.is_live(claims):
        raise InvalidToken("refresh token revoked or its user can no longer sign in")
    return claims


def access_claims():
    """The claims of the request's live access-token cookie; 401 JSON otherwise."""
    encoded = request.cookies.get(current_app.config["JWT_ACCESS_COOKIE_NAME"])
    if not encoded:
        abort(401, NO_CREDENTIALS)
    try:
        claims = verified_claims(encoded, "access")
    except InvalidToken:
        abort(401, TOKEN_INVALID)
    if not revocation.access_token_is_live(encoded, claims):
        abort(401, TOKEN_INVALID)
    return claims


def request_access_claims():
    """The claims of the request's access cookie if its signature verifies, else None (for logout)."""
    encoded = request.cookies.get(current_app.config["JWT_ACCESS_COOKIE_NAME"])
    try:
        return verified_claims(encoded, "access") if encoded else None
    except InvalidToken:
        return None


def login_required(view):
    """Require a valid access-token cookie; remembers its claims for the sliding refresh."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        g.access_claims = access_claims()
        return view(*args, **kwargs)

    return wrapper


def slide_access_token(response):
    """Reissue an access cookie in the last third of its life, so watching never hits a 401. Only
    live tokens reach here (login_required checked), so the token's claims are the user's current ones."""
    claims = g.get("access_claims")
    if not claims or response.status_code >= 400:
        return response
    lifetime = current_app.config["JWT_ACCESS_TOKEN_EXPIRES"].total_seconds()
    remaining = claims["exp"] - datetime.now(UTC).timestamp()
    if remaining < lifetime / 3:
        set_access_cookie(response, new_access_token(claims["sub"], claims["ver"]))
    return response
