"""Who is signed in to the staff admin: its own session (the SPA's cookie JWTs are for the API)."""

from flask import session

from videoflix.auth.models import User
from videoflix.extensions import db

STAFF_SESSION_KEY = "staff_user_id"


def current_staff():
    """The signed-in staff member, or None (signed out, deactivated, or no longer staff)."""
    user_id = session.get(STAFF_SESSION_KEY)
    user = db.session.get(User, user_id) if user_id else None
    return user if user is not None and user.is_active and user.is_staff else None
