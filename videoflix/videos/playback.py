"""Sending a video's published HLS files: the viewer API (videos/routes.py) and the staff preview
(admin.py) answer playlists and segments the same way."""

import re

import sqlalchemy as sa
from flask import abort
from werkzeug.exceptions import NotFound

from videoflix.extensions import db
from videoflix.media import storyboard, subtitles
from videoflix.media.ladder import RESOLUTIONS, alternative_audio_folder
from videoflix.storage import delivery
from videoflix.storage.keys import PLAYLIST_TYPE, SEGMENT_TYPE, TEXT_TRACK_TYPE
from videoflix.videos import catalogue, in_time
from videoflix.videos.models import Subtitle

SEGMENT_NAME = re.compile(r"[0-9]{3,5}\.ts")  # matched whole (fullmatch); ASCII digits only
SHEET_NAME = re.compile(r"sprite-[0-9]{3,5}\.jpg")
SUBTITLE_SEGMENT_NAME = re.compile(r"[0-9]{3,5}\.vtt")
PLAYLIST_MAX_AGE = 0  # revalidate: cheap 304s, and a re-transcode shows at once
SEGMENT_MAX_AGE = 3600


def published(video_id, released_only=True):
    """(hls_path, renditions) of a playable video (released, unless for the staff preview); 404 otherwise."""
    found = catalogue.published_renditions(video_id, released_only)
    if found is None:
        abort(404, "Video not found.")
    return found


def send_published(video_id, file_in_version, mimetype, max_age, released_only=True):
    """A file of the video's published version: `file_in_version(renditions)` names it. A publish
    that lands between the lookup and the send removes the version just looked up: then the video is
    looked up once more and the file sent from its new version."""
    for last_try in (False, True):
        hls_path, renditions = published(video_id, released_only)
        try:
            return delivery.send(f"{hls_path}/{file_in_version(renditions)}", mimetype, max_age)
        except NotFound:
            catalogue.forget_published(video_id)
            if last_try or catalogue.published_renditions(video_id, released_only) in (None, (hls_path, renditions)):
                raise


def rendition_for(renditions, resolution):
    """The rendition that answers `resolution`: itself, or the best one below it (no upscaling
    happened), or the smallest one when nothing is below."""
    if resolution not in RESOLUTIONS:
        abort(404, "Unknown resolution.")
    wanted = RESOLUTIONS.index(resolution)
    existing = [name for name in RESOLUTIONS if name in renditions]
    if not existing:
        abort(404, "Video not found.")
    at_most = [name for name in existing if RESOLUTIONS.index(name) <= wanted]
    return at_most[-1] if at_most else existing[0]


# The files the staff preview plays too: `released_only=False` there, so drafts and scheduled videos play.


def master(video_id, released_only=True):
    return send_published(video_id, lambda _renditions: "master.m3u8", PLAYLIST_TYPE, PLAYLIST_MAX_AGE, released_only)


def media_playlist(video_id, resolution, released_only=True):
    def playlist(renditions):
        return f"{rendition_for(renditions, resolution)}/index.m3u8"

    return send_published(video_id, playlist, PLAYLIST_TYPE, PLAYLIST_MAX_AGE, released_only)


def segment(video_id, resolution, name, released_only=True):
    if not SEGMENT_NAME.fullmatch(name):
        abort(404, "Segment not found.")

    def send():
        return send_published(video_id, lambda renditions: f"{rendition_for(renditions, resolution)}/{name}",
                              SEGMENT_TYPE, SEGMENT_MAX_AGE, released_only)  # fmt: skip

    try:
        return send()
    except NotFound:
        if not in_time.wait_for_segment(video_id, int(name.split(".")[0])):
            raise
        return send()


def audio_playlist(video_id, number, released_only=True):
    """An alternative audio track's playlist (the source's track `number`, 1 = its second)."""
    folder = alternative_audio_folder(number)
    return send_published(video_id, lambda _renditions: f"{folder}/index.m3u8", PLAYLIST_TYPE, PLAYLIST_MAX_AGE,
                          released_only)  # fmt: skip


def audio_segment(video_id, number, name, released_only=True):
    if not SEGMENT_NAME.fullmatch(name):
        abort(404, "Segment not found.")
    folder = alternative_audio_folder(number)
    return send_published(video_id, lambda _renditions: f"{folder}/{name}", SEGMENT_TYPE, SEGMENT_MAX_AGE,
                          released_only)  # fmt: skip


def storyboard_track(video_id):
    """The scrub previews' WebVTT track (a video transcoded before they existed has none: 404)."""
    return send_published(video_id, lambda _renditions: storyboard.TRACK, TEXT_TRACK_TYPE, PLAYLIST_MAX_AGE)


def storyboard_sheet(video_id, name, released_only=True):
    if not SHEET_NAME.fullmatch(name):
        abort(404, "Not found.")
    return send_published(video_id, lambda _renditions: f"{storyboard.FOLDER}/{name}", "image/jpeg", SEGMENT_MAX_AGE,
                          released_only)  # fmt: skip


def subtitle_playlist(video_id, track_id):
    folder = f"{subtitles.FOLDER}/{int(track_id)}"
    return send_published(video_id, lambda _renditions: f"{folder}/index.m3u8", PLAYLIST_TYPE, PLAYLIST_MAX_AGE)


def subtitle_segment(video_id, track_id, name):
    if not SUBTITLE_SEGMENT_NAME.fullmatch(name):
        abort(404, "Not found.")
    folder = f"{subtitles.FOLDER}/{int(track_id)}"
    # Revalidated: a track replaced under the same id changes its segments.
    return send_published(video_id, lambda _renditions: f"{folder}/{name}", TEXT_TRACK_TYPE, PLAYLIST_MAX_AGE)


def subtitle_file(video_id, track_id):
    """A track whole, as WebVTT (for players that do not read HLS subtitles)."""
    published(video_id)
    key = db.session.scalar(
        sa.select(Subtitle.source_key).where(Subtitle.id == track_id, Subtitle.video_id == video_id)
    )
    if key is None:
        abort(404, "Not found.")
    return delivery.send(key, TEXT_TRACK_TYPE, PLAYLIST_MAX_AGE)
