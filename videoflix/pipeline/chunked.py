"""The fast ladder, chunked (media/chunks.py plans it): a film is playable as soon as it is probed,
and every worker added finishes it sooner.

- start (steps.start, a job attempt as before): probe, plan, publish a version that holds only
  playlists, complete VOD ones on the grid; the video is ready, phase `encoding`. One part row per
  task is written in the same commit.
- the sound: one ffmpeg for the whole film; each audio segment is stored as soon as ffmpeg has
  moved past it, and the part row counts them.
- each chunk: one ffmpeg for its stretch of every rung, then each segment joined with its sound
  and stored under its global number. Chunks are queued in order (the first highest); a viewer
  asking for a segment not yet made queues its chunk again ahead of all (videos/playback.py).
- finish: when the last chunk is done, the master playlist from what was made, the subtitles cut to
  the grid, the storyboard; then the efficient pass is queued as before.

Every part is claimed through its row (a second copy of a task finds it taken and does nothing),
beats its own heartbeat (recovery re-queues a part whose worker died: a kill -9 loses that part
only), and stops when its job no longer owns the video (re-queued, deleted, failed)."""

import contextlib
import fcntl
import logging
import os
import shutil
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import m3u8
import sqlalchemy as sa
from flask import current_app
from sqlalchemy.orm.exc import ObjectDeletedError

from videoflix import metrics
from videoflix.extensions import as_utc, db
from videoflix.media import chunks, conform, ladder, playlists, storyboard
from videoflix.media.ffmpeg import FFmpegFailed, ffmpeg_binary, in_foreground, run_ffmpeg, source_input
from videoflix.media.probe import NotAVideo, probe
from videoflix.pipeline import cleanup
from videoflix.pipeline import subtitles as subtitle_renditions
from videoflix.pipeline.job import Cancelled, disk_full_note, stale_after, update_owned
from videoflix.storage import keys, media_store
from videoflix.storage.local import LocalStorage
from videoflix.videos.models import PartKind, PartState, Phase, Status, TranscodePart, Video

log = logging.getLogger(__name__)
SOUND_POLL_SECONDS = 0.25
# A viewer's chunk waits for the film's sound if the sound is at most this many segments short of
# it (seconds at the sound's speed); further, it takes its own (takes_own_sound).
SOUND_LEAD_SEGMENTS = 10
CANCELLED, SKIPPED, DONE, FAILED, WAITING = "cancelled", "skipped", "done", "failed", "waiting"


@dataclass(frozen=True)
class Film:
    """What every part of one job knows alike, planned again from the probe wherever it runs."""

    info: object  # media.probe.Probe
    rungs: list
    durations: list  # of every segment
    chunks: list

    @classmethod
    def of(cls, info):
        durations = chunks.segment_durations(info.duration, info.fps)
        rungs = ladder.build_ladder(info, ladder.STANDARD_RUNGS)
        return cls(info, rungs, durations, chunks.plan_chunks(durations, info.picture_duration))


def shared_source(video_id, job_id, key):
    """The source as a local file for every part of the job on this machine: the stored file itself
    on a local store; from a bucket, one download per machine (under a lock), kept until the job's
    finish removes the video's scratch folder."""
    store = media_store()
    if isinstance(store, LocalStorage):
        return Path(store.path(key))
    folder = store.work_root() / str(video_id)
    folder.mkdir(parents=True, exist_ok=True)
    cached = folder / f"source-{job_id}{Path(key).suffix}"
    lock_path = folder / f"source-{job_id}.lock"
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not cached.exists():
            try:
                with store.local_file(key, folder=folder) as download:
                    os.replace(download, cached)
            except BaseException:
                lock_path.unlink(missing_ok=True)  # the next try makes another; nothing of this one stays
                raise
    return cached


