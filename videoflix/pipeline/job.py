"""One attempt of a video's transcode job: whether it still owns the video, its progress and
heartbeat, its scratch folder, and how it ends (ready, failed, cancelled, or retried).

A video is owned by the job whose id it records; re-queueing or deleting the video takes that
away, and the job notices on its next progress report (Cancelled)."""

import contextlib
import logging
import shutil
import threading
import time
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.orm.exc import ObjectDeletedError

from videoflix import metrics
from videoflix.extensions import db
from videoflix.media.ffmpeg import FFmpegFailed
from videoflix.media.probe import NotAVideo
from videoflix.storage import media_store
from videoflix.videos.models import Phase, Status, Video

log = logging.getLogger(__name__)
PROGRESS_INTERVAL = 1.0  # seconds between progress writes to the Video row
CANCELLED = "cancelled"
# Below this, a failed job says the disk is full: ffmpeg's own words about it may not have found
# room in its log, and it can even exit 0 having written nothing.
LOW_DISK_BYTES = 64 * 2**20


class Cancelled(Exception):
    """The video was deleted or re-queued while its job ran."""


def stale_after():
    """A job whose heartbeat is older than this has lost its worker (three missed beats)."""
    return timedelta(seconds=3 * current_app.config["JOB_HEARTBEAT_SECONDS"])


def update_owned(video_id, job_id, **values):
    """Write `values` and a heartbeat to the video while job `job_id` still owns it; True if it did."""
    result = db.session.execute(
        sa.update(Video)
        .where(Video.id == video_id, Video.job_id == job_id)
        .values(heartbeat_at=datetime.now(UTC), **values)
    )
    db.session.commit()
    return result.rowcount == 1


class Heartbeat:
    """Writes the job's heartbeat every JOB_HEARTBEAT_SECONDS while it runs, whichever step it is in
    (probing, encoding, storing), from a thread of its own with its own database session."""

    def __init__(self, video_id, job_id):
        self._app = current_app._get_current_object()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(video_id, job_id), daemon=True)

    def _run(self, video_id, job_id):
        with self._app.app_context():
            while not self._stopped.wait(self._app.config["JOB_HEARTBEAT_SECONDS"]):
                try:
                    update_owned(video_id, job_id)
                except Exception as error:  # a missed beat is not the job's failure; the next one may land
                    log.warning("heartbeat of video %s failed: %s", video_id, error)
                    db.session.rollback()
            db.session.remove()

    def start(self):
        self._thread.start()

    def stop(self):
        self._stopped.set()
        if self._thread.is_alive():
            self._thread.join()


class Job:
    """One attempt. A first transcode makes the video playable (pending -> processing -> ready |
    failed); an optimising one replaces a playable video's ladder, and the video stays ready."""

    def __init__(self, video_id, job_id, optimising=False):
        self.video_id = video_id
        self.job_id = job_id
        self.optimising = optimising
        self.scratch = media_store().work_root() / str(video_id)
        self.workspace = self.scratch / job_id
        self.resources = contextlib.ExitStack()  # what the steps opened (local copies of sources)
        self.heartbeat = Heartbeat(video_id, job_id)
        self._last_report = 0.0
        self.queued_at = None  # when a first transcode was queued (its heartbeat until it starts)
        self.film_seconds = None  # once probed: what an encode speed is measured against

    def still_owned(self):
        """True while the video exists and this job is still the one it waits for."""
        current = db.session.scalar(sa.select(Video.job_id).where(Video.id == self.video_id))
        return current == self.job_id

    def video(self):
        """The video, read afresh; Cancelled when this job no longer owns it."""
        video = db.session.get(Video, self.video_id, populate_existing=True)
        if video is None or video.job_id != self.job_id:
            raise Cancelled()
        return video

    def start(self):
        """Mark the video processing (or optimising) and give this attempt an empty workspace."""
        video = self.video()
        if video.status == Status.PENDING and video.heartbeat_at is not None:
            self.queued_at = video.heartbeat_at
        if self.optimising:
            video.phase = Phase.OPTIMISING
        else:
            video.status = Status.PROCESSING
        video.progress, video.error, video.heartbeat_at = 0, None, datetime.now(UTC)
        db.session.commit()
        self.heartbeat.start()
        shutil.rmtree(self.scratch, ignore_errors=True)  # this job's earlier try, or superseded jobs' work
        self.workspace.mkdir(parents=True)
        return video

    def report(self, done):
        """Progress (`done` from 0 to 1) and a heartbeat, at most once per PROGRESS_INTERVAL;
        Cancelled once the job no longer owns the video."""
        now = time.monotonic()
        if now - self._last_report < PROGRESS_INTERVAL:
            return
        self._last_report = now
        if not update_owned(self.video_id, self.job_id, progress=max(0, min(99, int(done * 100)))):
            raise Cancelled()

    def fail(self, message):
        """A first transcode fails the video; a failed optimisation leaves the fast ladder playing."""
        outcome = {"status": Status.FAILED, "error": message}
        if self.optimising:
            outcome = {"phase": Phase.FAST, "error": f"Optimisation failed; the fast ladder plays. {message}"}
        db.session.rollback()
        update_owned(self.video_id, self.job_id, **outcome)

    def discard(self):
        """Stop the heartbeat, close what the steps opened and remove the workspace (and the video's
        scratch folder if empty)."""
        self.heartbeat.stop()
        self.resources.close()
        shutil.rmtree(self.workspace, ignore_errors=True)
        with contextlib.suppress(OSError):
            self.scratch.rmdir()


def disk_full_note(folder):
    """'No space left on device ...' when the job's disk is (nearly) full, else ''."""
    try:
        free = shutil.disk_usage(folder).free
    except OSError:  # the folder is gone: nothing to say about its disk
        return ""
    if free >= LOW_DISK_BYTES:
        return ""
    return f"No space left on device: {free // 1024} KiB free where the job works (MEDIA_ROOT). "


def attempt(video_id, job_id, work, retries_left=0, optimising=False):
    """Run `work(job, video)` once for the job. Returns the final status; raises to ask for a
    retry of a transient failure while retries are left."""
    job = Job(video_id, job_id, optimising)
    kind, started = ("optimise" if optimising else "start"), time.monotonic()
    try:
        work(job, job.start())
        metrics.part_ended(kind, "done", time.monotonic() - started, job.film_seconds)
        return Status.READY
    except (Cancelled, ObjectDeletedError):  # the row went while a step read it: a delete, too
        log.info("transcode of video %s (job %s) stopped: video deleted or re-queued", video_id, job_id)
        return CANCELLED
    except NotAVideo as error:
        job.fail(str(error))
        return Status.FAILED
    except (FFmpegFailed, OSError) as error:
        if not job.still_owned():
            return CANCELLED
        message = disk_full_note(job.scratch) + str(error)
        tail = getattr(error, "stderr_tail", "")
        if tail:
            message += f"\n{tail}"
        if retries_left > 0 and getattr(error, "transient", True):
            log.warning("transcode of video %s failed, will retry: %s", video_id, message)
            raise
        job.fail(message)
        return Status.FAILED
    finally:
        job.discard()
