"""The HLS ladder and the ffmpeg commands that encode it: pure functions of (probe, settings),
no Flask and no subprocess, so that every decision here is unit-tested without running ffmpeg."""

from dataclasses import dataclass

from videoflix.media import conform
from videoflix.media.ffmpeg import source_input

SEGMENT_SECONDS = 6
# Keyframe spacing divides SEGMENT_SECONDS, so every rung (and both ladders) cut segments at the
# same frames: viewers keep playing when the efficient ladder replaces the fast one.
FAST_GOP_SECONDS = 2
EFFICIENT_GOP_SECONDS = SEGMENT_SECONDS  # one closed GOP per segment: 18-20% fewer bits (DESIGN.md)
# How full x264's rate-cap buffer is when a chunk starts. Its default, 0.9, suits a film's start,
# not a chunk's: where the cap binds (grain), each chunk spent most of a full buffer at its start,
# and chunks of 6, 12 and 2 s of a grainy 1080p clip sent 15% more bits than one encode of it. At
# 0.25 they sent 2.9% fewer, at 0.4 1.3% more, at VMAF +0.07 and +0.12 (subsampled; 91.79 whole).
CHUNK_VBV_INIT = 0.3
# Added to every output timestamp, so that no stream of any chunk starts below zero (B-frames, AAC
# priming) and has to be shifted by the muxer: chunks, the sound and both ladders then share one
# timeline, and a player crosses joins and the swap to the efficient ladder without a jump.
TS_OFFSET = 10


@dataclass(frozen=True)
class RungSpec:
    """One standard rung: its name, its short side, and its x264 settings (a CRF under a rate cap)."""

    name: str
    height: int
    preset: str
    crf: float  # x264 takes fractional CRFs
    maxrate_kbps: int
    audio_kbps: int
    profile: str
    level: str
    x264_params: str = ""
    reference_kbps: int = 0  # efficient ladder: the reference ladder's rate, which its bits stay under
    bufsize_kbps: int = 0  # 0: twice maxrate

    @property
    def vbv_bufsize_kbps(self):
        return self.bufsize_kbps or self.maxrate_kbps * 2


# The fast ladder, published first so a video is playable within seconds (README, "Performance"):
# ultrafast with CABAC and the deblocking filter put back, superfast for the small 480p rung, and
# Apple's HLS rate caps. It costs bits, so the efficient ladder replaces it.
FAST_X264 = "cabac=1:deblock=0,0"
STANDARD_RUNGS = (
    RungSpec("480p", 480, "superfast", 21, 1600, 96, "high", "3.1"),
    RungSpec("720p", 720, "ultrafast", 21, 4500, 128, "high", "4.0", FAST_X264),
    RungSpec("1080p", 1080, "ultrafast", 21, 7800, 128, "high", "4.1", FAST_X264),
)
# The efficient ladder: x264 slower and a CRF chosen per title (media/ratecontrol.py) so that it sends
# no more bits than a conventional fixed-bitrate ladder (1000 / 2500 / 5000 kb/s, x264 medium) for
# at least its quality. Peaks are capped at twice that rate, not the average: a cap at the average
# clamps hard content frame by frame and costs more quality than the bits it saves (bench/transcode.py).
# Same names, sizes and profiles as the fast ladder.
REFERENCE_KBPS = {"480p": 1000, "720p": 2500, "1080p": 5000}
REFERENCE_AUDIO_KBPS = 128  # what the reference ladder sends for audio (AAC)
DEFAULT_CRF = 23  # when no per-title choice could be made
EFFICIENT_RUNGS = tuple(
    RungSpec(spec.name, spec.height, "slower", DEFAULT_CRF, 2 * REFERENCE_KBPS[spec.name], 96, spec.profile,
             spec.level, reference_kbps=REFERENCE_KBPS[spec.name], bufsize_kbps=2 * REFERENCE_KBPS[spec.name])
    for spec in STANDARD_RUNGS
)  # fmt: skip
RESOLUTIONS = tuple(spec.name for spec in STANDARD_RUNGS)
_PROFILE_IDC = {"baseline": "42E0", "main": "4D40", "high": "6400"}


@dataclass(frozen=True)
class Rung:
    spec: RungSpec
    width: int
    height: int

    @property
    def name(self):
        return self.spec.name

    @property
    def codecs(self):
        """The RFC 6381 CODECS value of this rung's streams (e.g. `avc1.64001f`)."""
        level = int(float(self.spec.level) * 10)
        return f"avc1.{_PROFILE_IDC[self.spec.profile]}{level:02x}".lower()


def _even(value):
    """The nearest even size (halves round up: 853 becomes 854, as 16:9 at 480 lines is)."""
    return max(2, int(value / 2 + 0.5) * 2)


