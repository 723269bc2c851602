"""Runs the pipeline of DESIGN.md for one video: probe, one ffmpeg for the whole ladder, poster,
atomic publish. The ffmpeg arguments come from ladder.py; this module only runs them."""

import contextlib
import logging
import os
import shutil
import subprocess
import threading
import time
import uuid
from collections import deque
from datetime import UTC, datetime

import imageio_ffmpeg
import m3u8
import sqlalchemy as sa
from flask import current_app

from videoflix.extensions import db
from videoflix.media import POSTER_DIR
from videoflix.processes import die_with_parent
from videoflix.uploads import media_path, remove_media
from videoflix.videos import ladder
from videoflix.videos.models import Status, Video
from videoflix.videos.probe import NotAVideo, probe

log = logging.getLogger(__name__)
PROGRESS_INTERVAL = 1.0  # seconds between progress writes to the Video row
STDERR_TAIL_LINES = 20


class Cancelled(Exception):
    """The video was deleted or re-queued while its job ran."""


class FFmpegFailed(Exception):
    def __init__(self, message, stderr_tail=""):
        super().__init__(message)
        self.stderr_tail = stderr_tail


def ffmpeg_binary():
    return current_app.config["FFMPEG_BINARY"] or imageio_ffmpeg.get_ffmpeg_exe()


def hls_root(video_id):
    """MEDIA_ROOT-relative folder that holds every published version of a video's renditions."""
    return f"hls/{int(video_id)}"


def run_ffmpeg(command, timeout, on_progress=None, stderr_path=None):
    """Run ffmpeg, calling on_progress(seconds_encoded) for each `-progress` report; on_progress
    returning False stops it (Cancelled). Raises FFmpegFailed on a non-zero exit or a timeout."""
    stderr_path = stderr_path or os.devnull
    with open(stderr_path, "wb") as stderr:
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=stderr, stdin=subprocess.DEVNULL, preexec_fn=die_with_parent
        )
    timed_out = threading.Event()

    def kill_on_timeout():
        timed_out.set()
        process.kill()

    timer = threading.Timer(timeout, kill_on_timeout)
    timer.start()
    cancelled = False
    try:
        for raw in process.stdout:
            key, _, value = raw.decode(errors="replace").strip().partition("=")
            if key == "out_time_us" and value.isdigit() and on_progress is not None:
                if on_progress(int(value) / 1e6) is False:
                    cancelled = True
                    process.kill()
                    break
        process.wait()
    finally:
        timer.cancel()
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stdout.close()
    if cancelled:
        raise Cancelled()
    if process.returncode != 0:
        if timed_out.is_set():
            raise FFmpegFailed(f"ffmpeg timed out after {timeout:.0f} s.", _tail(stderr_path))
        raise FFmpegFailed(f"ffmpeg exited with status {process.returncode}.", _tail(stderr_path))


def _tail(path):
    if path == os.devnull or not os.path.exists(path):
        return ""
    with open(path, "rb") as lines:
        return b"".join(deque(lines, STDERR_TAIL_LINES)).decode(errors="replace").strip()