def forget_machine_copies(video_id, job_id):
    """Remove this machine's scratch of the job: the source's copy, its lock, parts' leftovers."""
    folder = media_store().work_root() / str(video_id)
    for leftover in folder.glob(f"source-{job_id}*"):
        leftover.unlink(missing_ok=True)
    shutil.rmtree(folder / job_id, ignore_errors=True)
    with contextlib.suppress(OSError):
        folder.rmdir()


def job_version(video_id, job_id):
    """Where a job's fast ladder is made: published from the start for a new video, and at its
    finish for one that plays an earlier version meanwhile (a re-transcode)."""
    return keys.rendition_version(video_id, job_id)


def parts_of(video_id, job_id, kind=None):
    query = sa.select(TranscodePart).where(TranscodePart.video_id == video_id, TranscodePart.job_id == job_id)
    if kind:
        query = query.where(TranscodePart.kind == kind)
    return db.session.scalars(query.order_by(TranscodePart.kind, TranscodePart.number)).all()


def plan_parts(video, film, queued_at=None):
    """The part rows of a new job (added to the session; the start commits them with the publish),
    and the rows of any job before it removed."""
    db.session.execute(sa.delete(TranscodePart).where(TranscodePart.video_id == video.id))
    rows = [TranscodePart(video_id=video.id, job_id=video.job_id, kind=PartKind.CHUNK, number=chunk.number,
                          first_segment=chunk.first_segment, segment_count=chunk.segment_count)
            for chunk in film.chunks]  # fmt: skip
    rows.append(TranscodePart(video_id=video.id, job_id=video.job_id, kind=PartKind.POSTER, number=0))
    if film.info.has_audio:
        rows.append(TranscodePart(video_id=video.id, job_id=video.job_id, kind=PartKind.SOUND, number=0))
    for row in rows:
        row.queued_at = queued_at or datetime.now(UTC)
    db.session.add_all(rows)


def publish_playlists(t, film):
    """The version that makes the video playable before any segment exists: master, variants and
    every media playlist, on the grid. Segments are added to it as chunks finish."""
    out = t.job.workspace / "playable"
    for rung in film.rungs:
        (out / rung.name).mkdir(parents=True)
        (out / rung.name / "index.m3u8").write_text(chunks.media_playlist(film.durations))
    audio = playlists.audio_renditions(film.info)
    for folder in alternative_audio_folders(film.info):
        (out / folder).mkdir(parents=True)
        (out / folder / "index.m3u8").write_text(chunks.media_playlist(film.durations))
    variants = playlists.planned_variants(film.rungs, film.info)
    (out / playlists.VARIANTS_FILE).write_text(playlists.variants_json(variants, audio))
    (out / "master.m3u8").write_text(playlists.master_playlist(variants, (), audio))
    return out


def alternative_audio_folders(info):
    """The folders of the source's further audio tracks (the first is joined into every rendition)."""
    return [ladder.alternative_audio_folder(r.number) for r in playlists.audio_renditions(info) if r.number]


