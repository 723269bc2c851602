"""Log lines a machine can read: plain by default, one JSON object per line with LOG_FORMAT=json.
Every line carries the request id of the request it belongs to: taken from the proxy's
`X-Request-ID` when it is a plain token, otherwise made here, returned in the response's
`X-Request-ID`, and carried into every task the request queues (and the tasks those queue), so a
worker's lines name the upload that started them.

One access line per request: method, route template (never the path's values, nor the query
string, which may hold tokens), status, duration and size. No line carries a cookie, a token or a
password: request bodies and headers are never logged."""

import contextvars
import json
import logging
import re
import sys
import time
import uuid

from flask import g, request

REQUEST_ID = contextvars.ContextVar("request_id", default=None)
REQUEST_ID_HEADER = "X-Request-ID"
GIVEN_ID = re.compile(r"[A-Za-z0-9._-]{8,64}")
PLAIN = "%(asctime)s %(levelname)s %(name)s: %(message)s"
access_log = logging.getLogger("videoflix.access")
# Routine chatter at WARNING or INFO that says nothing is wrong: waitress' note that requests wait
# for a thread (hls.js asks for several segments at once), and Huey's line for every task run.
QUIETER = {"waitress.queue": logging.ERROR, "huey": logging.WARNING, "huey.consumer": logging.WARNING}


class StderrHandler(logging.StreamHandler):
    """To whatever sys.stderr is when a line is written (not when the app was made)."""

    def __init__(self):
        super().__init__(sys.stderr)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value):
        pass


class RequestIdFilter(logging.Filter):
    def filter(self, record):
        record.request_id = REQUEST_ID.get() or "-"
        return True


class JSONFormatter(logging.Formatter):
    FIELDS = ("method", "route", "status", "duration_ms", "bytes")

    def format(self, record):
        line = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", "-"),
        }
        line.update({name: getattr(record, name) for name in self.FIELDS if hasattr(record, name)})
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


def configure(log_format):
    """The root handler's format (plain or json) and the request id on every line."""
    handler = StderrHandler()
    if log_format == "json":
        formatter = JSONFormatter()
        formatter.converter = time.gmtime
    else:
        formatter = logging.Formatter(PLAIN)
    handler.setFormatter(formatter)
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "videoflix", False)]:
        root.removeHandler(old)
    handler.videoflix = True
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    for name, level in QUIETER.items():
        logging.getLogger(name).setLevel(level)


def init_app(app):
    @app.before_request
    def _request_id():
        given = request.headers.get(REQUEST_ID_HEADER, "")
        g.request_id = given if GIVEN_ID.fullmatch(given) else uuid.uuid4().hex
        g.request_token = REQUEST_ID.set(g.request_id)
        g.request_started = time.perf_counter()

    @app.after_request
    def _access_line(response):
        request_id = g.get("request_id")
        if request_id:
            response.headers[REQUEST_ID_HEADER] = request_id
            route = request.url_rule.rule if request.url_rule is not None else "(no route)"
            milliseconds = round((time.perf_counter() - g.request_started) * 1000, 1)
            access_log.info(
                "%s %s %s %.1f ms", request.method, route, response.status_code, milliseconds,
                extra={"method": request.method, "route": route, "status": response.status_code,
                       "duration_ms": milliseconds, "bytes": response.content_length},
            )  # fmt: skip
        return response

    @app.teardown_request
    def _forget(_error=None):
        token = g.pop("request_token", None)
        if token is not None:
            REQUEST_ID.reset(token)
