"""Transcode jobs on the Huey queue, and the recovery of jobs whose worker died. Jobs take ids,
never objects."""

import logging
import uuid
from datetime import UTC, datetime

import sqlalchemy as sa
from flask import current_app
from huey import crontab

from videoflix.extensions import as_utc, db
from videoflix.pipeline import chunked, steps
from videoflix.pipeline.job import CANCELLED, stale_after
from videoflix.queue import huey, periodic_task, task
from videoflix.videos.models import PartKind, PartState, Phase, Status, TranscodePart, Video

log = logging.getLogger(__name__)
TRANSCODE_RETRIES = 2


# Huey runs higher priorities first: a new upload's start, then a segment a viewer waits for, then
# the sound and each film's chunks in order (its poster after its first), and the efficient pass
# only when no film waits for its fast ladder.
START_PRIORITY = 200
HURRIED_PRIORITY = 190
FINISH_PRIORITY = 180
SOUND_PRIORITY = 170
FIRST_CHUNK_PRIORITY = 100
OPTIMISE_PRIORITY = -1_000_000
SOUND_WAIT_SECONDS = 2  # a chunk whose sound is not under way comes back after this


def retries_of(task):
    return task.retries if task else 0


@task(retries=TRANSCODE_RETRIES, retry_delay=15, context=True, priority=START_PRIORITY)
def transcode_video(video_id, job_id, task=None):
    """The first pass's start: once the video is playable, its parts are queued (same job)."""
    status = steps.start(video_id, job_id, retries_left=retries_of(task))
    if status == Status.READY:
        queue_parts(video_id, job_id)
    return status


def chunk_priority(number):
    return FIRST_CHUNK_PRIORITY - number


def queue_parts(video_id, job_id):
    """Queue every part of the job still waiting: the sound first, chunks in order, the poster after the first."""
    order = {PartKind.FINISH: (0, 0), PartKind.SOUND: (1, 0), PartKind.POSTER: (2, 0.5)}
    parts = chunked.parts_of(video_id, job_id)
    for part in sorted(parts, key=lambda part: order.get(part.kind, (2, part.number))):
        if part.state != PartState.QUEUED:
            continue
        if part.kind == PartKind.SOUND:
            transcode_sound(video_id, job_id, priority=SOUND_PRIORITY)
        elif part.kind == PartKind.POSTER:
            transcode_poster(video_id, job_id, priority=chunk_priority(0.5))
        elif part.kind == PartKind.CHUNK:
            transcode_chunk(video_id, job_id, part.number, priority=chunk_priority(part.number))
        elif part.kind == PartKind.FINISH:
            finish_transcode(video_id, job_id, priority=FINISH_PRIORITY)


@task(retries=TRANSCODE_RETRIES, retry_delay=5, context=True)
def transcode_sound(video_id, job_id, task=None):
    result = chunked.run_part(video_id, job_id, PartKind.SOUND, 0, chunked.make_sound, retries_of(task))
    after_part(video_id, job_id, result)


@task(retries=TRANSCODE_RETRIES, retry_delay=5, context=True)
def transcode_chunk(video_id, job_id, number, task=None):
    result = chunked.run_part(video_id, job_id, PartKind.CHUNK, number, chunked.make_chunk, retries_of(task))
    if result == chunked.WAITING:  # its sound is not under way: again a little later, no retry spent
        transcode_chunk.schedule((video_id, job_id, number), delay=SOUND_WAIT_SECONDS, priority=chunk_priority(number))
    after_part(video_id, job_id, result)


@task(retries=TRANSCODE_RETRIES, retry_delay=5, context=True)
def transcode_poster(video_id, job_id, task=None):
    chunked.run_part(video_id, job_id, PartKind.POSTER, 0, chunked.make_poster, retries_of(task))


def after_part(video_id, job_id, result):
    if result != chunked.DONE:
        return
    finish, again = chunked.record_chunk_done(video_id, job_id)
    for number in again:  # made with their own sound for a viewer: now with the film's
        transcode_chunk(video_id, job_id, number, priority=chunk_priority(number))
    if finish:
        finish_transcode(video_id, job_id, priority=FINISH_PRIORITY)


