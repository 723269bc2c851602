"""The media layout: where each kind of file lives, as keys relative to the store's root.

Pure functions, no I/O. Keys are always generated here, never taken from user input; a key
names the same object in every backend (a path under MEDIA_ROOT, or an object in the bucket)."""

import mimetypes
import posixpath
import re
import uuid

SOURCES = "sources"  # uploaded and imported originals
POSTERS = "thumbnails"  # public posters
RENDITIONS = "hls"  # every published version of each video's HLS renditions
SUBTITLES = "subtitles"  # each subtitle track whole, as WebVTT (versions hold it cut into segments)
FOLDERS = (SOURCES, POSTERS, RENDITIONS, SUBTITLES)

PLAYLIST_TYPE = "application/vnd.apple.mpegurl"
SEGMENT_TYPE = "video/MP2T"
TEXT_TRACK_TYPE = "text/vtt"
CONTENT_TYPES = {".m3u8": PLAYLIST_TYPE, ".ts": SEGMENT_TYPE, ".vtt": TEXT_TRACK_TYPE}  # mimetypes: .ts is Qt Linguist

POSTER_NAME = re.compile(r"[0-9a-f]{32}\.(?:jpg|jpeg|png|webp)")  # what new_poster() generates


def new_source(extension):
    """A fresh key for an original, e.g. `sources/<hex>.mp4`."""
    return f"{SOURCES}/{uuid.uuid4().hex}{extension}"


def new_poster(extension):
    return f"{POSTERS}/{uuid.uuid4().hex}{extension}"


def poster(name):
    """The key of a public poster by the file name in its URL; None for a name never generated."""
    return f"{POSTERS}/{name}" if POSTER_NAME.fullmatch(name) else None


POSTER_NAME_START = len(POSTERS) + 1  # every poster key is POSTERS/<name> (new_poster, poster)


def poster_name(key):
    return key[POSTER_NAME_START:]


def renditions(video_id):
    """The prefix that holds every published version of a video's renditions."""
    return f"{RENDITIONS}/{int(video_id)}"


def rendition_version(video_id, version):
    """The prefix of one published version: master.m3u8 and one folder per rendition."""
    return f"{renditions(video_id)}/{version}"


def content_type(key):
    """The media type an object is stored and sent with."""
    extension = posixpath.splitext(key)[1].lower()
    return CONTENT_TYPES.get(extension) or mimetypes.guess_type(key)[0] or "application/octet-stream"


def new_subtitle(video_id):
    return f"{SUBTITLES}/{int(video_id)}/{uuid.uuid4().hex}.vtt"


def subtitles(video_id):
    """The prefix of a video's subtitle tracks."""
    return f"{SUBTITLES}/{int(video_id)}"
