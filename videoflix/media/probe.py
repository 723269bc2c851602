"""What a source file holds, read with PyAV (FFmpeg's libraries; imageio-ffmpeg ships no ffprobe)."""

import os
from dataclasses import dataclass

import av

from videoflix.media.ffmpeg import IMAGE_DEMUXERS, source_options

VIDEO_EXTENSIONS = (
    ".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".ts", ".mts", ".m2ts", ".wmv", ".flv",
)  # fmt: skip


IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp")


# FFmpeg's colour codes (AVCOL_*), which zscale also takes as numbers.
UNSPECIFIED = 2
BT709 = 1
BT2020 = 9
PQ = 16  # SMPTE ST 2084: HDR10, Dolby Vision base layers
HLG = 18  # ARIB STD-B67: phones and broadcast HDR
BT601 = 6  # SMPTE 170M: what an untagged standard-definition source is taken to be


@dataclass(frozen=True)
class Colour:
    """How the source's pixel values are to be read (codes as FFmpeg numbers them)."""

    primaries: int = BT709
    transfer: int = BT709
    matrix: int = BT709
    full_range: bool = False

    @property
    def is_hdr(self):
        return self.transfer in (PQ, HLG)


@dataclass(frozen=True)
class AudioTrack:
    """One audio stream of the source, as its tags name it (None where they do not)."""

    language: str | None = None
    title: str | None = None


@dataclass(frozen=True)
class Probe:
    duration: float  # of the longer stream: what the published video lasts
    width: int  # as displayed, in square pixels: rotation and sample aspect ratio applied
    height: int
    fps: float  # the constant rate every rendition is made at
    has_audio: bool
    colour: Colour = Colour()
    interlaced: bool = False
    variable_frame_rate: bool = False
    video_duration: float | None = None  # None: the same as `duration`
    audio_tracks: tuple = ()  # AudioTrack of every audio stream, the first muxed into every rendition

    @property
    def picture_duration(self):
        return self.duration if self.video_duration is None else self.video_duration


