"""What a source file holds, read with PyAV (FFmpeg's libraries; imageio-ffmpeg ships no ffprobe)."""

import os
from dataclasses import dataclass

import av

from videoflix.media.ffmpeg import IMAGE_DEMUXERS, source_options

VIDEO_EXTENSIONS = (".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".ts", ".wmv", ".flv")


IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp")


@dataclass(frozen=True)
class Probe:
    duration: float
    width: int  # as displayed, in square pixels: rotation and sample aspect ratio applied
    height: int
    fps: float
    has_audio: bool


class NotAVideo(Exception):
    """The file is not a video that can be decoded; retrying will not help."""


def probe(path):
    """Duration, displayed size, frame rate and audio presence, after decoding one frame."""
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
            duration = _duration(container, stream)
            rate = stream.average_rate or stream.guessed_rate
            has_audio = bool(container.streams.audio)
    except NotAVideo:
        raise
    except (av.FFmpegError, StopIteration, OSError) as error:
        raise NotAVideo(f"The file is not a decodable video ({_reason(error)}).") from error
    if duration <= 0:
        raise NotAVideo("The video has no duration.")
    return Probe(duration=duration, width=width, height=height, fps=float(rate or 0), has_audio=has_audio)


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
