"""External URLs (posters, storyboards, subtitles, cache keys) come from PUBLIC_URL when it is set,
never from a request's Host header, which anyone can write; without it (the embedded default) from
the request, whose host production checks against TRUSTED_HOSTS."""

from flask import current_app, request, url_for


def public_base():
    """Scheme and host of this API as clients reach it, without a trailing slash."""
    return current_app.config["PUBLIC_URL"] or request.host_url.rstrip("/")


def external_url(endpoint, **values):
    return public_base() + url_for(endpoint, **values)
