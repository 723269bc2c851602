"""The HLS ladder and the ffmpeg commands that encode it: pure functions of (probe, settings),
no Flask and no subprocess, so that every decision here is unit-tested without running ffmpeg."""

from dataclasses import dataclass

SEGMENT_SECONDS = 6
KEYFRAME_SECONDS = 2  # divides SEGMENT_SECONDS, so every rung cuts segments at the same frames


@dataclass(frozen=True)
class RungSpec:
    """One standard rung: its name, its short side, and its x264 settings.

    Rate caps follow Apple's HLS authoring ladder; CRF keeps easy content small."""

    name: str
    height: int
    preset: str
    crf: int
    maxrate_kbps: int
    audio_kbps: int
    profile: str
    level: str
    x264_params: str = ""


# Presets measured by bench/transcode.py (README, "Performance"): ultrafast with CABAC and the
# deblocking filter put back keeps SSIM within 0.01 of the seed's medium-preset output at 4-5x
# the speed; the small 480p rung can afford superfast.
FAST_X264 = "cabac=1:deblock=0,0"
STANDARD_RUNGS = (
    RungSpec("480p", 480, "superfast", 21, 1600, 96, "main", "3.1"),
    RungSpec("720p", 720, "ultrafast", 21, 4500, 128, "high", "4.0", FAST_X264),
    RungSpec("1080p", 1080, "ultrafast", 21, 7800, 128, "high", "4.1", FAST_X264),
)
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
    return max(2, int(round(value / 2)) * 2)


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


def keyframe_interval(fps):
    return max(1, round((fps or 25) * KEYFRAME_SECONDS))


def _filter_graph(rungs, cascade):
    """Decode once. With `cascade`, each rung is scaled from the next larger one (cheaper than
    scaling every rung from the full-size source); otherwise all are scaled from the source."""
    if not cascade:
        outputs = "".join(f"[s{index}]" for index in range(len(rungs)))
        parts = [f"[0:v]format=yuv420p,split={len(rungs)}{outputs}"]
        parts += [
            f"[s{index}]scale={rung.width}:{rung.height}:flags=bicubic,setsar=1[v{index}]"
            for index, rung in enumerate(rungs)
        ]
        return ";".join(parts)
    largest_first = list(reversed(rungs))
    parts = []
    source = "[0:v]format=yuv420p,"
    for index, rung in enumerate(largest_first):
        label = f"v{len(rungs) - 1 - index}"
        scale = f"scale={rung.width}:{rung.height}:flags=bicubic,setsar=1"
        if index == len(largest_first) - 1:
            parts.append(f"{source}{scale}[{label}]")
        else:
            parts.append(f"{source}{scale},split=2[{label}][c{index}]")
            source = f"[c{index}]"
    return ";".join(parts)


def build_hls_command(ffmpeg, source, out_dir, probe, rungs, preset=None, cascade=True):
    """One ffmpeg process that writes every rung as an HLS rendition into out_dir/<name>/."""
    gop = keyframe_interval(probe.fps)
    command = [ffmpeg, "-hide_banner", "-nostdin", "-y", "-loglevel", "error", "-i", str(source)]
    command += ["-filter_complex", _filter_graph(rungs, cascade)]
    stream_map = []
    for index, rung in enumerate(rungs):
        spec = rung.spec
        command += ["-map", f"[v{index}]"]
        command += [
            f"-preset:v:{index}", preset or spec.preset,
            f"-crf:v:{index}", str(spec.crf),
            f"-maxrate:v:{index}", f"{spec.maxrate_kbps}k",
            f"-bufsize:v:{index}", f"{spec.maxrate_kbps * 2}k",
            f"-profile:v:{index}", spec.profile,
            f"-level:v:{index}", spec.level,
        ]  # fmt: skip
        if spec.x264_params:
            command += [f"-x264-params:v:{index}", spec.x264_params]
        entry = f"v:{index}"
        if probe.has_audio:
            command += ["-map", "0:a:0", f"-b:a:{index}", f"{spec.audio_kbps}k"]
            entry += f",a:{index}"
        stream_map.append(f"{entry},name:{rung.name}")
    command += ["-c:v", "libx264", "-pix_fmt", "yuv420p", "-g", str(gop), "-keyint_min", str(gop)]
    command += ["-sc_threshold", "0", "-flags", "+cgop"]
    if probe.has_audio:
        command += ["-c:a", "aac", "-ac", "2", "-ar", "48000"]
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


def build_poster_command(ffmpeg, source, target, probe):
    """A representative frame (ffmpeg's `thumbnail` filter) from about a tenth into the video."""
    seek = min(probe.duration * 0.1, 30.0)
    return [
        ffmpeg, "-hide_banner", "-nostdin", "-y", "-loglevel", "error",
        "-ss", f"{seek:.3f}", "-i", str(source),
        "-vf", "thumbnail=50,scale=-2:'min(720,ih)'", "-frames:v", "1", "-q:v", "3",
        str(target),
    ]  # fmt: skip


def transcode_timeout(probe, factor):
    """Seconds ffmpeg may run: proportional to the duration, never below two minutes."""
    return max(120.0, probe.duration * factor)