SNIFF_BYTES = 512  # what the first chunk of an upload must hold to be told from a non-video
_MP4_BOXES = (b"ftyp", b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot")


def looks_like_video(head):
    """Whether the first bytes of a file start one of the accepted containers (SOURCE_DEMUXERS): a
    renamed text, image, playlist or archive is told from them by its first chunk, long before the
    whole file went up. Only the start is looked at: an MP4 whose index is at its end still passes."""
    if head[4:8] in _MP4_BOXES:  # MP4, MOV, M4V, 3GP
        return True
    if head.startswith((b"\x1aE\xdf\xa3", b"\x00\x00\x01\xba", b"FLV", b"0&\xb2u\x8ef\xcf\x11")):
        return True  # Matroska / WebM, MPEG-PS, FLV, ASF / WMV
    if head.startswith(b"RIFF") and head[8:12] == b"AVI ":
        return True
    for packet in (188, 192):  # MPEG-TS, and M2TS's 4-byte timestamps before each packet
        sync = packet - 188
        if len(head) > sync and head[sync] == 0x47 and (len(head) <= packet + sync or head[packet + sync] == 0x47):
            return True
    return False


class NotAVideo(Exception):
    """The file is not a video that can be decoded; retrying will not help."""


def probe(path):
    """Duration, displayed size, frame rate, colour, field order and audio, after decoding one frame."""
    if os.path.getsize(path) == 0:
        raise NotAVideo("The file is empty.")
    try:
        with av.open(str(path), metadata_errors="ignore", container_options=source_options()) as container:
            if not container.streams.video:
                raise NotAVideo("The file has no video stream.")
            stream = container.streams.video[0]
            frame = next(container.decode(stream), None)
            if frame is None:
                raise NotAVideo("No video frame could be decoded.")
            width, height = display_size(frame.width, frame.height, _sample_aspect(stream), frame.rotation)
            video_duration = _duration(container, stream)
            audio_duration = max((_duration(container, audio) for audio in container.streams.audio), default=0.0)
            fps, variable = frame_rate(stream.average_rate, stream.guessed_rate)
            colour = _colour(frame, stream.codec_context, height)
            interlaced = bool(frame.interlaced_frame) or stream.codec_context.field_order in INTERLACED_FIELD_ORDERS
            has_audio = bool(container.streams.audio)
            audio_tracks = tuple(_audio_track(audio.metadata) for audio in container.streams.audio)
    except NotAVideo:
        raise
    except (av.FFmpegError, StopIteration, OSError) as error:
        raise NotAVideo(f"The file is not a decodable video ({_reason(error)}).") from error
    duration = max(video_duration, audio_duration)
    if duration <= 0:
        raise NotAVideo("The video has no duration.")
    return Probe(
        duration=duration, width=width, height=height, fps=fps, has_audio=has_audio, colour=colour,
        interlaced=interlaced, variable_frame_rate=variable, video_duration=video_duration or duration,
        audio_tracks=audio_tracks,
    )  # fmt: skip


def _audio_track(tags):
    language = (tags.get("language") or "").strip().lower()
    title = (tags.get("title") or tags.get("name") or "").strip()
    return AudioTrack(language=language if language and language != "und" else None, title=title or None)


INTERLACED_FIELD_ORDERS = (2, 3, 4, 5)  # AV_FIELD_TT, BB, TB, BT
VFR_TOLERANCE = 0.02  # an average this far from the nominal rate: frames were dropped or vary


def frame_rate(average, nominal):
    """(the constant rate to encode at, whether the source's rate varies). A phone's variable-rate
    clip averages below its nominal rate (dropped frames); encoding at the nominal rate keeps motion
    and puts every keyframe on the time grid."""
    average, nominal = float(average or 0), float(nominal or 0)
    if 0 < nominal <= 120 and (average <= 0 or abs(average - nominal) / nominal > VFR_TOLERANCE):
        return nominal, average > 0
    return average or nominal, False


def _colour(frame, codec_context, height):
    """The frame's colour tags, falling back to the stream's, then to what players assume for an
    untagged source (BT.601 below 720 lines, BT.709 from there; limited range)."""

    def tag(name):
        value = getattr(frame, name) or getattr(codec_context, name)
        return value if value not in (0, UNSPECIFIED) else None

    untagged = BT601 if height < 720 else BT709
    full_range = tag("color_range") == 2 or (frame.format.name or "").startswith("yuvj")
    return Colour(
        primaries=tag("color_primaries") or untagged,
        transfer=tag("color_trc") or BT709,
        matrix=tag("colorspace") or untagged,
        full_range=full_range,
    )


def _sample_aspect(stream):
    """The shape of a pixel (DVDs and some cameras store non-square ones); None when unknown."""
    return stream.sample_aspect_ratio or stream.codec_context.sample_aspect_ratio


def display_size(coded_width, coded_height, sample_aspect=None, rotation=0):
    """The picture as a viewer sees it, in square pixels: non-square pixels widen (or narrow) it,
    a quarter turn swaps the sides (ffmpeg rotates while it decodes)."""
    width = coded_width
    if sample_aspect and sample_aspect > 0:
        width = round(coded_width * sample_aspect)
    if abs(rotation or 0) in (90, 270):
        return coded_height, width
    return width, coded_height


def _duration(container, stream):
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / av.time_base
    return 0.0


def _reason(error):
    return getattr(error, "strerror", None) or str(error) or type(error).__name__


def check_image(path):
    """Raise NotAVideo unless the file decodes as a still image (a poster)."""
    try:
        with av.open(str(path), container_options=source_options(IMAGE_DEMUXERS)) as container:
            if next(container.decode(video=0), None) is None:
                raise NotAVideo("The poster is not a readable image.")
    except (av.FFmpegError, OSError, IndexError) as error:
        raise NotAVideo(f"The poster is not a readable image ({_reason(error)}).") from error
