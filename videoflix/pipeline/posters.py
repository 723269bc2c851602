"""A poster from a frame staff pick on the edit page (the storyboard's thumbnails say when): the top
rendition's picture at that moment, made from the one segment that holds it. Its picture is
conformed already, and a segment is a few MB whether the store is a folder or a bucket, so this
runs within the request: no source is read, nothing is queued."""

from pathlib import Path

import m3u8
from flask import current_app

from videoflix.media import ladder
from videoflix.media.ffmpeg import FFmpegFailed, ffmpeg_binary, run_ffmpeg
from videoflix.storage import keys, media_store

FRAME_TIMEOUT = 60  # seconds: one segment decoded up to one frame
NOT_MADE = "That part of the video is not encoded yet: try again once it is."


class NoFrame(Exception):
    """The frame cannot be made; the message says why, for staff."""


def segment_at(playlist_text, at):
    """(segment file name, seconds into it) of the moment `at` in a media playlist."""
    start = 0.0
    segments = m3u8.loads(playlist_text).segments
    for segment in segments:
        if at < start + segment.duration:
            return segment.uri, at - start
        start += segment.duration
    if not segments:
        raise NoFrame("The video has no segments yet.")
    return segments[-1].uri, max(0.0, segments[-1].duration - 0.1)  # at the very end: the last frame


def frame_poster(video, at, scratch):
    """Store the top rendition's frame at `at` seconds as a new poster; its key."""
    if not video.hls_path or not video.renditions:
        raise NoFrame("The video has no published rendition yet.")
    store, folder = media_store(), f"{video.hls_path}/{video.renditions[-1]}"
    with store.local_file(f"{folder}/index.m3u8", folder=scratch) as playlist:
        name, offset = segment_at(Path(playlist).read_text(), at)
    target, key = Path(scratch) / "poster.jpg", f"{folder}/{name}"
    if not store.exists(key):  # a film still encoding: that chunk is not made yet
        raise NoFrame(NOT_MADE)
    try:
        with store.local_file(key, folder=scratch) as segment:
            ffmpeg = ffmpeg_binary(current_app.config["FFMPEG_BINARY"])
            command = ladder.build_frame_command(ffmpeg, segment, offset, target)
            run_ffmpeg(command, timeout=FRAME_TIMEOUT, stderr_path=Path(scratch) / "frame.log")
    except FileNotFoundError:  # gone between the look and the read
        raise NoFrame(NOT_MADE) from None
    except FFmpegFailed as error:
        raise NoFrame(f"No frame could be made there: {error}") from None
    if not target.is_file() or target.stat().st_size == 0:
        raise NoFrame("No frame could be made there: pick another moment.")
    poster = keys.new_poster(".jpg")
    store.put_file(poster, target)
    return poster