class Part:
    """One claimed part of a job: its row's heartbeat from a thread of its own, its workspace, and
    whether its job still owns the video."""

    def __init__(self, video_id, job_id, kind, number=0):
        self.video_id, self.job_id, self.kind, self.number = video_id, job_id, kind, number
        self.workspace = media_store().work_root() / str(video_id) / job_id / f"{kind}-{number}"
        self._app = current_app._get_current_object()
        self._stopped = threading.Event()
        self._lost = threading.Event()
        self._beat = threading.Thread(target=self._run, daemon=True)
        self.film = self.source = self.video = self.chunk = None
        self.claimed = self.hurried = False

    def row(self):
        """The WHERE clause of this part's row."""
        return sa.and_(TranscodePart.video_id == self.video_id, TranscodePart.job_id == self.job_id,
                       TranscodePart.kind == self.kind, TranscodePart.number == self.number)  # fmt: skip

    def claim(self):
        """Take the part if it is queued (or its worker died) and its job still owns a playable video."""
        now = datetime.now(UTC)
        taken = db.session.execute(
            sa.update(TranscodePart)
            .where(self.row(), sa.or_(TranscodePart.state == PartState.QUEUED,
                                       sa.and_(TranscodePart.state == PartState.RUNNING,
                                               TranscodePart.heartbeat_at < now - stale_after())))
            .values(state=PartState.RUNNING, heartbeat_at=now)
        ).rowcount  # fmt: skip
        db.session.commit()
        if not taken:
            return False
        try:
            self.video = self.owned_video()
        except Cancelled:
            return False
        self.claimed = True
        self._beat.start()
        shutil.rmtree(self.workspace, ignore_errors=True)  # a dead worker's try of this part
        self.workspace.mkdir(parents=True)
        self.source = shared_source(self.video_id, self.job_id, self.video.source_path)
        self.film = Film.of(probe(self.source))
        if self.kind == PartKind.CHUNK:  # its segments are its row's: a seek may have split the planned chunk
            row = db.session.execute(sa.select(TranscodePart.segment_count, TranscodePart.hurried).where(self.row()))
            found = row.first()
            if found is None:  # the video went (and its rows with it) since the claim
                raise Cancelled()
            self.chunk = chunks.chunk_at(self.film.durations, self.number, found.segment_count)
            self.hurried = found.hurried
        return True

    def owned_video(self):
        video = db.session.get(Video, self.video_id, populate_existing=True)
        if (
            video is None
            or video.job_id != self.job_id
            or video.status != Status.READY
            or video.phase != Phase.ENCODING
        ):
            raise Cancelled()
        return video

    def _run(self):
        with self._app.app_context():
            while not self._stopped.wait(self._app.config["JOB_HEARTBEAT_SECONDS"]):
                try:
                    db.session.execute(
                        sa.update(TranscodePart).where(self.row()).values(heartbeat_at=datetime.now(UTC))
                    )
                    if not update_owned(self.video_id, self.job_id):
                        self._lost.set()
                except Exception as error:  # a missed beat is not the part's failure; the next one may land
                    log.warning("heartbeat of video %s %s %s failed: %s", self.video_id, self.kind, self.number, error)
                    db.session.rollback()
            db.session.remove()

    def check(self, _seconds=None):
        """ffmpeg's progress callback: Cancelled once the job lost the video."""
        if self._lost.is_set():
            raise Cancelled()

    def version(self):
        return job_version(self.video_id, self.job_id)

    def done(self, **values):
        db.session.execute(
            sa.update(TranscodePart).where(self.row(), TranscodePart.state != PartState.DONE)
            .values(state=PartState.DONE, **values)
        )  # fmt: skip
        db.session.commit()

    def release(self):
        """Back to the queue, for Huey's retry of a transient failure."""
        db.session.rollback()
        db.session.execute(sa.update(TranscodePart).where(self.row()).values(state=PartState.QUEUED))
        db.session.commit()

    def close(self):
        """Stop beating and remove the workspace, if this copy of the task claimed the part (a
        copy that found it taken must not touch the workspace of the one running it)."""
        self._stopped.set()
        if self._beat.is_alive():
            self._beat.join()
        if self.claimed:
            shutil.rmtree(self.workspace, ignore_errors=True)

    def ffmpeg(self):
        return ffmpeg_binary(current_app.config["FFMPEG_BINARY"])

    def film_seconds(self):
        """Seconds of film this part encoded (its encode speed's numerator), None for the others."""
        if self.kind == PartKind.CHUNK:
            return self.chunk.seconds
        return self.film.info.duration if self.kind == PartKind.SOUND else None

    def timeout(self, seconds):
        return max(120.0, seconds * current_app.config["TRANSCODE_TIMEOUT_FACTOR"])


