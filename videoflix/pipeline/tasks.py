"""Transcode jobs on the Huey queue, and the recovery of jobs whose worker died. Jobs take ids,
never objects."""

import logging
import uuid
from datetime import UTC, datetime

import sqlalchemy as sa
from flask import current_app
from huey import crontab

from videoflix.extensions import as_utc, db
from videoflix.pipeline import steps
from videoflix.pipeline.job import stale_after
from videoflix.queue import huey, periodic_task, task
from videoflix.videos.models import Phase, Status, Video

log = logging.getLogger(__name__)
TRANSCODE_RETRIES = 2


@task(retries=TRANSCODE_RETRIES, retry_delay=15, context=True)
def transcode_video(video_id, job_id, task=None):
    """The first pass; once the video plays, its optimisation is queued (same job)."""
    status = steps.transcode(video_id, job_id, retries_left=task.retries if task else 0)
    if status == Status.READY and current_app.config["TRANSCODE_OPTIMISE"]:
        optimise_video(video_id, job_id)
    return status


@task(retries=TRANSCODE_RETRIES, retry_delay=15, context=True)
def optimise_video(video_id, job_id, task=None):
    return steps.optimise(video_id, job_id, retries_left=task.retries if task else 0)


def enqueue_transcode(video):
    """Give the video a new job and queue it; a job still running for it stops on its next report."""
    video.job_id = uuid.uuid4().hex
    video.status, video.progress, video.error = Status.PENDING, 0, None
    video.heartbeat_at = datetime.now(UTC)
    db.session.commit()
    transcode_video(video.id, video.job_id)


def queued_jobs(task=transcode_video):
    """(video_id, job_id) of every job of `task` waiting in the queue."""
    return {
        tuple(pending.args[:2]) for pending in huey.pending() if pending.name == task.name and len(pending.args) >= 2
    }


def recover_stalled_jobs():
    """Re-queue the jobs whose worker died: processing or optimising without a recent heartbeat, or
    pending without a queued job. Returns the videos' ids. A re-run starts its pass from scratch and
    gives the same result; an optimisation re-runs under the same job while the fast ladder plays."""
    stale_before = datetime.now(UTC) - stale_after()
    waiting, optimising = queued_jobs(), queued_jobs(optimise_video)
    candidates = db.session.scalars(
        sa.select(Video).where(
            sa.or_(Video.status.in_([Status.PENDING, Status.PROCESSING]), Video.phase == Phase.OPTIMISING)
        )
    ).all()
    recovered = []
    for video in candidates:
        heartbeat = video.heartbeat_at
        if heartbeat is not None and as_utc(heartbeat) >= stale_before:
            continue
        job = (video.id, video.job_id)
        if video.status == Status.READY and job not in optimising:
            log.warning("re-queueing the optimisation of video %s (job %s)", video.id, video.job_id)
            optimise_video(video.id, video.job_id)
        elif video.status == Status.PROCESSING or (video.status == Status.PENDING and job not in waiting):
            log.warning("re-queueing video %s (%s job %s)", video.id, video.status, video.job_id)
            enqueue_transcode(video)
        else:
            continue
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
