"""The transcode, step by step: probe -> plan -> encode -> package -> poster -> publish.

Each step is one function over one `Transcode` context; the ffmpeg arguments come from media/,
the bytes go to and from the store, and the video's row changes only at the publish."""

from dataclasses import dataclass, field
from pathlib import Path

from flask import current_app

from videoflix.extensions import db
from videoflix.media import ladder, playlists
from videoflix.media.ffmpeg import ffmpeg_binary, run_ffmpeg
from videoflix.media.probe import Probe, probe
from videoflix.pipeline.job import Job, attempt
from videoflix.storage import keys, media_store
from videoflix.videos.models import Status, Video

POSTER_TIMEOUT = 120  # seconds


@dataclass
class Transcode:
    """What the steps know of one attempt, filled in as they go."""

    job: Job
    video: Video
    source: Path | None = None  # a local file ffmpeg can read
    info: Probe | None = None
    rungs: list = field(default_factory=list)
    poster_key: str | None = None  # a poster made by this attempt, stored but not yet published

    @property
    def output(self):
        """The folder that becomes the published version."""
        return self.job.workspace / "hls"


def probe_source(t):
    t.source = t.job.resources.enter_context(media_store().local_file(t.video.source_path))
    t.info = probe(t.source)


def plan(t):
    t.rungs = ladder.build_ladder(t.info)


def encode(t):
    cfg = current_app.config
    t.output.mkdir()
    command = ladder.build_hls_command(
        ffmpeg_binary(cfg["FFMPEG_BINARY"]), t.source, t.output, t.info, t.rungs, cfg["TRANSCODE_PRESET"]
    )
    run_ffmpeg(
        command,
        ladder.transcode_timeout(t.info, cfg["TRANSCODE_TIMEOUT_FACTOR"]),
        on_progress=lambda seconds: t.job.report(seconds, t.info.duration),
        stderr_path=t.job.workspace / "ffmpeg.log",
    )


def package(t):
    """The master playlist, from the bitrates the finished renditions measure."""
    stats = {rung.name: playlists.rendition_stats(t.output / rung.name) for rung in t.rungs}
    (t.output / "master.m3u8").write_text(playlists.build_master_playlist(t.rungs, stats, t.info))


def make_poster(t):
    """A poster from the video, unless staff uploaded one."""
    if t.video.poster_uploaded:
        return
    partial = t.job.workspace / "poster.jpg"
    command = ladder.build_poster_command(ffmpeg_binary(current_app.config["FFMPEG_BINARY"]), t.source, partial, t.info)
    run_ffmpeg(command, timeout=POSTER_TIMEOUT)
    t.poster_key = keys.new_poster(".jpg")
    media_store().put_file(t.poster_key, partial)


def publish(t):
    """Put the new version in place, then flip the video's pointer to it and drop the old one."""
    store = media_store()
    version = keys.rendition_version(t.video.id, t.job.job_id)
    try:
        store.put_tree(t.output, version)
        video = t.job.video()
    except BaseException:  # cancelled meanwhile, or the store failed: nothing of this attempt stays
        store.delete_prefix(version)
        store.delete(t.poster_key)
        raise
    old_version, old_poster = video.hls_path, video.poster_path if t.poster_key else None
    video.hls_path = version
    video.renditions = [rung.name for rung in t.rungs]
    video.duration, video.width, video.height = t.info.duration, t.info.width, t.info.height
    video.fps, video.has_audio = t.info.fps, t.info.has_audio
    if t.poster_key:
        video.poster_path = t.poster_key
    video.status, video.progress, video.error = Status.READY, 100, None
    db.session.commit()
    if old_version and old_version != version:
        store.delete_prefix(old_version)
    store.delete(old_poster)


STEPS = (probe_source, plan, encode, package, make_poster, publish)


def run_steps(job, video):
    context = Transcode(job=job, video=video)
    for step in STEPS:
        step(context)


def transcode(video_id, job_id, retries_left=0):
    """One attempt of the whole transcode; see job.attempt for how it ends."""
    return attempt(video_id, job_id, run_steps, retries_left)
