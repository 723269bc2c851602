"""Who is signed in to the staff admin: its own session (the SPA's cookie JWTs are for the API).

The session cookie is signed and stateless, so what it says is checked against the server on every
admin request: the staff member must still be active and staff, with the token version the session
was opened with (a password reset, a deactivation or a role change moves it on), within the
session's lifetime, and the session's id must not have been revoked by a sign-out. All of that is
read afresh per request, so a copied cookie stops working on every web process at once."""

import secrets
import time

from flask import current_app, g, session

from videoflix.auth import revocation
from videoflix.auth.models import User
from videoflix.extensions import db

STAFF_SESSION_KEY = "staff"
SESSION_ID_PREFIX = "staff-session:"  # revoked ids share the API tokens' store


def _lifetime():
    return current_app.config["STAFF_SESSION_HOURS"] * 3600


def sign_in(user):
    """Open a staff session for `user` in a fresh cookie."""
    session.clear()
    session[STAFF_SESSION_KEY] = {
        "id": user.id,
        "ver": user.token_version,
        "sid": secrets.token_urlsafe(16),
        "iat": int(time.time()),
    }
    g.pop("current_staff", None)


def sign_out():
    """End this staff session everywhere: its id is revoked until it would have expired anyway."""
    claims = _session_claims()
    session.clear()
    g.pop("current_staff", None)
    if claims is not None:
        revocation.revoke({"jti": SESSION_ID_PREFIX + claims["sid"], "exp": claims["iat"] + _lifetime()})


def _session_claims():
    claims = session.get(STAFF_SESSION_KEY)
    if not isinstance(claims, dict) or not all(isinstance(claims.get(k), int) for k in ("id", "ver", "iat")):
        return None
    return claims if isinstance(claims.get("sid"), str) else None


def _staff_of(claims):
    if claims is None or claims["iat"] + _lifetime() < time.time():
        return None
    user = db.session.get(User, claims["id"])
    if user is None or not user.is_staff or not revocation.user_accepts(user, claims):
        return None
    if revocation.is_revoked(SESSION_ID_PREFIX + claims["sid"]):
        return None
    return user


def current_staff():
    """The signed-in staff member, or None (signed out, expired, ended, deactivated, no longer staff)."""
    if "current_staff" not in g:
        g.current_staff = _staff_of(_session_claims())
    return g.current_staff