def run_part(video_id, job_id, kind, number, work, retries_left=0):
    """Claim the part and run `work(part)`. Returns DONE, SKIPPED (taken, finished or not this
    job's), CANCELLED or FAILED; raises to ask Huey for a retry of a transient failure."""
    part = Part(video_id, job_id, kind, number)
    started = time.monotonic()
    try:
        if not part.claim():
            metrics.part_ended(kind, SKIPPED)
            return SKIPPED
        work(part)
        part.done()  # for the work that records nothing more (the finish has removed every row)
        seconds = time.monotonic() - started
        log.info("video %s: %s %s made in %.1f s", video_id, kind, number, seconds)
        metrics.part_ended(kind, DONE, seconds, part.film_seconds())
        return DONE
    except SoundNotYet:
        log.info("video %s %s %s waits for the sound: back to the queue", video_id, kind, number)
        part.release()
        metrics.part_ended(kind, WAITING)
        return WAITING
    except (Cancelled, ObjectDeletedError):
        log.info("video %s %s %s stopped: the job no longer owns the video", video_id, kind, number)
        metrics.part_ended(kind, CANCELLED)
        return CANCELLED
    except NotAVideo as error:
        fail(video_id, job_id, str(error))
        metrics.part_ended(kind, FAILED)
        return FAILED
    except (FFmpegFailed, OSError) as error:
        db.session.rollback()
        message = disk_full_note(part.workspace.parent) + str(error)
        if getattr(error, "stderr_tail", ""):
            message += f"\n{error.stderr_tail}"
        if retries_left > 0 and getattr(error, "transient", True):
            log.warning("video %s %s %s failed, will retry: %s", video_id, kind, number, message)
            part.release()
            metrics.part_ended(kind, "retried")
            raise
        fail(video_id, job_id, message)
        metrics.part_ended(kind, FAILED)
        return FAILED
    finally:
        part.close()


def fail(video_id, job_id, message):
    """A part failed for good: the video fails and its playable-while-encoding version goes (every
    other part of the job stops on its next beat)."""
    db.session.rollback()
    video = db.session.get(Video, video_id, populate_existing=True)
    if video is None or video.job_id != job_id or video.phase != Phase.ENCODING:
        return  # gone, re-queued, or finished meanwhile (a late copy of a part failed: nothing to undo)
    version = job_version(video_id, job_id)
    video.status, video.error, video.phase = Status.FAILED, message, None
    if video.hls_path == version:
        video.hls_path, video.renditions = None, []
    db.session.execute(sa.delete(TranscodePart).where(TranscodePart.video_id == video_id))
    db.session.commit()
    media_store().delete_prefix(version)
    forget_machine_copies(video_id, job_id)


# --- the sound ---


def stored_segments(folder, store, prefix, already, finished):
    """Store the segments of `folder` ffmpeg has moved past (all once it has `finished`), from
    number `already` on; returns how many are stored now."""
    names = sorted((path.name for path in folder.glob("*.ts")), key=lambda name: int(name.split(".")[0]))
    complete = names if finished else names[:-1]
    for name in complete[already:]:
        store.put_file(f"{prefix}/{name}", folder / name)
    return max(already, len(complete))


def make_sound(part):
    out, store, version = part.workspace / "sound", media_store(), part.version()
    folders = [chunks.AUDIO_FOLDER, *alternative_audio_folders(part.film.info)]
    stored = dict.fromkeys(folders, 0)

    def store_finished(finished=False):
        part.check()
        for folder in folders:
            before = stored[folder]
            stored[folder] = stored_segments(out / folder, store, f"{version}/{folder}", before, finished)
            if folder == chunks.AUDIO_FOLDER and stored[folder] != before:
                db.session.execute(sa.update(TranscodePart).where(part.row()).values(segments_done=stored[folder]))
                db.session.commit()

    command = chunks.build_audio_command(part.ffmpeg(), part.source, out, part.film.info)
    # Every chunk's segments wait for their stretch of it, and a seek far ahead for all of it up to
    # there, while it costs a few percent of a core: it is not niced behind the chunks' encodes.
    with in_foreground():
        run_ffmpeg(command, part.timeout(part.film.info.duration), on_progress=lambda _s: store_finished(),
                   stderr_path=part.workspace / "sound.log")  # fmt: skip
    store_finished(finished=True)
    for folder in folders[1:]:  # alternative tracks: the playlist ffmpeg measured replaces the planned one
        store.put_file(f"{version}/{folder}/index.m3u8", out / folder / "index.m3u8")
    part.done(segments_done=stored[chunks.AUDIO_FOLDER])


