"""Transcode jobs on the Huey queue, and the recovery of jobs whose worker died. Jobs take ids,
never objects."""

import logging
import uuid
from datetime import UTC, datetime

import sqlalchemy as sa
from huey import crontab

from videoflix.extensions import db
from videoflix.pipeline import steps
from videoflix.pipeline.job import stale_after
from videoflix.queue import huey, periodic_task, task
from videoflix.videos.models import Status, Video

log = logging.getLogger(__name__)
TRANSCODE_RETRIES = 2


@task(retries=TRANSCODE_RETRIES, retry_delay=15, context=True)
def transcode_video(video_id, job_id, task=None):
    return steps.transcode(video_id, job_id, retries_left=task.retries if task else 0)


def enqueue_transcode(video):
    """Give the video a new job and queue it; a job still running for it stops on its next report."""
    video.job_id = uuid.uuid4().hex
    video.status, video.progress, video.error = Status.PENDING, 0, None
    video.heartbeat_at = datetime.now(UTC)
    db.session.commit()
    transcode_video(video.id, video.job_id)


def queued_jobs():
    """(video_id, job_id) of every transcode waiting in the queue."""
    return {
        tuple(pending.args[:2])
        for pending in huey.pending()
        if pending.name == transcode_video.name and len(pending.args) >= 2
    }


def recover_stalled_jobs():
    """Re-queue videos whose worker died: processing without a recent progress report, or pending
    without a queued job. Returns their ids. A re-run starts from scratch and gives the same result."""
    stale_before = datetime.now(UTC) - stale_after()
    waiting = queued_jobs()
    candidates = db.session.scalars(sa.select(Video).where(Video.status.in_([Status.PENDING, Status.PROCESSING]))).all()
    recovered = []
    for video in candidates:
        heartbeat = video.heartbeat_at
        if heartbeat is not None and heartbeat.tzinfo is None:  # SQLite drops the zone
            heartbeat = heartbeat.replace(tzinfo=UTC)
        quiet = heartbeat is None or heartbeat < stale_before
        lost = video.status == Status.PENDING and (video.id, video.job_id) not in waiting
        if quiet and (video.status == Status.PROCESSING or lost):
            log.warning("re-queueing video %s (%s job %s)", video.id, video.status, video.job_id)
            enqueue_transcode(video)
            recovered.append(video.id)
    return recovered


@periodic_task(crontab(minute="*"))
def recover_stalled_jobs_periodically():
    recover_stalled_jobs()


@task()
def recover_stalled_jobs_later():
    recover_stalled_jobs()


def recover_at_startup():
    """What a worker does as it starts: re-queue the jobs of workers that are gone now, and look
    again once the heartbeats of any that died just before have had time to go stale."""
    recovered = recover_stalled_jobs()
    recover_stalled_jobs_later.schedule(delay=stale_after().total_seconds())
    return recovered
