"""Scrub previews (trickplay): thumbnails every few seconds, tiled into JPEG sprite sheets, and a
WebVTT track whose cues point at `sprite-000.jpg#xywh=x,y,w,h` (what Video.js, JW Player, Plyr and
Vidstack read). Made from the lowest rendition, never the source: decoding 480p is cheap.

Pure: the plan, the ffmpeg arguments and the WebVTT text; pipeline/steps.py runs them."""

import math
import re
from dataclasses import dataclass

from videoflix.media.ffmpeg import OUTPUT_PROTOCOLS

THUMB_WIDTH = 160
COLUMNS, ROWS = 10, 10  # 100 thumbnails per sheet: 1600x900 for 16:9
MIN_INTERVAL, MAX_INTERVAL = 2, 10  # seconds between thumbnails
TARGET_THUMBNAILS = 200  # the interval grows with the duration until it reaches MAX_INTERVAL
FOLDER = "storyboard"  # the sheets, inside a published version
TRACK = "storyboard.vtt"  # beside master.m3u8: its cues' relative URLs work there and in the API
SHEET_PATTERN = "sprite-%03d.jpg"


@dataclass(frozen=True)
class Storyboard:
    interval: int  # seconds per thumbnail
    width: int
    height: int
    count: int  # thumbnails

    @property
    def per_sheet(self):
        return COLUMNS * ROWS

    @property
    def sheets(self):
        return math.ceil(self.count / self.per_sheet)


def plan(duration, width, height):
    """Thumbnails of THUMB_WIDTH at the rendition's aspect, every 2-10 s depending on the duration."""
    interval = min(MAX_INTERVAL, max(MIN_INTERVAL, math.ceil(duration / TARGET_THUMBNAILS)))
    thumb_height = max(2, round(THUMB_WIDTH * height / width / 2) * 2)
    return Storyboard(interval, THUMB_WIDTH, thumb_height, max(1, math.ceil(duration / interval)))


def rendition_input(rendition_playlist):
    return ["-protocol_whitelist", OUTPUT_PROTOCOLS, "-i", str(rendition_playlist)]


def build_command(ffmpeg, input_arguments, folder, board, picture_filters=()):
    """One ffmpeg run over a rendition (`rendition_input`), or over the source with the filters
    that conform its picture: a frame every `interval` s, scaled, tiled into sheets."""
    graph = [*picture_filters, f"fps=1/{board.interval}", f"scale={board.width}:{board.height}", "setsar=1",
             f"tile={COLUMNS}x{ROWS}"]  # fmt: skip
    return [
        ffmpeg, "-hide_banner", "-nostdin", "-y", "-loglevel", "error", *input_arguments,
        "-vf", ",".join(graph), "-an", "-q:v", "5", "-start_number", "0", str(folder / SHEET_PATTERN),
    ]  # fmt: skip


def sheet_name(index):
    return SHEET_PATTERN % index


def webvtt(board, duration):
    """The thumbnails track: one cue per thumbnail, covering the whole duration."""
    lines = ["WEBVTT", ""]
    for index in range(board.count):
        start, end = index * board.interval, min((index + 1) * board.interval, duration)
        place = index % board.per_sheet
        x, y = (place % COLUMNS) * board.width, (place // COLUMNS) * board.height
        sheet = f"{FOLDER}/{sheet_name(index // board.per_sheet)}"
        area = f"{x},{y},{board.width},{board.height}"
        lines += [f"{_timestamp(start)} --> {_timestamp(end)}", f"{sheet}#xywh={area}", ""]
    return "\n".join(lines)


def _timestamp(seconds):
    milliseconds = round(seconds * 1000)
    hours, rest = divmod(milliseconds, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    return f"{hours:02d}:{minutes:02d}:{rest // 1000:02d}.{rest % 1000:03d}"


@dataclass(frozen=True)
class Thumbnail:
    start: float  # seconds: the moment the thumbnail shows
    sheet: str  # file name in FOLDER
    x: int
    y: int
    width: int
    height: int


CUE = re.compile(  # a cue's start, then its sheet and area
    r"(\d+):(\d{2}):(\d{2})\.(\d{3}) --> [^\n]+\n"
    + re.escape(FOLDER)
    + r"/(sprite-\d+\.jpg)#xywh=(\d+),(\d+),(\d+),(\d+)"
)


def thumbnails(track):
    """The thumbnails a track (`webvtt`) names, in order."""
    found = []
    for match in CUE.finditer(track):
        hours, minutes, seconds, milliseconds, sheet, *area = match.groups()
        start = int(hours) * 3600 + int(minutes) * 60 + int(seconds) + int(milliseconds) / 1000
        found.append(Thumbnail(start, sheet, *map(int, area)))
    return found


def spread(items, at_most):
    """At most `at_most` of `items`, evenly spread, the first always among them."""
    if len(items) <= at_most:
        return list(items)
    step = len(items) / at_most
    return [items[int(index * step)] for index in range(at_most)]