class SoundNotYet(Exception):
    """The sound this chunk joins is not being made right now (queued, or its worker died): the
    chunk goes back to the queue for a while instead of holding a worker thread that the sound
    itself may need."""


def sound_progress(part):
    """The sound part's row (state, segments_done, heartbeat_at); Cancelled once the job's rows are gone."""
    row = db.session.execute(
        sa.select(TranscodePart.state, TranscodePart.segments_done, TranscodePart.heartbeat_at).where(
            TranscodePart.video_id == part.video_id, TranscodePart.job_id == part.job_id,
            TranscodePart.kind == PartKind.SOUND)
    ).first()  # fmt: skip
    db.session.commit()  # a fresh snapshot on the next read
    if row is None:
        raise Cancelled()
    return row


def under_way(sound):
    """Whether a live worker makes the sound now (its row running, its heartbeat fresh)."""
    beating = sound.heartbeat_at is not None and as_utc(sound.heartbeat_at) > datetime.now(UTC) - stale_after()
    return sound.state == PartState.RUNNING and beating


def takes_own_sound(part):
    """Whether a chunk is made with its own stretch of sound: a viewer waits for it (it is hurried)
    and the film's sound is not under way or more than SOUND_LEAD_SEGMENTS short of it, which on a
    long film from a slow disk is a minute of reading the whole source. It is made again with the
    film's sound before the finish (record_chunk_done), so the film's sound has no join."""
    if not (part.hurried and part.film.info.has_audio):
        return False
    sound = sound_progress(part)
    if sound.state == PartState.DONE:
        return False
    return not under_way(sound) or sound.segments_done + SOUND_LEAD_SEGMENTS < part.chunk.first_segment


def wait_for_sound(part, through=None):
    """The number of audio segments stored once the sound covers segment `through` (or is whole);
    waits only while a live worker makes it, else SoundNotYet. With no `through`: returns as soon as
    the sound is seen under way (or done)."""
    while True:
        row = sound_progress(part)
        if row.state == PartState.DONE or (through is not None and row.segments_done > through):
            return row.segments_done
        if not under_way(row):
            raise SoundNotYet()
        if through is None:
            return row.segments_done
        part.check()
        time.sleep(SOUND_POLL_SECONDS)


# --- a chunk ---


def make_chunk(part):
    film, chunk, store = part.film, part.chunk, media_store()
    own_sound = takes_own_sound(part)
    joins_sound = film.info.has_audio and not own_sound
    if joins_sound:
        wait_for_sound(part)  # the sound under way or done, before a minute of encoding is spent
    out = part.workspace / "hls"
    preset = current_app.config["TRANSCODE_PRESET"]
    command = ladder.build_hls_command(part.ffmpeg(), part.source, out, film.info, film.rungs, preset, chunk=chunk,
                                       own_sound=own_sound)  # fmt: skip
    run_ffmpeg(command, part.timeout(chunk.seconds), on_progress=part.check, stderr_path=part.workspace / "chunk.log")
    expected = [chunks.segment_name(number) for number in chunk.segments]
    audio_count = 0  # audio segments stored: those this chunk joins are among them
    if joins_sound:
        audio_count = wait_for_sound(part, chunk.segments[-1] if not chunk.last else len(film.durations))
    made, stored, joins = {}, {}, []
    for rung in film.rungs:
        folder = out / rung.name
        segments = m3u8.load(str(folder / "index.m3u8")).segments
        if [segment.uri for segment in segments] != expected:
            raise FFmpegFailed(f"Chunk {chunk.number} of {rung.name} made {[s.uri for s in segments]}, not {expected}.",
                               transient=False)  # fmt: skip
        made[rung.name] = [segment.duration for segment in segments]
        for number, segment in zip(chunk.segments, segments, strict=True):
            key = f"{part.version()}/{rung.name}/{segment.uri}"
            wanted = chunks.audio_for(number, audio_count, len(film.durations) - 1)
            if wanted:  # joined with its stretch of the film's sound
                stored[key] = folder / f"joined-{segment.uri}"
                joins.append((folder / segment.uri, wanted, stored[key]))
            else:  # no sound, or the sound ended earlier: this stretch is silent in the source too
                stored[key] = folder / segment.uri
    if joins:
        join_sound(part, joins)
    for key, path in stored.items():
        store.put_file(key, path)
    sizes = iter(path.stat().st_size for path in stored.values())
    made = {name: [[seconds, next(sizes)] for seconds in durations] for name, durations in made.items()}
    part.done(made=made, own_sound=own_sound)
    if chunk.number == 0:  # the film's start is there to play
        queued_at = db.session.scalar(sa.select(TranscodePart.queued_at).where(part.row()))
        if queued_at is not None:
            metrics.playable_after((datetime.now(UTC) - as_utc(queued_at)).total_seconds())


