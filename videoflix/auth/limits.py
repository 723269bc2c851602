"""Rate limits of the sign-in endpoints (API and staff admin), read from the config per request."""

from flask import current_app


def auth_limit():
    """Login, register, password reset and confirm: per client IP."""
    return current_app.config["RATELIMIT_AUTH"]


def refresh_limit():
    return current_app.config["RATELIMIT_REFRESH"]
