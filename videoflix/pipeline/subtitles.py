"""Subtitle renditions inside a published version: written by the transcode's package step for the
version it makes, and republished into the current version when staff add, change or remove a
track (the master playlist is replaced whole, no video is re-encoded)."""

import logging
import tempfile
from pathlib import Path

import av
import m3u8
import sqlalchemy as sa

from videoflix.extensions import db
from videoflix.media import playlists, subtitles
from videoflix.queue import task
from videoflix.storage import media_store
from videoflix.videos.models import Phase, Subtitle, Video

MASTER = "master.m3u8"
log = logging.getLogger(__name__)


def tracks_of(video_id):
    rows = db.session.scalars(sa.select(Subtitle).where(Subtitle.video_id == video_id).order_by(Subtitle.id)).all()
    tracks = [subtitles.Track(row.id, row.language, subtitles.clean_label(row.label), row.is_default) for row in rows]
    return rows, tracks


def grid(playlist, first_segment):
    """The video's segment durations and its first MPEG-TS timestamp (90 kHz), from one rendition."""
    durations = [segment.duration for segment in m3u8.load(str(playlist)).segments]
    with av.open(str(first_segment)) as container:
        start = container.start_time or 0  # microseconds (AV_TIME_BASE)
    return durations, round(start * subtitles.MPEGTS_CLOCK / 1_000_000)


def write_renditions(output, video_id, durations, start_pts, scratch):
    """Each track of the video cut to the grid, under `output`/subs/<id>/; returns the tracks written
    (a track whose file is missing from the store is left out, never the video's failure)."""
    rows, tracks = tracks_of(video_id)
    store, written = media_store(), []
    for row, track in zip(rows, tracks, strict=True):
        try:
            with store.local_file(row.source_key, folder=scratch) as source:
                playlist, files = subtitles.segment(Path(source).read_text(encoding="utf-8"), durations, start_pts)
        except FileNotFoundError:
            log.warning("subtitle %s of video %s is missing from the store; left out", row.id, video_id)
            continue
        folder = Path(output) / track.folder
        folder.mkdir(parents=True)
        (folder / "index.m3u8").write_text(playlist)
        for name, text in files.items():
            (folder / name).write_text(text, encoding="utf-8")
        written.append(track)
    return written


def stored_variants(video, scratch):
    """(variants, audio renditions) of the published version: its VARIANTS_FILE, or for a version
    published before that file existed, the entries of its master that name the video's own
    renditions (such a version has no alternative audio)."""
    store, version = media_store(), video.hls_path
    try:
        with store.local_file(f"{version}/{playlists.VARIANTS_FILE}", folder=scratch) as stored:
            return playlists.variants_from_json(Path(stored).read_text())
    except FileNotFoundError:
        with store.local_file(f"{version}/{MASTER}", folder=scratch) as master:
            return playlists.variants_of_legacy_master(Path(master).read_text(), video.renditions), []


@task(retries=3, retry_delay=10)
def republish(video_id):
    """Put the video's current subtitle tracks into its published version, then its master playlist."""
    video = db.session.get(Video, video_id)
    if video is None or not video.hls_path or not video.renditions or video.phase == Phase.ENCODING:
        return  # nothing published yet, or the finish of the chunks under way writes the tracks
    store, version, lowest = media_store(), video.hls_path, video.renditions[0]
    with tempfile.TemporaryDirectory(dir=store.work_root(), prefix="subtitles-") as scratch:
        scratch = Path(scratch)
        with (
            store.local_file(f"{version}/{lowest}/index.m3u8", folder=scratch) as playlist,
            store.local_file(f"{version}/{lowest}/000.ts", folder=scratch) as first_segment,
        ):
            durations, start_pts = grid(playlist, first_segment)
        output = scratch / "version"
        tracks = write_renditions(output, video_id, durations, start_pts, scratch)
        for track in tracks:
            store.put_tree(output / track.folder, f"{version}/{track.folder}")
        variants, audio = stored_variants(video, scratch)
        (scratch / MASTER).write_text(playlists.master_playlist(variants, tracks, audio))
        store.put_file(f"{version}/{MASTER}", scratch / MASTER)  # one atomic replace
    live = {track.folder for track in tracks}
    stale = {"/".join(o.key.split("/")[3:5]) for o in store.list(f"{version}/{subtitles.FOLDER}")} - live
    for folder in stale:  # after the master stopped naming them
        store.delete_prefix(f"{version}/{folder}")
