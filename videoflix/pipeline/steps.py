"""The transcode, step by step, in two passes over one set of steps:

- first, the fast ladder, so the video is playable within seconds: probe -> publish the playlists
  (pipeline/chunked.py then makes the sound, the chunks, the poster and the finish as tasks of
  their own); `encode_whole` makes it in one ffmpeg instead (the benchmark's "before");
- then, in the background, the efficient ladder that replaces it through the same atomic publish
  (same names, sizes and 6 s segment grid, so viewers keep playing across the swap):
  probe -> plan -> choose CRFs per title -> encode -> package -> storyboard -> publish.

Each step is one function over one `Transcode` context; the ffmpeg arguments come from media/,
the bytes go to and from the store, and the video's row changes only at the publish."""

import dataclasses
import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from flask import current_app

from videoflix.extensions import db
from videoflix.media import ladder, playlists, ratecontrol, storyboard
from videoflix.media.ffmpeg import FFmpegFailed, ffmpeg_binary, run_ffmpeg
from videoflix.media.ladder import Rung
from videoflix.media.probe import Probe, probe
from videoflix.pipeline import analysis, chunked, cleanup
from videoflix.pipeline import subtitles as subtitle_renditions
from videoflix.pipeline.job import Job, attempt
from videoflix.storage import keys, media_store
from videoflix.videos.models import Phase, Status, Video

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Ladder:
    """Which ladder a pass makes, and how."""

    specs: tuple
    gop_seconds: int
    version_suffix: str  # published versions of one job differ by it
    encode_share: float  # of the progress bar; the rest goes to choosing CRFs


FAST = Ladder(ladder.STANDARD_RUNGS, ladder.FAST_GOP_SECONDS, "", 1.0)
EFFICIENT = Ladder(ladder.EFFICIENT_RUNGS, ladder.EFFICIENT_GOP_SECONDS, "-optimised", 0.6)


@dataclass
class Transcode:
    """What the steps know of one attempt, filled in as they go."""

    job: Job
    video: Video
    ladder: Ladder
    source: Path | None = None  # a local file ffmpeg can read
    info: Probe | None = None
    rungs: list = field(default_factory=list)
    choices: dict = field(default_factory=dict)  # rung name -> ratecontrol.Choice (efficient ladder)
    poster_key: str | None = None  # a poster made by this attempt, stored but not yet published
    storyboard: bool = False  # scrub previews are in the output

    @property
    def output(self):
        """The folder that becomes the published version."""
        return self.job.workspace / "hls"

    def ffmpeg(self):
        return ffmpeg_binary(current_app.config["FFMPEG_BINARY"])

    def timeout(self):
        return ladder.transcode_timeout(self.info, current_app.config["TRANSCODE_TIMEOUT_FACTOR"])


def probe_source(t):
    local_copy = media_store().local_file(t.video.source_path, folder=t.job.workspace)
    t.source = t.job.resources.enter_context(local_copy)
    t.info = probe(t.source)
    t.job.film_seconds = t.info.duration


def plan(t):
    t.rungs = ladder.build_ladder(t.info, t.ladder.specs)
    preset = current_app.config["EFFICIENT_PRESET"]
    if t.ladder is EFFICIENT and preset:
        t.rungs = [Rung(dataclasses.replace(rung.spec, preset=preset), rung.width, rung.height) for rung in t.rungs]


def choose_crfs(t):
    """Each rung's CRF from the content (pipeline/analysis.py)."""
    on_progress = lambda done: t.job.report(done * (1 - t.ladder.encode_share))  # noqa: E731
    t.rungs, t.choices = analysis.choose_crfs(t, on_progress=on_progress)


def encode(t):
    t.output.mkdir()
    before = 1 - t.ladder.encode_share
    encode_rungs(
        t, t.rungs, t.output, lambda seconds: t.job.report(before + t.ladder.encode_share * seconds / t.info.duration)
    )


