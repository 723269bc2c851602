"""Segments made on request: a video plays while its fast ladder is encoded (pipeline/chunked.py),
its playlists complete from the start. A viewer who seeks ahead asks for a segment no chunk has
made yet: its chunk is queued again ahead of every other part, and the request waits for it, up
to SEGMENT_WAIT_SECONDS, then answers 503 with Retry-After (hls.js retries it). Never a 404 for a
segment the playlist names.

Waiting holds a web thread, so at most SEGMENT_WAITERS requests of a process wait at once; the
others get the 503 at once. The store is looked at every POLL_SECONDS."""

import threading
import time

import sqlalchemy as sa
from flask import current_app

from videoflix.errors import JSONError
from videoflix.extensions import db
from videoflix.pipeline import chunked, tasks
from videoflix.videos.models import PartKind, PartState, Phase, TranscodePart, Video

POLL_SECONDS = 0.2
RETRY_AFTER_SECONDS = 2
NOT_YET = "This part of the video is still being prepared. Try again in a moment."


class NotReadyYet(JSONError):
    def __init__(self):
        super().__init__(503, {"detail": NOT_YET}, {"Retry-After": str(RETRY_AFTER_SECONDS)})


def _slots():
    slots = current_app.extensions.get("videoflix_segment_waiters")
    if slots is None:
        slots = current_app.extensions["videoflix_segment_waiters"] = threading.BoundedSemaphore(
            current_app.config["SEGMENT_WAITERS"]
        )
    return slots


def chunk_making(video_id, number):
    """(job_id, chunk number, its state) of the chunk that makes segment `number` of the version
    the video plays while it is encoded; None when no chunk will (a finished video, a segment
    beyond the film, a re-transcode whose earlier version plays)."""
    video = db.session.execute(sa.select(Video.job_id, Video.hls_path, Video.phase).where(Video.id == video_id)).first()
    if video is None or video.phase != Phase.ENCODING or video.hls_path != chunked.job_version(video_id, video.job_id):
        return None
    part = db.session.execute(
        sa.select(TranscodePart.number, TranscodePart.state).where(
            TranscodePart.video_id == video_id, TranscodePart.job_id == video.job_id,
            TranscodePart.kind == PartKind.CHUNK, TranscodePart.first_segment <= number,
            TranscodePart.first_segment + TranscodePart.segment_count > number)
    ).first()  # fmt: skip
    return None if part is None else (video.job_id, part.number, part.state)


def wait_for_segment(video_id, number):
    """Whether segment `number` of the video should now exist (send it again): False when no chunk
    will make it (then the 404 stands); raises NotReadyYet past the wait."""
    making = chunk_making(video_id, number)
    if making is None:
        return False
    job_id, chunk, state = making
    if state == PartState.QUEUED:
        tasks.hurry_segment(video_id, job_id, number)
    slots = _slots()
    if not slots.acquire(blocking=False):
        raise NotReadyYet()
    try:
        deadline = time.monotonic() + current_app.config["SEGMENT_WAIT_SECONDS"]
        while time.monotonic() < deadline:
            db.session.commit()  # end the read snapshot: see the chunk's commit
            making = chunk_making(video_id, number)
            if making is None or making[2] == PartState.DONE:
                return True
            time.sleep(POLL_SECONDS)
    finally:
        slots.release()
    raise NotReadyYet()
