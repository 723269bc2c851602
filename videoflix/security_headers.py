"""Security headers on every response, and a Content-Security-Policy that lets the pages people open
in a browser (the staff admin, the API docs) run only the app's own scripts and styles.

Inline scripts of the admin carry a per-request nonce (Flask-Admin's csp_nonce_generator and our
templates); Flask-Admin's templates also hold two inline event handlers (a delete confirmation, the
filter menu), allowed by their exact hashes and nothing else inline. Style attributes stay allowed
(`style-src-attr`): the templates set widths with them, and they cannot run code."""

import base64
import hashlib
import secrets

from flask import current_app, g, request

# Rendered values of the `onclick` attributes in Flask-Admin's Bootstrap 4 templates; its list
# actions add one each (admin.py names them through inline_handlers_of_actions).
FLASK_ADMIN_HANDLERS = (
    "return faHelpers.safeConfirm('Are you sure you want to delete this record?');",
    "return false;",
)
INLINE_HANDLERS = "videoflix_inline_handlers"
PAGE_PREFIXES = ("/admin", "/api/docs")
# JSON, playlists and segments are never documents: nothing may run in them or frame them.
RESOURCE_POLICY = "default-src 'none'; frame-ancestors 'none'"


def _hash_source(text):
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def allow_inline_handlers(app, handlers):
    """Let the admin's pages run these exact inline event handlers (by their hashes)."""
    allowed = app.extensions.setdefault(INLINE_HANDLERS, {})
    for handler in (*FLASK_ADMIN_HANDLERS, *handlers):
        allowed.setdefault(handler, _hash_source(handler))


def csp_nonce():
    """This request's nonce (one per response: every tag of a page carries the same one)."""
    if "csp_nonce" not in g:
        g.csp_nonce = secrets.token_urlsafe(18)
    return g.csp_nonce


def page_policy(nonce):
    hashes = " ".join(current_app.extensions.get(INLINE_HANDLERS, {}).values())
    return (
        "default-src 'self'; "
        f"script-src 'self' 'nonce-{nonce}' 'unsafe-hashes' {hashes}; "
        f"style-src 'self' 'nonce-{nonce}'; style-src-attr 'unsafe-inline'; "
        "img-src 'self' data: blob:; media-src 'self' blob:; font-src 'self' data:; "
        "connect-src 'self'; worker-src 'self' blob:; object-src 'none'; "
        "base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
    )


def add_security_headers(response):
    headers = response.headers
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "same-origin")
    headers.setdefault("X-Frame-Options", "DENY")
    is_page = request.path.startswith(PAGE_PREFIXES)
    headers.setdefault("Content-Security-Policy", page_policy(csp_nonce()) if is_page else RESOURCE_POLICY)
    return response


def init_app(app):
    app.after_request(add_security_headers)
