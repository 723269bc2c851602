"""What leaves the store, and when:

- deleting a video removes every object of it at once (a job still running for it notices that the
  video is gone on its next progress report and removes its own workspace);
- what a publish or an edit replaced (an old rendition version, an old poster) is retired: removed
  RETIRED_VERSION_SECONDS later, since players and proxies may have looked it up just before;
- the sweep removes what a crash left behind: objects that no video references, once they are
  older than SWEEP_MIN_AGE (an upload is stored before its row is saved; a version is stored before
  the video points at it)."""

import logging
from datetime import UTC, datetime, timedelta
from itertools import chain

import sqlalchemy as sa
from flask import current_app
from huey import crontab

from videoflix.extensions import db
from videoflix.queue import periodic_task, task
from videoflix.storage import keys, media_store
from videoflix.videos.models import Phase, Status, Subtitle, Video

log = logging.getLogger(__name__)
SWEEP_MIN_AGE = timedelta(hours=1)


def delete_video_media(video):
    """The upload, every published version of the renditions, and the poster."""
    store = media_store()
    store.delete(video.source_path)
    store.delete(video.poster_path)
    store.delete_prefix(keys.renditions(video.id))
    store.delete_prefix(keys.subtitles(video.id))


def retire(prefixes=(), stored_keys=()):
    """Remove replaced objects once RETIRED_VERSION_SECONDS have passed (at once when it is 0)."""
    prefixes, stored_keys = [p for p in prefixes if p], [k for k in stored_keys if k]
    if not prefixes and not stored_keys:
        return
    delay = current_app.config["RETIRED_VERSION_SECONDS"]
    if delay > 0:
        remove_retired.schedule(args=(prefixes, stored_keys), delay=delay)
    else:
        remove_retired.call_local(prefixes, stored_keys)


@task(retries=3, retry_delay=60)
def remove_retired(prefixes, stored_keys):
    store = media_store()
    for prefix in prefixes:
        store.delete_prefix(prefix)
    for key in stored_keys:
        store.delete(key)


def in_use(videos):
    """The keys that videos reference, and the rendition versions they play or are making now."""
    referenced, versions, making = set(), set(), set()
    for video in videos:
        referenced.update(key for key in (video.source_path, video.poster_path) if key)
        if video.hls_path:
            versions.add(video.hls_path)
        busy = video.status in (Status.PENDING, Status.PROCESSING) or video.phase in (Phase.ENCODING, Phase.OPTIMISING)
        if busy and video.job_id:
            making.add(keys.rendition_version(video.id, video.job_id))  # and its "-optimised" sibling
    return referenced, versions, making


def sweep(now=None):
    """Remove every object that no video references and that is older than SWEEP_MIN_AGE; returns
    how many were removed."""
    store = media_store()
    cutoff = (now or datetime.now(UTC)) - SWEEP_MIN_AGE
    columns = (Video.id, Video.source_path, Video.poster_path, Video.hls_path, Video.job_id, Video.status, Video.phase)
    referenced, versions, making = in_use(db.session.execute(sa.select(*columns)).all())
    referenced.update(db.session.scalars(sa.select(Subtitle.source_key).where(Subtitle.source_key.is_not(None))))
    removed = 0
    for key, modified, _size in chain(*(store.list(folder) for folder in keys.FOLDERS)):
        if modified > cutoff or key in referenced:
            continue
        version = "/".join(key.split("/")[:3])  # hls/<video id>/<version>
        if key.startswith(f"{keys.RENDITIONS}/") and (
            version in versions or any(version.startswith(prefix) for prefix in making)
        ):
            continue
        store.delete(key)
        removed += 1
    if removed:
        log.warning("sweep removed %s objects that no video references", removed)
    return removed


@periodic_task(crontab(minute="23"))
def sweep_periodically():
    sweep()