def encode_rungs(t, rungs, output, on_progress=None):
    """One ffmpeg that writes `rungs` as HLS renditions into output/<name>/."""
    preset = current_app.config["TRANSCODE_PRESET"] if t.ladder is FAST else None
    command = ladder.build_hls_command(
        t.ffmpeg(), t.source, output, t.info, rungs, preset, gop_seconds=t.ladder.gop_seconds
    )
    run_ffmpeg(command, t.timeout(), on_progress=on_progress, stderr_path=t.job.workspace / "ffmpeg.log")


def keep_within_budget(t):
    """The efficient ladder checked against what each whole rung really delivered: a rung over
    what the reference would deliver, or far above its quality target, is encoded again at the
    CRF its measurement points to (media/ratecontrol.py: at most twice), and the better encode
    by "within budget, then fewest bits at the target" is kept."""
    for index, rung in enumerate(t.rungs):
        choice = t.choices.get(rung.name)
        if choice is None:  # no per-title choice (no libvmaf): nothing to check against
            continue

        def encode_at(crf, rung=rung):
            again = Rung(dataclasses.replace(rung.spec, crf=crf), rung.width, rung.height)
            output = reencode_folder(t, rung, crf)
            output.mkdir()
            encode_rungs(t, [again], output)
            return ratecontrol.Encode(crf, delivered_kbps(output / rung.name))

        first = ratecontrol.Encode(rung.spec.crf, delivered_kbps(t.output / rung.name))
        best, encodes = ratecontrol.settle(choice, first, encode_at, rung.spec.audio_kbps)
        log.info("video %s %s: %s", t.video.id, rung.name,
                 ", ".join(f"CRF {e.crf}: {e.kbps:.0f} kb/s" for e in encodes) + f"; kept CRF {best.crf}, "
                 f"budget {ratecontrol.rung_budget(choice, rung.spec.audio_kbps):.0f} kb/s")  # fmt: skip
        if best is not first:
            shutil.rmtree(t.output / rung.name)
            shutil.move(reencode_folder(t, rung, best.crf) / rung.name, t.output / rung.name)
            t.rungs[index] = Rung(dataclasses.replace(rung.spec, crf=best.crf), rung.width, rung.height)


def reencode_folder(t, rung, crf):
    return t.job.workspace / f"again-{rung.name}-{crf}"


def delivered_kbps(folder):
    """What a rendition's segments deliver (video + audio), in kb/s."""
    return playlists.rendition_stats(folder).average_bps / 1000


def package(t):
    """The master playlist, from the bitrates the finished renditions measure, with the video's
    subtitle tracks cut to the new renditions' segments."""
    stats = {rung.name: playlists.rendition_stats(t.output / rung.name) for rung in t.rungs}
    lowest = t.output / t.rungs[0].name
    durations, start_pts = subtitle_renditions.grid(lowest / "index.m3u8", lowest / "000.ts")
    tracks = subtitle_renditions.write_renditions(t.output, t.video.id, durations, start_pts, t.job.workspace)
    variants, audio = playlists.variants(t.rungs, stats, t.info), playlists.audio_renditions(t.info)
    (t.output / playlists.VARIANTS_FILE).write_text(playlists.variants_json(variants, audio))
    (t.output / "master.m3u8").write_text(playlists.master_playlist(variants, tracks, audio))


def make_storyboard(t):
    """Scrub previews from the lowest rendition just encoded (cheap to decode), into the version.
    Never what stops a video from playing: if ffmpeg fails here, the version has none."""
    lowest = t.rungs[0]
    board = storyboard.plan(t.info.duration, lowest.width, lowest.height)
    sheets = t.output / storyboard.FOLDER
    sheets.mkdir()
    command = storyboard.build_command(t.ffmpeg(), storyboard.rendition_input(t.output / lowest.name / "index.m3u8"),
                                       sheets, board)  # fmt: skip
    try:
        run_ffmpeg(command, t.timeout(), stderr_path=t.job.workspace / "storyboard.log")
    except FFmpegFailed as error:
        log.warning("no storyboard for video %s: %s", t.video.id, error)
        shutil.rmtree(sheets, ignore_errors=True)
        return
    (t.output / storyboard.TRACK).write_text(storyboard.webvtt(board, t.info.duration))
    t.storyboard = True


