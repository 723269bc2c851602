"""Where a resumable upload's bytes wait: one file per upload in this machine's scratch folder
(the store's incoming folder, so that keeping it on the disk store is a hard link), and the hourly
removal of uploads that nobody finished."""

from datetime import UTC, datetime

import sqlalchemy as sa
from huey import crontab

from videoflix.extensions import db
from videoflix.queue import periodic_task
from videoflix.storage import media_store
from videoflix.uploads.models import Upload


def part_path(upload_id):
    return media_store().incoming_dir() / f"tus-{upload_id}.part"


def remove_upload(upload):
    """The upload's bytes and row (the caller commits)."""
    part_path(upload.id).unlink(missing_ok=True)
    db.session.delete(upload)


def remove_orphaned_parts():
    """The files of this machine's uploads whose rows are gone (expired and removed by a worker
    elsewhere, or deleted with their staff member)."""
    parts = {path.name[len("tus-") : -len(".part")]: path for path in media_store().incoming_dir().glob("tus-*.part")}
    if not parts:
        return
    alive = set(db.session.scalars(sa.select(Upload.id).where(Upload.id.in_(parts))))
    for upload_id, path in parts.items():
        if upload_id not in alive:
            path.unlink(missing_ok=True)


def remove_expired(now=None):
    """Remove every upload past its expiry; returns how many."""
    expired = db.session.scalars(sa.select(Upload).where(Upload.expires_at < (now or datetime.now(UTC)))).all()
    for upload in expired:
        remove_upload(upload)
    db.session.commit()
    return len(expired)


@periodic_task(crontab(minute="41"))
def remove_expired_periodically():
    remove_expired()