def join_sound(part, joins):
    """Every (video segment, audio segment numbers, target) of a chunk joined in one ffmpeg."""
    store = media_store()
    with contextlib.ExitStack() as stack:
        local = {}
        for number in sorted({number for _video, wanted, _target in joins for number in wanted}):
            key = f"{part.version()}/{chunks.AUDIO_FOLDER}/{chunks.segment_name(number)}"
            local[number] = stack.enter_context(store.local_file(key, folder=part.workspace))
        listed = [(video, [local[number] for number in wanted], target) for video, wanted, target in joins]
        command = chunks.build_join_command(part.ffmpeg(), listed)
        run_ffmpeg(command, part.timeout(0), stderr_path=part.workspace / "join.log")


# --- the poster ---

POSTER_TIMEOUT = 120  # seconds


def store_poster(ffmpeg, source, info, workspace):
    """A poster frame of `source`, stored; its key."""
    partial = workspace / "poster.jpg"
    command = ladder.build_poster_command(ffmpeg, source, partial, info)
    run_ffmpeg(command, timeout=POSTER_TIMEOUT, stderr_path=workspace / "poster.log")
    if not partial.is_file():
        raise FFmpegFailed("No poster frame could be made from the video: upload a poster, then re-transcode.",
                           transient=False)  # fmt: skip
    key = keys.new_poster(".jpg")
    media_store().put_file(key, partial)
    return key


def make_poster(part):
    """The video's poster from its frames (unless staff uploaded one), in place of the one an
    earlier job made; the catalogue shows it at once."""
    video = part.owned_video()
    if video.poster_uploaded or (video.poster_path and part.kind == PartKind.FINISH):
        return
    key = store_poster(part.ffmpeg(), part.source, part.film.info, part.workspace)
    try:
        video = part.owned_video()
    except Cancelled:
        media_store().delete(key)
        raise
    if video.poster_uploaded:  # staff uploaded or picked one meanwhile: theirs stays
        media_store().delete(key)
        return
    old_poster, video.poster_path = video.poster_path, key
    db.session.commit()
    cleanup.retire(stored_keys=[old_poster])


# --- the finish ---


