"""JSON error handlers for everything under /api/ (HTML stays the default elsewhere)."""

import logging

import redis
import sqlalchemy as sa
from flask import jsonify, request
from marshmallow import ValidationError
from werkzeug.exceptions import HTTPException, InternalServerError, SecurityError, ServiceUnavailable

from videoflix.extensions import db
from videoflix.storage.errors import StorageUnavailable

log = logging.getLogger(__name__)

MESSAGES = {
    400: "Bad request.",
    404: "Not found.",
    405: "Method not allowed.",
    413: "Request body too large.",
    429: "Too many requests. Please try again later.",
    500: "Internal server error.",
    503: "Service temporarily unavailable. Please try again shortly.",
}
UNKNOWN_HOST = "Unknown host."
RETRY_AFTER_SECONDS = 5
# A backend that is down or busy for a moment: the request may succeed if repeated.
UNAVAILABLE = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    sa.exc.OperationalError,
    StorageUnavailable,
)


class JSONError(HTTPException):
    """An API error whose body is given whole: API.md answers a few with {"error": ...}, not {"detail": ...}."""

    def __init__(self, code, body, headers=None):
        super().__init__(description=str(body))
        self.code = code
        self.body = body
        self.headers = headers or {}

    def get_headers(self, environ=None, scope=None):
        return [*super().get_headers(environ, scope), *self.headers.items()]


def is_api_request():
    return request.path.startswith("/api/")


def json_error(status, detail, headers=None):
    response = jsonify({"detail": detail})
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def handle_http_exception(error):
    if not is_api_request():
        return error
    if isinstance(error, JSONError):
        return jsonify(error.body), error.code, error.headers
    if request.method == "OPTIONS" and error.code in (404, 405):
        return "", 200  # a CORS preflight succeeds on every /api/ path; flask-cors adds its headers
    # Our own abort(code, description) messages are kept; Werkzeug's stock texts are replaced,
    # and so is Flask-Limiter's (it names the limit).
    detail = error.description
    if detail == type(error).description or error.code == 429:
        detail = MESSAGES.get(error.code, error.name)
    if isinstance(error, SecurityError):  # a Host outside TRUSTED_HOSTS (urls.py): not echoed back
        detail = UNKNOWN_HOST
    headers = {}
    if error.code == 405 and error.valid_methods:
        headers["Allow"] = ", ".join(error.valid_methods)
    return json_error(error.code, detail, headers)


def handle_validation_error(error):
    return jsonify(error.messages), 400


def handle_unavailable_backend(error):
    db.session.rollback()
    log.warning("Backend unavailable on %s %s: %s", request.method, request.path, error)
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS)}
    if is_api_request():
        return json_error(503, MESSAGES[503], headers)
    return ServiceUnavailable(retry_after=RETRY_AFTER_SECONDS)


def handle_unexpected_error(error):
    db.session.rollback()
    log.exception("Unhandled error on %s %s", request.method, request.path)
    if is_api_request():
        return json_error(500, MESSAGES[500])
    return InternalServerError()


def init_app(app):
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(ValidationError, handle_validation_error)
    for backend_error in UNAVAILABLE:
        app.register_error_handler(backend_error, handle_unavailable_backend)
    app.register_error_handler(Exception, handle_unexpected_error)