def _scaled(probe, short_side):
    """Frame size with the short side at `short_side`, aspect kept, both sides even."""
    if probe.width >= probe.height:
        return _even(probe.width * short_side / probe.height), _even(short_side)
    return _even(short_side), _even(probe.height * short_side / probe.width)


def build_ladder(probe, specs=STANDARD_RUNGS):
    """The rungs of `specs` that do not upscale the source, smallest first. A source whose short
    side is under the smallest rung gets that rung's name at its own size."""
    short_side = min(probe.width, probe.height)
    fitting = [spec for spec in specs if spec.height <= short_side]
    if not fitting:
        return [Rung(specs[0], probe.width // 2 * 2, probe.height // 2 * 2)]
    return [Rung(spec, *_scaled(probe, spec.height)) for spec in fitting]


def keyframe_interval(fps, gop_seconds=FAST_GOP_SECONDS):
    return max(1, round((fps or 25) * gop_seconds))


def _filter_graph(probe, rungs, cascade, hold_end=False):
    """Decode once and conform the picture (media/conform.py). With `cascade`, each rung is scaled
    from the next larger one (cheaper than scaling every rung from the full-size source); otherwise
    all are scaled from the source. `hold_end`: the last frame is held a segment longer (the output's
    -t cuts it), so a source whose picture ends before its stated duration still fills the grid."""
    held = [f"tpad=stop_mode=clone:stop_duration={SEGMENT_SECONDS}"] if hold_end else []
    conformed = "[0:v]" + ",".join([*conform.video_filters(probe), *held])
    if not cascade:
        outputs = "".join(f"[s{index}]" for index in range(len(rungs)))
        parts = [f"{conformed},split={len(rungs)}{outputs}"]
        parts += [
            f"[s{index}]scale={rung.width}:{rung.height}:flags=bicubic,setsar=1[v{index}]"
            for index, rung in enumerate(rungs)
        ]
        return ";".join(parts)
    largest_first = list(reversed(rungs))
    parts = []
    source = f"{conformed},"
    for index, rung in enumerate(largest_first):
        label = f"v{len(rungs) - 1 - index}"
        scale = f"scale={rung.width}:{rung.height}:flags=bicubic,setsar=1"
        if index == len(largest_first) - 1:
            parts.append(f"{source}{scale}[{label}]")
        else:
            parts.append(f"{source}{scale},split=2[{label}][c{index}]")
            source = f"[c{index}]"
    return ";".join(parts)


def build_hls_command(ffmpeg, source, out_dir, probe, rungs, preset=None, cascade=True, gop_seconds=FAST_GOP_SECONDS,
                      chunk=None, own_sound=False):  # fmt: skip
    """One ffmpeg process that writes every rung as an HLS rendition into out_dir/<name>/. With a
    `chunk` (media/chunks.py), only the pictures of that stretch, from an exact seek, as segments
    numbered and timed where they sit in the film; the sound is made apart, once, unless the chunk
    takes its `own_sound` (its stretch of the first track, for a viewer who cannot wait for it)."""
    gop = keyframe_interval(probe.fps, gop_seconds)
    command = [ffmpeg, "-hide_banner", "-nostdin", "-y", "-loglevel", "error"]
    if chunk is not None:
        command += ["-ss", f"{chunk.start:.6f}"]
    # Every ladder fills the planned grid to the end (media/chunks.py): the last frame is held to
    # the duration, so the fast and efficient ladders' last segments are equal.
    graph = _filter_graph(probe, rungs, cascade, hold_end=chunk is None or chunk.last)
    command += [*source_input(source), "-filter_complex", graph]
    with_audio = probe.has_audio and (chunk is None or own_sound)
    stream_map = []
    for index, rung in enumerate(rungs):
        spec = rung.spec
        command += ["-map", f"[v{index}]"]
        command += [
            f"-preset:v:{index}", preset or spec.preset,
            f"-crf:v:{index}", str(spec.crf),
            f"-maxrate:v:{index}", f"{spec.maxrate_kbps}k",
            f"-bufsize:v:{index}", f"{spec.vbv_bufsize_kbps}k",
            f"-profile:v:{index}", spec.profile,
            f"-level:v:{index}", spec.level,
        ]  # fmt: skip
        x264_params = [spec.x264_params] if spec.x264_params else []
        if chunk is not None:
            x264_params.append(f"vbv-init={CHUNK_VBV_INIT}")
        if x264_params:
            command += [f"-x264-params:v:{index}", ":".join(x264_params)]
        entry = f"v:{index}"
        if with_audio:
            command += ["-map", "0:a:0", f"-b:a:{index}", f"{spec.audio_kbps}k"]
            entry += f",a:{index}"
        stream_map.append(f"{entry},name:{rung.name}")
    # Every further audio track: an audio-only rendition audio/<n>/ (HLS alternative audio).
    for number in range(1, len(probe.audio_tracks) if with_audio and chunk is None else 0):
        output_index = len(rungs) + number - 1
        command += ["-map", f"0:a:{number}", f"-b:a:{output_index}", f"{ALTERNATIVE_AUDIO_KBPS}k"]
        stream_map.append(f"a:{output_index},name:{alternative_audio_folder(number)}")
    # Keyframes at the first frame of every gop_seconds of time, not every N frames: N frames drift
    # off the time grid at 29.97 fps, and chunks start on it.
    command += ["-c:v", "libx264", "-pix_fmt", "yuv420p", "-g", str(2 * gop), "-keyint_min", str(gop // 2)]
    command += ["-force_key_frames", f"expr:gte(t,n_forced*{gop_seconds})"]
    command += ["-sc_threshold", "0", "-flags", "+cgop", *conform.OUTPUT_COLOUR_ARGS]
    if with_audio:
        command += ["-c:a", "aac", "-ac", "2", "-ar", "48000"]
    if chunk is not None:
        command += ["-t", f"{chunk.seconds:.6f}", "-start_number", str(chunk.first_segment)]
    else:
        command += ["-t", f"{probe.duration:.6f}"]
    command += ["-output_ts_offset", f"{TS_OFFSET + (chunk.start if chunk else 0):.6f}"]
    command += [
        "-f", "hls",
        "-hls_time", str(SEGMENT_SECONDS),
        "-hls_playlist_type", "vod",
        "-hls_flags", "independent_segments",
        "-hls_segment_type", "mpegts",
        "-hls_segment_filename", f"{out_dir}/%v/%03d.ts",
        "-var_stream_map", " ".join(stream_map),
        f"{out_dir}/%v/index.m3u8",
        "-progress", "pipe:1", "-nostats",
    ]  # fmt: skip
    return command


ALTERNATIVE_AUDIO_KBPS = 128
ALTERNATIVE_AUDIO_FOLDER = "audio"


def alternative_audio_folder(number):
    """Where the source's audio track `number` (1 = its second) is published inside a version."""
    return f"{ALTERNATIVE_AUDIO_FOLDER}/{number}"


POSTER_HEIGHT = 720


def poster_size(probe):
    """The poster's size: the picture as displayed, at most POSTER_HEIGHT tall."""
    height = min(POSTER_HEIGHT, probe.height)
    return _even(probe.width * height / probe.height), _even(height)


POSTER_CANDIDATES = 50  # frames the `thumbnail` filter picks the most representative of


def poster_seek(probe):
    """Where the poster's candidates start: about a tenth in (at most 30 s), and at the start of a
    clip too short to have a tenth worth skipping (a single frame, a few seconds)."""
    if probe.picture_duration < 2 * POSTER_CANDIDATES / max(probe.fps, 1):
        return 0.0
    return min(probe.picture_duration * 0.1, 30.0)


def build_poster_command(ffmpeg, source, target, probe):
    """A representative frame (ffmpeg's `thumbnail` filter), conformed like the renditions. The
    seek comes after the input: it decodes up to that point instead of jumping to a keyframe,
    so a source with a single keyframe (a short MPEG-TS) still yields its frames."""
    width, height = poster_size(probe)
    graph = ",".join([*conform.picture_filters(probe), f"thumbnail={POSTER_CANDIDATES}",
                      f"scale={width}:{height}", "setsar=1"])  # fmt: skip
    return [
        ffmpeg, "-hide_banner", "-nostdin", "-y", "-loglevel", "error", *source_input(source),
        "-ss", f"{poster_seek(probe):.3f}", "-vf", graph, "-frames:v", "1", "-q:v", "3", str(target),
    ]  # fmt: skip


def build_frame_command(ffmpeg, segment, offset, target):
    """One frame of a published rendition's segment as a poster: `offset` seconds into the segment,
    at most POSTER_HEIGHT tall. The rendition's picture is already conformed (rotated, tone-mapped,
    deinterlaced, square pixels), so it only needs scaling."""
    return [
        ffmpeg, "-hide_banner", "-nostdin", "-y", "-loglevel", "error", "-ss", f"{max(offset, 0):.3f}",
        "-i", str(segment), "-vf", f"scale=-2:'min({POSTER_HEIGHT},ih)',setsar=1", "-frames:v", "1", "-q:v", "3",
        str(target),
    ]  # fmt: skip


def transcode_timeout(probe, factor):
    """Seconds ffmpeg may run: proportional to the duration, never below two minutes."""
    return max(120.0, probe.duration * factor)