def finish(part):
    """The join step: playlists and master from what the chunks made, subtitles, storyboard, and the
    video's next phase. Idempotent: a re-run after a crash writes the same objects again."""
    film, store, version = part.film, media_store(), part.version()
    made = {rung.name: [] for rung in film.rungs}
    for row in parts_of(part.video_id, part.job_id, PartKind.CHUNK):
        for name, segments in (row.made or {}).items():
            made[name] += segments
    out = part.workspace / "finish"
    out.mkdir()
    stats = {}
    for rung in film.rungs:
        durations = [seconds for seconds, _size in made[rung.name]]
        if len(durations) != len(film.durations):
            raise FFmpegFailed(
                f"{rung.name} has {len(durations)} segments, not {len(film.durations)}.", transient=False
            )
        (out / rung.name).mkdir()
        (out / rung.name / "index.m3u8").write_text(chunks.media_playlist(durations))
        with store.local_file(f"{version}/{rung.name}/{chunks.segment_name(0)}", folder=part.workspace) as first:
            codec = playlists.video_codec_of(first)
            if rung is film.rungs[0]:
                _, start_pts = subtitle_renditions.grid(out / rung.name / "index.m3u8", first)
        stats[rung.name] = playlists.stats_of(made[rung.name], codec)
    tracks = subtitle_renditions.write_renditions(out, part.video_id, film.durations, start_pts, part.workspace)
    audio = playlists.audio_renditions(film.info)
    variants = playlists.variants(film.rungs, stats, film.info)
    (out / playlists.VARIANTS_FILE).write_text(playlists.variants_json(variants, audio))
    (out / "master.m3u8").write_text(playlists.master_playlist(variants, tracks, audio))
    has_storyboard = make_storyboard(part, out)
    make_poster(part)  # if the poster part has not (its worker died meanwhile)
    for path in sorted(out.rglob("*")):
        if path.is_file():
            store.put_file(f"{version}/{path.relative_to(out).as_posix()}", path)
    store.delete_prefix(f"{version}/{chunks.AUDIO_FOLDER}")
    video = part.owned_video()
    old_version = video.hls_path if video.hls_path != version else None
    video.hls_path, video.renditions = version, [rung.name for rung in film.rungs]
    video.has_storyboard = has_storyboard
    video.phase = Phase.OPTIMISING if current_app.config["TRANSCODE_OPTIMISE"] else Phase.FAST
    video.progress, video.error = 100, None
    db.session.execute(sa.delete(TranscodePart).where(TranscodePart.video_id == part.video_id))
    db.session.commit()
    cleanup.retire(prefixes=[old_version])
    forget_machine_copies(part.video_id, part.job_id)  # and what parts killed after their end left


def make_storyboard(part, out):
    """Scrub previews from the lowest rendition when the store is this disk (decoding 480p costs a
    fraction of decoding the source), else from the source, conformed as the renditions are.
    Never what stops a video: if ffmpeg fails, the version has none."""
    lowest, store = part.film.rungs[0], media_store()
    board = storyboard.plan(part.film.info.duration, lowest.width, lowest.height)
    sheets = out / storyboard.FOLDER
    sheets.mkdir()
    if isinstance(store, LocalStorage):  # every segment is stored by now; the playlist since the start
        rendition = storyboard.rendition_input(store.path(f"{part.version()}/{lowest.name}/index.m3u8"))
        command = storyboard.build_command(part.ffmpeg(), rendition, sheets, board)
    else:
        command = storyboard.build_command(part.ffmpeg(), source_input(part.source), sheets, board,
                                           conform.picture_filters(part.film.info))  # fmt: skip
    try:
        run_ffmpeg(command, part.timeout(part.film.info.duration), on_progress=part.check,
                   stderr_path=part.workspace / "storyboard.log")  # fmt: skip
    except FFmpegFailed as error:
        log.warning("no storyboard for video %s: %s", part.video_id, error)
        shutil.rmtree(sheets, ignore_errors=True)
        return False
    (out / storyboard.TRACK).write_text(storyboard.webvtt(board, part.film.info.duration))
    return True


def seconds_made(made):
    """Seconds of film a chunk made (any one rung's segments: they all cover the same stretch)."""
    first = next(iter((made or {}).values()), [])
    return sum(seconds for seconds, _size in first)


