"""Public media: posters only. Sources and renditions are never served from here."""

from flask import Blueprint, current_app, send_from_directory

bp = Blueprint("media", __name__, url_prefix="/media")
POSTER_DIR = "thumbnails"


@bp.get(f"/{POSTER_DIR}/<filename>")
def poster(filename):
    directory = f"{current_app.config['MEDIA_ROOT']}/{POSTER_DIR}"
    return send_from_directory(directory, filename, max_age=86400)
