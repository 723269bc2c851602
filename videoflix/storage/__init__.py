"""Where media bytes live: one store per app, chosen by configuration (`media_store()`): the local
disk under MEDIA_ROOT (the embedded default), or an S3-compatible bucket when S3_BUCKET is set.
Both answer the same small interface (local.py, s3.py) with the same keys (keys.py)."""

import logging
import os

from flask import current_app

from videoflix.storage.errors import StorageUnavailable
from videoflix.storage.local import LocalStorage

EXTENSION = "videoflix_storage"
log = logging.getLogger(__name__)


def build_store(settings):
    if not settings["S3_BUCKET"]:
        return LocalStorage(settings["MEDIA_ROOT"])
    from videoflix.storage.s3 import S3Storage  # boto3 loads only where a bucket is configured

    return S3Storage(
        settings["MEDIA_ROOT"],
        bucket=settings["S3_BUCKET"],
        prefix=settings["S3_PREFIX"],
        endpoint_url=settings["S3_ENDPOINT_URL"],
        region=settings["S3_REGION"],
        access_key=settings["S3_ACCESS_KEY_ID"],
        secret_key=settings["S3_SECRET_ACCESS_KEY"],
    )


def init_app(app):
    """Set up the store; creates nothing in a bucket, but says at once when it cannot be used."""
    os.makedirs(app.config["MEDIA_ROOT"], exist_ok=True)
    store = app.extensions[EXTENSION] = build_store(app.config)
    try:
        store.check()
    except StorageUnavailable as error:
        log.error("Media storage unusable at start-up: %s", error)


def media_store():
    """The current app's store."""
    return current_app.extensions[EXTENSION]