def record_chunk_done(video_id, job_id):
    """After a chunk or the sound: the video's progress; once every part is done, the chunks made
    with their own sound queued again (to be made with the film's), or else whether the finish is
    this caller's to run (its row is written exactly once: the unique row is the claim). Returns
    (finish, the numbers of the chunks to queue again)."""
    rows = parts_of(video_id, job_id)
    total = [row for row in rows if row.kind == PartKind.CHUNK]
    done = [row for row in total if row.state == PartState.DONE]
    seconds = sum(seconds_made(row.made) for row in done)
    duration = db.session.scalar(sa.select(Video.duration).where(Video.id == video_id)) or 1
    update_owned(video_id, job_id, progress=max(0, min(99, int(100 * seconds / duration))))
    sound_pending = any(row.state != PartState.DONE for row in rows if row.kind == PartKind.SOUND)
    if len(done) < len(total) or sound_pending:
        return False, []
    own_sound = [(row.id, row.number) for row in done if row.own_sound]
    if own_sound:  # the caller that sets them back queues them; the last of them to be done finishes
        return False, [number for row_id, number in own_sound if again_with_film_sound(row_id)]
    db.session.add(TranscodePart(video_id=video_id, job_id=job_id, kind=PartKind.FINISH, number=0))
    try:
        db.session.commit()
    except sa.exc.IntegrityError:  # another part got there first
        db.session.rollback()
        return False, []
    return True, []


def again_with_film_sound(row_id):
    """Set a chunk made with its own sound back to the queue, if nobody else did (compare and set).
    Its segments keep playing meanwhile: the new ones replace them in place."""
    taken = db.session.execute(
        sa.update(TranscodePart).where(TranscodePart.id == row_id, TranscodePart.own_sound.is_(True))
        .values(state=PartState.QUEUED, own_sound=False, hurried=False)
    ).rowcount  # fmt: skip
    db.session.commit()
    return bool(taken)


def hurry(video_id, job_id, segment):
    """A viewer waits for `segment`: the waiting chunk that holds it is cut (media/chunks.split) so
    that this segment is a chunk of its own, marked hurried; the rest stay waiting chunks in their
    place. Returns (the hurried chunk's number, the numbers of the new waiting chunks), or
    (None, []) when that chunk is not waiting or another request hurried it first."""
    holds = sa.and_(TranscodePart.video_id == video_id, TranscodePart.job_id == job_id,
                    TranscodePart.kind == PartKind.CHUNK)  # fmt: skip
    row = db.session.scalars(
        sa.select(TranscodePart).where(
            holds, TranscodePart.first_segment <= segment,
            TranscodePart.first_segment + TranscodePart.segment_count > segment,
            TranscodePart.state == PartState.QUEUED, TranscodePart.hurried.is_(False))
    ).first()  # fmt: skip
    if row is None:
        db.session.rollback()
        return None, []
    first, count = row.first_segment, row.segment_count
    is_last = not db.session.scalar(sa.select(sa.func.count()).where(holds, TranscodePart.first_segment > first))
    runs = [(first, count)] if is_last else chunks.split(first, count, segment)
    asked = next(run_first for run_first, run_count in runs if run_first <= segment < run_first + run_count)
    # The row becomes the first run, if nobody took or cut it meanwhile (compare and set).
    taken = db.session.execute(
        sa.update(TranscodePart)
        .where(TranscodePart.id == row.id, TranscodePart.state == PartState.QUEUED,
               TranscodePart.hurried.is_(False), TranscodePart.segment_count == count)
        .values(segment_count=runs[0][1], hurried=runs[0][0] == asked)
    ).rowcount  # fmt: skip
    if not taken:
        db.session.rollback()
        return None, []
    for run_first, run_count in runs[1:]:
        db.session.add(TranscodePart(video_id=video_id, job_id=job_id, kind=PartKind.CHUNK, number=run_first,
                                     first_segment=run_first, segment_count=run_count, hurried=run_first == asked,
                                     queued_at=row.queued_at))  # fmt: skip
    try:
        db.session.commit()
    except sa.exc.IntegrityError:  # another request cut it first
        db.session.rollback()
        return None, []
    return asked, [run_first for run_first, _count in runs[1:] if run_first != asked]
