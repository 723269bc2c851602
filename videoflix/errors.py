"""JSON error handlers for everything under /api/ (HTML stays the default elsewhere)."""

import logging

from flask import flash, jsonify, redirect, request
from marshmallow import ValidationError
from werkzeug.exceptions import HTTPException, InternalServerError

from videoflix.extensions import db

log = logging.getLogger(__name__)

MESSAGES = {
    400: "Bad request.",
    404: "Not found.",
    405: "Method not allowed.",
    413: "Request body too large.",
    429: "Too many requests. Please try again later.",
    500: "Internal server error.",
}


class JSONError(HTTPException):
    """An API error whose body is given whole: API.md answers a few with {"error": ...}, not {"detail": ...}."""

    def __init__(self, code, body):
        super().__init__(description=str(body))
        self.code = code
        self.body = body


def is_api_request():
    return request.path.startswith("/api/")


def json_error(status, detail, headers=None):
    response = jsonify({"detail": detail})
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def handle_http_exception(error):
    if error.code == 413 and request.path.startswith("/admin/"):
        flash(f"The upload is larger than the limit of {request.max_content_length // 2**20} MB.", "error")
        return redirect(request.url)
    if not is_api_request():
        return error
    if isinstance(error, JSONError):
        return jsonify(error.body), error.code
    if request.method == "OPTIONS" and error.code in (404, 405):
        return "", 200  # a CORS preflight succeeds on every /api/ path; flask-cors adds its headers
    # Our own abort(code, description) messages are kept; Werkzeug's stock texts are replaced,
    # and so is Flask-Limiter's (it names the limit).
    detail = error.description
    if detail == type(error).description or error.code == 429:
        detail = MESSAGES.get(error.code, error.name)
    headers = {}
    if error.code == 405 and error.valid_methods:
        headers["Allow"] = ", ".join(error.valid_methods)
    return json_error(error.code, detail, headers)


def handle_validation_error(error):
    return jsonify(error.messages), 400


def handle_unexpected_error(error):
    db.session.rollback()
    log.exception("Unhandled error on %s %s", request.method, request.path)
    if is_api_request():
        return json_error(500, MESSAGES[500])
    return InternalServerError()


def init_app(app):
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(ValidationError, handle_validation_error)
    app.register_error_handler(Exception, handle_unexpected_error)