class Job:
    """One run of the transcode job `job_id` for a video."""

    def __init__(self, video_id, job_id):
        self.video_id = video_id
        self.job_id = job_id
        self.root = media_path(hls_root(video_id))
        self.work_dir = self.root / f".tmp-{job_id}"
        self._last_report = 0.0

    def still_owned(self):
        """True while the video exists and this job is still the one it waits for."""
        current = db.session.scalar(sa.select(Video.job_id).where(Video.id == self.video_id))
        return current == self.job_id

    def video(self):
        video = db.session.get(Video, self.video_id, populate_existing=True)
        if video is None or video.job_id != self.job_id:
            raise Cancelled()
        return video

    def report(self, seconds, duration):
        now = time.monotonic()
        if now - self._last_report < PROGRESS_INTERVAL:
            return True
        self._last_report = now
        percent = max(0, min(99, int(seconds * 100 / duration))) if duration else 0
        result = db.session.execute(
            sa.update(Video)
            .where(Video.id == self.video_id, Video.job_id == self.job_id)
            .values(progress=percent, heartbeat_at=datetime.now(UTC))
        )
        db.session.commit()
        return result.rowcount == 1

    def run(self):
        video = self.video()
        video.status, video.progress, video.error = Status.PROCESSING, 0, None
        video.heartbeat_at = datetime.now(UTC)
        db.session.commit()
        source = media_path(video.source_path)
        info = probe(source)
        rungs = ladder.build_ladder(info)
        for leftover in self.root.glob(".tmp-*"):  # this job's earlier try, or superseded jobs' work
            shutil.rmtree(leftover, ignore_errors=True)
        self.work_dir.mkdir(parents=True)
        command = ladder.build_hls_command(
            ffmpeg_binary(), source, self.work_dir, info, rungs, current_app.config["TRANSCODE_PRESET"]
        )
        timeout = ladder.transcode_timeout(info, current_app.config["TRANSCODE_TIMEOUT_FACTOR"])
        run_ffmpeg(
            command,
            timeout,
            on_progress=lambda seconds: self.report(seconds, info.duration),
            stderr_path=self.work_dir / "ffmpeg.log",
        )
        stats = {rung.name: rendition_stats(self.work_dir / rung.name) for rung in rungs}
        (self.work_dir / "master.m3u8").write_text(ladder.build_master_playlist(rungs, stats, info))
        (self.work_dir / "ffmpeg.log").unlink(missing_ok=True)
        poster = None if video.poster_uploaded else self.make_poster(source, info)
        self.publish(rungs, info, poster)

    def make_poster(self, source, info):
        relative = f"{POSTER_DIR}/{uuid.uuid4().hex}.jpg"
        target = media_path(relative)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = self.work_dir / "poster.jpg"
        run_ffmpeg(ladder.build_poster_command(ffmpeg_binary(), source, partial, info), timeout=120)
        os.replace(partial, target)
        return relative

    def publish(self, rungs, info, poster):
        """Rename the finished folder into place, then flip the video's pointer to it."""
        published = self.root / self.job_id
        shutil.rmtree(published, ignore_errors=True)
        os.replace(self.work_dir, published)
        try:
            video = self.video()
        except Cancelled:
            shutil.rmtree(published, ignore_errors=True)
            remove_media(poster)
            raise
        old_hls, old_poster = video.hls_path, video.poster_path if poster else None
        video.hls_path = f"{hls_root(self.video_id)}/{self.job_id}"
        video.renditions = [rung.name for rung in rungs]
        video.duration, video.width, video.height = info.duration, info.width, info.height
        video.fps, video.has_audio = info.fps, info.has_audio
        if poster:
            video.poster_path = poster
        video.status, video.progress, video.error = Status.READY, 100, None
        db.session.commit()
        if old_hls and old_hls != video.hls_path:
            shutil.rmtree(media_path(old_hls), ignore_errors=True)
        remove_media(old_poster)

    def discard(self):
        """Remove this job's work folder, and the video's folder if nothing else is in it."""
        shutil.rmtree(self.work_dir, ignore_errors=True)
        with contextlib.suppress(OSError):
            self.root.rmdir()


def rendition_stats(folder):
    """Peak and average bitrate of a rendition, from its segment sizes and EXTINF durations."""
    playlist = m3u8.load(str(folder / "index.m3u8"))
    if not playlist.segments:
        raise FFmpegFailed(f"ffmpeg wrote no segments for {folder.name}.")
    total_bytes = total_seconds = peak = 0
    for segment in playlist.segments:
        size = (folder / segment.uri).stat().st_size
        total_bytes += size
        total_seconds += segment.duration
        peak = max(peak, size * 8 / max(segment.duration, 0.001))
    return ladder.RenditionStats(peak_bps=int(peak), average_bps=int(total_bytes * 8 / max(total_seconds, 0.001)))


def mark_failed(video_id, job_id, message):
    db.session.rollback()
    db.session.execute(
        sa.update(Video)
        .where(Video.id == video_id, Video.job_id == job_id)
        .values(status=Status.FAILED, error=message, heartbeat_at=datetime.now(UTC))
    )
    db.session.commit()


def transcode(video_id, job_id, retries_left=0):
    """Run one attempt; returns the final status. Raises to ask for a retry of a transient failure."""
    job = Job(video_id, job_id)
    try:
        job.run()
        return Status.READY
    except Cancelled:
        log.info("transcode of video %s (job %s) stopped: video deleted or re-queued", video_id, job_id)
        return "cancelled"
    except NotAVideo as error:
        mark_failed(video_id, job_id, str(error))
        return Status.FAILED
    except (FFmpegFailed, OSError) as error:
        if not job.still_owned():
            return "cancelled"
        message = str(error)
        tail = getattr(error, "stderr_tail", "")
        if tail:
            message += f"\n{tail}"
        if retries_left > 0:
            log.warning("transcode of video %s failed, will retry: %s", video_id, message)
            raise
        mark_failed(video_id, job_id, message)
        return Status.FAILED
    finally:
        job.discard()
