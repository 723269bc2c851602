"""Running ffmpeg: progress from `-progress pipe:1`, a timeout, the tail of stderr on failure, and
a child that dies with its parent (a killed worker leaves no ffmpeg behind)."""

import contextlib
import os
import subprocess
import threading
import time
from collections import deque

import imageio_ffmpeg

from videoflix.processes import die_with_parent

STDERR_TAIL_LINES = 20
# What an uploaded file may make FFmpeg do: read itself (or a pipe), through a container demuxer of
# the accepted video types. Never a URL, and never another file: an HLS playlist or concat script
# renamed .mp4 would otherwise be followed (to the network, or to /etc/passwd).
SOURCE_PROTOCOLS = "file,pipe"
SOURCE_DEMUXERS = "mov,matroska,avi,mpegts,mpeg,asf,flv"  # mp4/mov, mkv/webm, avi, ts, mpg, wmv, flv
IMAGE_DEMUXERS = "image2,jpeg_pipe,png_pipe,webp_pipe"
# Our own outputs read back (an HLS rendition): files only, any demuxer.
OUTPUT_PROTOCOLS = "file"


def source_input(path):
    """The ffmpeg arguments that open an uploaded source, under the whitelists above."""
    return ["-protocol_whitelist", SOURCE_PROTOCOLS, "-format_whitelist", SOURCE_DEMUXERS, "-i", str(path)]


def source_options(demuxers=SOURCE_DEMUXERS):
    """The same whitelists for PyAV's av.open(container_options=...)."""
    return {"protocol_whitelist": SOURCE_PROTOCOLS, "format_whitelist": demuxers}


# What makes an ffmpeg that exited by itself worth running again: the machine, not the file.
TRANSIENT_ERRORS = ("No space left on device", "Cannot allocate memory", "Resource temporarily unavailable")
DETERMINISTIC = (
    "ffmpeg could not process this file (exit status {code}); the same file would fail again. "
    "Re-export it (for example as H.264 in MP4) and upload it again."
)


class FFmpegFailed(Exception):
    """ffmpeg failed. `transient`: a timeout, a signal (a crash, a kill) or a lack of room or
    memory, which a retry may get past; otherwise what the file holds made it fail."""

    def __init__(self, message, stderr_tail="", transient=True):
        super().__init__(message)
        self.stderr_tail = stderr_tail
        self.transient = transient


def ffmpeg_binary(configured=None):
    """FFMPEG_BINARY when set, else the ffmpeg that imageio-ffmpeg ships (or finds on PATH)."""
    return configured or imageio_ffmpeg.get_ffmpeg_exe()


# An ffmpeg that reports its progress (`-progress pipe:1`) is judged by it, not by the clock: on a
# loaded machine a wall-clock limit killed encodes that were progressing (DESIGN.md). It is stuck
# when its output time has not advanced for this long.
STALL_SECONDS = 120.0
# The queue's encodes run this much nicer than the rest of the machine: a segment a viewer waits
# for (the hurry lane), the web processes and the database get the CPU first.
BACKGROUND_NICENESS = 10
_this_thread = threading.local()


@contextlib.contextmanager
def at_niceness(niceness):
    """Every ffmpeg this thread starts meanwhile runs at `niceness`."""
    before = getattr(_this_thread, "niceness", 0)
    _this_thread.niceness = niceness
    try:
        yield
    finally:
        _this_thread.niceness = before


def in_background():
    """The queue's encodes: at BACKGROUND_NICENESS."""
    return at_niceness(BACKGROUND_NICENESS)


def in_foreground():
    """Work the viewers or every other part wait for, cheap in CPU (a film's sound): not niced."""
    return at_niceness(0)


def _child_setup(niceness):
    """What the child does before ffmpeg starts: die with its parent, and yield the CPU if asked."""
    if not niceness:
        return die_with_parent

    def setup():
        if die_with_parent is not None:
            die_with_parent()
        os.nice(niceness)

    return setup


def run_ffmpeg(command, timeout, on_progress=None, stderr_path=None, stall_seconds=STALL_SECONDS):
    """Run ffmpeg, calling on_progress(seconds_encoded) for each `-progress` report. Whatever
    on_progress raises stops ffmpeg and propagates. Raises FFmpegFailed on a non-zero exit, on
    `stall_seconds` without progress (a command that reports it) or past `timeout` seconds (one
    that does not)."""
    stderr_path = stderr_path or os.devnull
    with open(stderr_path, "wb") as stderr:
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=stderr, stdin=subprocess.DEVNULL,
            preexec_fn=_child_setup(getattr(_this_thread, "niceness", 0)),
        )  # fmt: skip
    reports_progress = "-progress" in command
    started = time.monotonic()
    last_advance = [started, -1]  # when the output time last grew, and to what
    stopped = threading.Event()
    why = []

    def watch():
        while not stopped.wait(min(1.0, stall_seconds / 4, timeout / 4)):
            now = time.monotonic()
            if reports_progress and now - last_advance[0] > stall_seconds:
                why.append(f"ffmpeg made no progress for {stall_seconds:.0f} s.")
            elif not reports_progress and now - started > timeout:
                why.append(f"ffmpeg timed out after {timeout:.0f} s.")
            else:
                continue
            process.kill()
            return

    watchdog = threading.Thread(target=watch, daemon=True)
    watchdog.start()
    try:
        for raw in process.stdout:
            key, _, value = raw.decode(errors="replace").strip().partition("=")
            if key == "out_time_us" and value.isdigit():
                if int(value) > last_advance[1]:
                    last_advance[:] = [time.monotonic(), int(value)]
                if on_progress is not None:
                    on_progress(int(value) / 1e6)
        process.wait()
    finally:
        stopped.set()
        watchdog.join()
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stdout.close()
    if process.returncode != 0:
        tail = _tail(stderr_path)
        if why:
            raise FFmpegFailed(why[0], tail)
        if process.returncode < 0 or any(marker in tail for marker in TRANSIENT_ERRORS):
            raise FFmpegFailed(f"ffmpeg exited with status {process.returncode}.", tail)
        raise FFmpegFailed(DETERMINISTIC.format(code=process.returncode), tail, transient=False)


def _tail(path):
    if path == os.devnull or not os.path.exists(path):
        return ""
    with open(path, "rb") as lines:
        return b"".join(deque(lines, STDERR_TAIL_LINES)).decode(errors="replace").strip()
