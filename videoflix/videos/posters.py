"""Public media: posters only, loadable without cookies. Sources and renditions are never served here."""

import mimetypes

from flask import Blueprint, abort

from videoflix.storage import delivery, keys

bp = Blueprint("posters", __name__, url_prefix="/media")
POSTER_MAX_AGE = 86400


@bp.get(f"/{keys.POSTERS}/<filename>")
def poster(filename):
    key = keys.poster(filename)
    if key is None:
        abort(404)
    return delivery.send(key, mimetypes.guess_type(filename)[0], POSTER_MAX_AGE, public=True)
