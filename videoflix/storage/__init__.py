"""Where media bytes live: one store per app, chosen by configuration (`media_store()`)."""

import os

from flask import current_app

from videoflix.storage.local import LocalStorage

EXTENSION = "videoflix_storage"


def init_app(app):
    os.makedirs(app.config["MEDIA_ROOT"], exist_ok=True)
    app.extensions[EXTENSION] = LocalStorage(app.config["MEDIA_ROOT"])


def media_store():
    """The current app's store."""
    return current_app.extensions[EXTENSION]
