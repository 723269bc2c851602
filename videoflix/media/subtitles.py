"""Subtitles as HLS subtitle renditions: a staff upload (WebVTT or SRT, any common encoding) turned
into WebVTT (pysubs2), cut to the video's segment grid with an X-TIMESTAMP-MAP so cues line up with
the MPEG-TS timestamps, and the master playlist's EXT-X-MEDIA entries. Pure: no Flask, no store."""

import math
import re
import unicodedata
from dataclasses import dataclass

import pysubs2

ENCODINGS = ("utf-8", "cp1252", "latin-1")  # tried in order; latin-1 always decodes
UTF8_BOM = b"\xef\xbb\xbf"
GROUP = "subs"
FOLDER = "subs"  # inside a published version: subs/<track id>/index.m3u8 and its segments
MPEGTS_CLOCK = 90_000
LANGUAGE = re.compile(r"[a-z]{2,3}(-[A-Za-z0-9]{2,8})*")  # BCP 47, as HLS wants it
# Control characters (CR, LF, VT, FF, NEL, ...), line and paragraph separators (U+2028, U+2029),
# and format, surrogate, private and unassigned code points.
FORBIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


class SubtitleProblem(ValueError):
    """A subtitle file that cannot be used, with a reason staff can act on."""


@dataclass(frozen=True)
class Track:
    id: int
    language: str
    label: str
    default: bool

    @property
    def folder(self):
        return f"{FOLDER}/{self.id}"


def decode(raw):
    """The file's text: UTF-16 by its BOM, else UTF-8, else Windows-1252 / Latin-1 (old SRT files),
    with a UTF-8 BOM dropped whatever follows it (editors add one to Latin-1 files too)."""
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return raw.decode("utf-16")
    raw = raw.removeprefix(UTF8_BOM)
    for encoding in ENCODINGS:
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise SubtitleProblem("The subtitle file's text encoding is not supported.")  # unreachable: latin-1


def to_webvtt(raw):
    """WebVTT text from an uploaded SRT or WebVTT file; SubtitleProblem when it has no cues."""
    if len(raw) == 0:
        raise SubtitleProblem("The subtitle file is empty.")
    text = decode(raw)
    try:
        parsed = pysubs2.SSAFile.from_string(text)
    except (pysubs2.exceptions.Pysubs2Error, ValueError) as error:
        raise SubtitleProblem(f"The subtitle file could not be read as SRT or WebVTT ({error}).") from None
    if not any(event.plaintext.strip() for event in parsed.events):
        raise SubtitleProblem("The subtitle file has no cues.")
    return parsed.to_string("vtt")


def segment(webvtt, durations, start_pts):
    """The track cut to the video's segments (their durations, in s): (media playlist, {name: WebVTT}).
    Each segment holds the cues that overlap it and maps its local time 0 to the video's first
    MPEG-TS timestamp (`start_pts`, 90 kHz), so players place cues on the video's own clock."""
    cues = pysubs2.SSAFile.from_string(webvtt, format_="vtt")
    header = f"WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:{start_pts},LOCAL:00:00:00.000\n"
    lines = ["#EXTM3U", "#EXT-X-VERSION:3", f"#EXT-X-TARGETDURATION:{math.ceil(max(durations))}",
             "#EXT-X-MEDIA-SEQUENCE:0", "#EXT-X-PLAYLIST-TYPE:VOD"]  # fmt: skip
    files, start = {}, 0.0
    for index, duration in enumerate(durations):
        end = start + duration
        piece = pysubs2.SSAFile()
        piece.events = [cue for cue in cues.events if cue.start < end * 1000 and cue.end > start * 1000]
        body = piece.to_string("vtt").split("\n", 1)[1] if piece.events else "\n"
        name = f"{index:03d}.vtt"
        files[name] = header + body
        lines += [f"#EXTINF:{duration:.6f},", name]
        start = end
    return "\n".join([*lines, "#EXT-X-ENDLIST"]) + "\n", files


def label_problem(label):
    """Why `label` cannot name a track in a playlist, or None: no quotes, no control characters
    and no Unicode line or paragraph separators (each would end or break the playlist line)."""
    if any(character == '"' or unicodedata.category(character) in FORBIDDEN_CATEGORIES for character in label):
        return "A label may not contain quotes, control characters or line breaks of any kind."
    return None


def clean_label(label):
    """`label` without what label_problem refuses (for tracks stored before it was refused)."""
    return "".join(c for c in label if c != '"' and unicodedata.category(c) not in FORBIDDEN_CATEGORIES)


def media_line(track):
    """The master playlist's EXT-X-MEDIA entry of a track (values checked again here)."""
    if not LANGUAGE.fullmatch(track.language) or label_problem(track.label) or not isinstance(track.id, int):
        raise ValueError(f"not a track that can be written into a playlist: {track!r}")
    return (
        f'#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="{GROUP}",LANGUAGE="{track.language}",NAME="{track.label}",'
        f'DEFAULT={"YES" if track.default else "NO"},AUTOSELECT=YES,URI="{track.folder}/index.m3u8"'
    )
