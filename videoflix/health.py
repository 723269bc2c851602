import logging

import sqlalchemy as sa
from flask import Blueprint, jsonify

from videoflix.extensions import db
from videoflix.queue import huey
from videoflix.storage import media_store

log = logging.getLogger(__name__)
bp = Blueprint("health", __name__, url_prefix="/api")


def _check(name, probe):
    try:
        probe()
        return "ok"
    except Exception as error:  # any failure of a backend is a health finding, not a crash
        log.warning("health check of %s failed: %s", name, error)
        db.session.rollback()
        return "unavailable"


@bp.get("/health/")
def health():
    parts = {
        "database": _check("database", lambda: db.session.execute(sa.text("SELECT 1"))),
        "queue": _check("queue", huey.pending_count),
        "storage": _check("storage", lambda: media_store().check()),
    }
    healthy = all(state == "ok" for state in parts.values())
    return jsonify({"status": "ok" if healthy else "unavailable", **parts}), 200 if healthy else 503
