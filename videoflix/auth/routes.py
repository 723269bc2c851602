"""The authentication endpoints of API.md."""

from datetime import UTC, datetime
from urllib.parse import urlsplit

import sqlalchemy as sa
from flask import Blueprint, abort, current_app, jsonify, request
from marshmallow import ValidationError

from videoflix.auth import emails, revocation, tokens
from videoflix.auth.limits import auth_limit, refresh_limit
from videoflix.auth.models import User, user_by_credentials
from videoflix.auth.schemas import EmailSchema, LoginUserSchema, NewPasswordSchema, RegisterSchema, UserSchema
from videoflix.errors import JSONError
from videoflix.extensions import db, limiter
from videoflix.validation import json_body, load_body

bp = Blueprint("auth", __name__, url_prefix="/api", template_folder="templates")

REGISTERED = "Registration successful. Please check your email to activate your account."
ACTIVATED = "Account successfully activated."
INVALID_ACTIVATION = "Invalid activation link."
INVALID_CREDENTIALS = "Invalid credentials"
NOT_ACTIVATED = "Account not activated. Please check your email."
REFRESH_MISSING = "Refresh token missing."
REFRESH_INVALID = "Refresh token invalid."
LOGGED_OUT = "Logout successful! All tokens will be deleted. Refresh token is now invalid."
RESET_SENT = "An email has been sent to reset your password."
RESET_DONE = "Your Password has been successfully reset."
INVALID_RESET = "Invalid or expired reset link."
CSRF_FAILED = "CSRF check failed: request not from a trusted origin."
CSRF_TOKEN_MISMATCH = "CSRF check failed: CSRF token mismatch."
TAKEN_EMAIL = "Please check your entries and try again."


@bp.post("/register/")
@limiter.limit(auth_limit)
def register():
    data = load_body(RegisterSchema())
    if db.session.scalar(sa.select(User.id).where(User.email == data["email"])) is not None:
        raise ValidationError({"email": [TAKEN_EMAIL]})
    user = User(email=data["email"], is_active=False)
    user.set_password(data["password"])
    db.session.add(user)
    try:
        db.session.commit()
    except sa.exc.IntegrityError:  # a concurrent registration of the same address
        db.session.rollback()
        raise ValidationError({"email": [TAKEN_EMAIL]}) from None
    emails.send_activation_email(user.id)
    return jsonify({"user": UserSchema().dump(user), "detail": REGISTERED}), 201


@bp.get("/activate/<uidb64>/<token>/")
def activate(uidb64, token):
    user = tokens.user_for_account_token(uidb64, token, tokens.ACTIVATION)
    if user is None or user.is_active or user.activated_at is not None:  # single-use for good
        raise JSONError(400, {"error": INVALID_ACTIVATION})
    user.is_active = True
    db.session.commit()
    return jsonify({"message": ACTIVATED})


@bp.post("/login/")
@limiter.limit(auth_limit)
def login():
    body = json_body(("email", "password"))
    email, password = body.get("email"), body.get("password")
    if not isinstance(email, str) or not isinstance(password, str):
        abort(401, INVALID_CREDENTIALS)
    user = user_by_credentials(email, password)
    if user is None:
        abort(401, INVALID_CREDENTIALS)
    if not user.is_active:
        abort(403, NOT_ACTIVATED)
    user.last_login = datetime.now(UTC)
    db.session.commit()
    response = jsonify({"detail": "Login successful", "user": LoginUserSchema().dump(user)})
    tokens.set_login_cookies(response, user)
    return response


@bp.post("/token/refresh/")
@limiter.limit(refresh_limit)
def refresh():
    encoded = request.cookies.get(current_app.config["JWT_REFRESH_COOKIE_NAME"])
    if not encoded:
        abort(400, REFRESH_MISSING)
    try:
        claims = tokens.refresh_claims(encoded)
    except tokens.InvalidToken:  # signature, expiry, revocation, user: the same 401
        abort(401, REFRESH_INVALID)
    access = tokens.new_access_token(claims["sub"], claims["ver"])
    response = jsonify({"detail": "Token refreshed", "access": access})
    tokens.set_access_cookie(response, access)
    return response


@bp.post("/logout/")
def logout():
    encoded = request.cookies.get(current_app.config["JWT_REFRESH_COOKIE_NAME"])
    if not encoded:
        abort(400, REFRESH_MISSING)
    try:
        refresh_claims = tokens.verified_claims(encoded, "refresh")
    except tokens.InvalidToken:  # already unusable: nothing left to revoke, the cookies still go
        refresh_claims = None
    access_claims = tokens.request_access_claims()
    revocation.revoke(*(claims for claims in (refresh_claims, access_claims) if claims))
    response = jsonify({"detail": LOGGED_OUT})
    tokens.clear_login_cookies(response)
    return response


@bp.post("/password_reset/")
@limiter.limit(auth_limit)
def password_reset():
    data = load_body(EmailSchema())
    emails.send_password_reset_email(data["email"])
    return jsonify({"detail": RESET_SENT})


@bp.post("/password_confirm/<uidb64>/<token>/")
@limiter.limit(auth_limit)
def password_confirm(uidb64, token):
    user = tokens.user_for_account_token(uidb64, token, tokens.PASSWORD_RESET)
    if user is None:
        raise JSONError(400, {"error": INVALID_RESET})
    data = load_body(NewPasswordSchema(email=user.email))
    user.set_password(data["new_password"])
    user.token_version += 1  # every refresh token issued before this is now refused
    db.session.commit()
    return jsonify({"detail": RESET_DONE})


# --- cross-cutting: CSRF for cookie-authenticated writes, sliding access, JWT errors ---


def _request_origin():
    origin = request.headers.get("Origin")
    if origin is None and request.referrer:
        parts = urlsplit(request.referrer)
        origin = f"{parts.scheme}://{parts.netloc}"
    return origin


def check_csrf():
    if not request.path.startswith("/api/") or request.method in ("GET", "HEAD", "OPTIONS"):
        return None
    cfg = current_app.config
    if not any(name in request.cookies for name in (cfg["JWT_ACCESS_COOKIE_NAME"], cfg["JWT_REFRESH_COOKIE_NAME"])):
        return None
    if _request_origin() not in cfg["CSRF_TRUSTED_ORIGINS"]:
        abort(403, CSRF_FAILED)
    header = request.headers.get(cfg["CSRF_HEADER_NAME"])
    if header is not None and header != request.cookies.get(cfg["CSRF_COOKIE_NAME"]):
        abort(403, CSRF_TOKEN_MISMATCH)
    return None


def init_app(app):
    app.before_request(check_csrf)
    app.after_request(tokens.slide_access_token)
