"""Which hosts requests may name, and external URLs.

External URLs (posters, storyboards, subtitles, cache keys) come from PUBLIC_URL when it is set,
never from a request's Host header, which anyone can write; without it (the embedded default) from
the request, whose host is checked first: against TRUSTED_HOSTS (ALLOWED_HOSTS here), by default
PUBLIC_URL's host, and without either only the loopback names, as Django does with debug on."""

from flask import current_app, request, url_for
from werkzeug.exceptions import SecurityError
from werkzeug.sansio.utils import host_is_trusted

LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "[::1]")


def host_name(host):
    """The name part of a Host header value (`[::1]:8000` -> `[::1]`, `a.example:80` -> `a.example`)."""
    if host.startswith("["):
        return host[: host.find("]") + 1]
    return host.partition(":")[0]


def is_allowed(host, allowed):
    """True when `host` is well formed and names one of `allowed` (any port; ".example.com" also
    allows its subdomains; "*" allows every well-formed host)."""
    if not host or not host_is_trusted(host.lower(), None):  # Werkzeug's syntax check only
        return False
    name = host_name(host.lower())
    for entry in allowed:
        entry = entry.lower()
        if entry == "*" or name == entry or (entry.startswith(".") and (name == entry[1:] or name.endswith(entry))):
            return True
    return False


# Answered the same whatever the Host: what container and load-balancer health checks call, by
# the address they know (127.0.0.1:8000), not by the name clients use.
ANY_HOST_PATHS = ("/api/health/",)


def check_host():
    """Refuse (400 "Unknown host.") a request whose Host header names no allowed host."""
    if request.path in ANY_HOST_PATHS:
        return
    allowed = current_app.config["ALLOWED_HOSTS"] or LOOPBACK_HOSTS
    if not is_allowed(request.headers.get("Host", ""), allowed):
        raise SecurityError("Host not allowed")


def init_app(app):
    app.before_request_funcs.setdefault(None, []).insert(0, check_host)  # before anything else


def public_base():
    """Scheme and host of this API as clients reach it, without a trailing slash."""
    return current_app.config["PUBLIC_URL"] or request.host_url.rstrip("/")


def external_url(endpoint, **values):
    return public_base() + url_for(endpoint, **values)