@task(retries=TRANSCODE_RETRIES, retry_delay=5, context=True)
def finish_transcode(video_id, job_id, task=None):
    """The join step; then the efficient pass is queued (same job)."""
    result = chunked.run_part(video_id, job_id, PartKind.FINISH, 0, chunked.finish, retries_of(task))
    if result == chunked.DONE and current_app.config["TRANSCODE_OPTIMISE"]:
        optimise_video(video_id, job_id, priority=OPTIMISE_PRIORITY)
    return result


PART_TASK_FUNCTIONS = {PartKind.SOUND: transcode_sound, PartKind.POSTER: transcode_poster,
                       PartKind.CHUNK: transcode_chunk, PartKind.FINISH: finish_transcode}  # fmt: skip


def hurry_segment(video_id, job_id, segment):
    """A viewer waits for `segment`: its chunk, cut down to that segment alone, is queued again ahead
    of every other part (once; the copy that runs second finds the chunk taken and does nothing),
    and the rest of the chunk it was cut from in its place."""
    hurried, rest = chunked.hurry(video_id, job_id, segment)
    if hurried is not None:
        transcode_chunk(video_id, job_id, hurried, priority=HURRIED_PRIORITY)
    for number in rest:
        transcode_chunk(video_id, job_id, number, priority=chunk_priority(number))


# --- the hurry lane ---

HURRY_LANE_POLL_SECONDS = 0.5
HURRY_LANE_PAUSE_SECONDS = 5  # after a part that could not go on (a failure, its sound's worker lost meanwhile)


def run_hurried_once():
    """Make a chunk a viewer waits for that no worker thread has taken yet, if there is one. It is
    claimed through its row like any part: its queued task, run later, finds it done. Returns
    whether one was found and whether the lane may go straight on."""
    row = db.session.execute(
        sa.select(TranscodePart.video_id, TranscodePart.job_id, TranscodePart.number)
        .where(TranscodePart.kind == PartKind.CHUNK, TranscodePart.state == PartState.QUEUED,
               TranscodePart.hurried.is_(True))
        .order_by(TranscodePart.queued_at, TranscodePart.id).limit(1)
    ).first()  # fmt: skip
    db.session.commit()
    if row is None:
        return False, False
    # A transient failure gives it back to the queue, whose copy of the task retries it.
    result = chunked.run_part(row.video_id, row.job_id, PartKind.CHUNK, row.number, chunked.make_chunk, retries_left=1)
    after_part(row.video_id, row.job_id, result)
    return True, result != chunked.WAITING


def hurry_lane(app, stopped):
    """A worker thread kept for segments viewers wait for (a seek ahead while a film encodes): the
    queue's threads may all be in the middle of chunks, and a part is never preempted."""
    while not stopped.is_set():
        go_on = False
        with app.app_context():
            try:
                found, go_on = run_hurried_once()
            except Exception:  # noqa: BLE001 - the lane outlives any one part; the queue has the task too
                log.exception("hurry lane: a hurried chunk failed; its queued task will retry it")
                found = True
            finally:
                db.session.remove()
        if not go_on:
            stopped.wait(HURRY_LANE_PAUSE_SECONDS if found else HURRY_LANE_POLL_SECONDS)


@task(retries=TRANSCODE_RETRIES, retry_delay=15, context=True)
def optimise_video(video_id, job_id, task=None):
    return steps.optimise(video_id, job_id, retries_left=retries_of(task))


def enqueue_transcode(video):
    """Give the video a new job and queue it; a job still running for it stops on its next report."""
    video.job_id = uuid.uuid4().hex
    video.status, video.progress, video.error = Status.PENDING, 0, None
    video.heartbeat_at = datetime.now(UTC)
    db.session.commit()
    transcode_video(video.id, video.job_id)


def queued_jobs(task=transcode_video):
    """(video_id, job_id) of every job of `task` waiting in the queue."""
    return {tuple(pending.args[:2]) for pending in huey.pending() if is_task(pending, task) and len(pending.args) >= 2}


def is_task(pending, task):
    """Whether a queued Task is one of `task` (a TaskWrapper, whose own `name` is None)."""
    return pending.name == task.task_class.__name__