def make_poster(t):
    """A poster from the video, unless staff uploaded one."""
    if not t.video.poster_uploaded:
        t.poster_key = chunked.store_poster(t.ffmpeg(), t.source, t.info, t.job.workspace)


def publish(t):
    """Put the new version in the store whole, then flip the video's pointer to it and retire the old one."""
    store = media_store()
    version = keys.rendition_version(t.video.id, t.job.job_id + t.ladder.version_suffix)
    try:
        store.put_tree(t.output, version)
        video = t.job.video()
    except BaseException:  # cancelled meanwhile, or the store failed: nothing of this attempt stays
        store.delete_prefix(version)
        store.delete(t.poster_key)
        raise
    if t.poster_key and video.poster_uploaded:  # staff uploaded or picked one meanwhile: theirs stays
        store.delete(t.poster_key)
        t.poster_key = None
    old_version, old_poster = video.hls_path, video.poster_path if t.poster_key else None
    video.hls_path = version
    video.renditions = [rung.name for rung in t.rungs]
    video.duration, video.width, video.height = t.info.duration, t.info.width, t.info.height
    video.fps, video.has_audio = t.info.fps, t.info.has_audio
    video.has_storyboard = t.storyboard
    if t.poster_key:
        video.poster_path = t.poster_key
    video.phase = next_phase(t.ladder)
    video.status, video.progress, video.error = Status.READY, 100, None
    db.session.commit()
    cleanup.retire(prefixes=[old_version] if old_version != version else [], stored_keys=[old_poster])


def next_phase(published):
    if published is EFFICIENT:
        return Phase.OPTIMISED
    return Phase.OPTIMISING if current_app.config["TRANSCODE_OPTIMISE"] else Phase.FAST


def probe_shared_source(t):
    """The probe of the first pass, from the copy every chunk on this machine shares."""
    t.source = chunked.shared_source(t.video.id, t.job.job_id, t.video.source_path)
    t.info = probe(t.source)


def publish_playable(t):
    """The version with every playlist and no segment yet: the video is playable, its segments are
    made by the chunks in order and on request (pipeline/chunked.py)."""
    film = chunked.Film.of(t.info)
    store = media_store()
    version = chunked.job_version(t.video.id, t.job.job_id)
    try:
        store.put_tree(chunked.publish_playlists(t, film), version)
        video = t.job.video()
    except BaseException:
        store.delete_prefix(version)
        raise
    if video.hls_path is None:  # a new video plays at once; a re-transcode's earlier version plays until the finish
        video.hls_path, video.renditions, video.has_storyboard = version, [rung.name for rung in film.rungs], False
    video.duration, video.width, video.height = t.info.duration, t.info.width, t.info.height
    video.fps, video.has_audio = t.info.fps, t.info.has_audio
    video.status, video.phase, video.progress, video.error = Status.READY, Phase.ENCODING, 0, None
    chunked.plan_parts(video, film, t.job.queued_at)
    db.session.commit()


START_STEPS = (probe_shared_source, publish_playable)
FAST_STEPS = (probe_source, plan, encode, package, make_storyboard, make_poster, publish)
EFFICIENT_STEPS = (probe_source, plan, choose_crfs, encode, keep_within_budget, package, make_storyboard, publish)


def _runner(ladder_pass, steps):
    def run_steps(job, video):
        context = Transcode(job=job, video=video, ladder=ladder_pass)
        for step in steps:
            step(context)

    return run_steps


def start(video_id, job_id, retries_left=0):
    """The first pass's start: the video playable, its parts planned. See job.attempt."""
    return attempt(video_id, job_id, _runner(FAST, START_STEPS), retries_left)


def encode_whole(video_id, job_id, retries_left=0):
    """The fast ladder in one ffmpeg on one worker, published when done (what the chunks replace;
    bench/chunks.py measures both)."""
    return attempt(video_id, job_id, _runner(FAST, FAST_STEPS), retries_left)


def optimise(video_id, job_id, retries_left=0):
    """The second pass: the efficient ladder replaces the fast one; the video plays throughout."""
    return attempt(video_id, job_id, _runner(EFFICIENT, EFFICIENT_STEPS), retries_left, optimising=True)