def queued_parts():
    """(video_id, job_id, kind, number) of every part task waiting in the queue."""
    kinds = {task.task_class.__name__: kind for kind, task in PART_TASK_FUNCTIONS.items()}
    found = set()
    for pending in huey.pending():
        if pending.name in kinds and len(pending.args) >= 2:
            number = pending.args[2] if kinds[pending.name] == PartKind.CHUNK else 0
            found.add((*pending.args[:2], kinds[pending.name], number))
    return found


def recover_parts(video, stale_before, waiting):
    """Re-queue the parts of a playable, encoding video whose worker died (a heartbeat gone stale)
    or that no queue holds; returns how many."""
    recovered = 0
    for part in chunked.parts_of(video.id, video.job_id):
        if part.state == PartState.DONE:
            continue
        alive = part.heartbeat_at is not None and as_utc(part.heartbeat_at) >= stale_before
        if (part.state == PartState.RUNNING and alive) or (
            part.state == PartState.QUEUED and (video.id, video.job_id, part.kind, part.number) in waiting
        ):
            continue
        log.warning("re-queueing video %s %s %s (job %s)", video.id, part.kind, part.number, video.job_id)
        part.state, part.hurried = PartState.QUEUED, False
        recovered += 1
    if recovered:
        db.session.commit()
        queue_parts(video.id, video.job_id)
    return recovered


def recover_stalled_jobs():
    """Re-queue the jobs whose worker died: processing or optimising without a recent heartbeat, or
    pending without a queued job, and the parts of encoding videos (recover_parts). Returns the
    videos' ids. A re-run starts its pass (or part) from scratch and gives the same result; an
    optimisation re-runs under the same job while the fast ladder plays."""
    stale_before = datetime.now(UTC) - stale_after()
    waiting, optimising, parts = queued_jobs(), queued_jobs(optimise_video), queued_parts()
    candidates = db.session.scalars(
        sa.select(Video).where(
            sa.or_(Video.status.in_([Status.PENDING, Status.PROCESSING]),
                   Video.phase.in_([Phase.OPTIMISING, Phase.ENCODING]))
        )
    ).all()  # fmt: skip
    recovered = []
    for video in candidates:
        if video.status == Status.READY and video.phase == Phase.ENCODING:
            if recover_parts(video, stale_before, parts):
                recovered.append(video.id)
            continue
        heartbeat = video.heartbeat_at
        if heartbeat is not None and as_utc(heartbeat) >= stale_before:
            continue
        job = (video.id, video.job_id)
        if video.status == Status.READY and job not in optimising:
            log.warning("re-queueing the optimisation of video %s (job %s)", video.id, video.job_id)
            optimise_video(video.id, video.job_id, priority=OPTIMISE_PRIORITY)
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


PART_WORK = {PartKind.SOUND: chunked.make_sound, PartKind.POSTER: chunked.make_poster,
             PartKind.CHUNK: chunked.make_chunk, PartKind.FINISH: chunked.finish}  # fmt: skip


def transcode_in_process(video_id, job_id, retries_left=0):
    """The whole first pass here and now, part after part, as one worker would take them off the
    queue (the CLI's --wait and tests). Returns the video's status, or "cancelled"; raises as a
    part does when it asks for a retry."""
    status = steps.start(video_id, job_id, retries_left)
    if status != Status.READY:
        return status
    order = {PartKind.SOUND: 0, PartKind.CHUNK: 1, PartKind.POSTER: 2}
    parts = sorted((order[part.kind], part.number, part.kind) for part in chunked.parts_of(video_id, job_id))
    while parts:
        _order, number, kind = parts.pop(0)
        result = chunked.run_part(video_id, job_id, kind, number, PART_WORK[kind], retries_left)
        if result == chunked.DONE and kind != PartKind.POSTER:
            finish, again = chunked.record_chunk_done(video_id, job_id)
            parts += [(1, again_number, PartKind.CHUNK) for again_number in again]
            if finish:
                result = chunked.run_part(video_id, job_id, PartKind.FINISH, 0, chunked.finish, retries_left)
        if result in (chunked.FAILED, chunked.CANCELLED):
            break
    video = db.session.get(Video, video_id, populate_existing=True)
    return CANCELLED if video is None or video.job_id != job_id else video.status
