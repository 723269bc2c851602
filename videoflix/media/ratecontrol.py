"""Per-title rate control: each rung's CRF for the efficient ladder, chosen from the content.

A few short samples of the source are encoded as the reference ladder would encode them (x264
medium at a fixed bitrate) and as the efficient ladder would (x264 slow, a CRF with its peaks
capped); VMAF of each against the samples scaled to the rung says which CRF reaches the
reference's quality, plus a margin. Both are measured on the same samples, so what samples get
wrong about the whole film (ab-av1's users saw 1.5-2.7 points) mostly cancels. The highest such
CRF sends the fewest bits. Where even that CRF needs more bits than the reference spent on the
samples, the CRF moves up until it does not: never more bits than the reference, at the best
quality those bits buy. Pure functions and commands here; pipeline/analysis.py runs them."""

import json
import math
from dataclasses import dataclass

from videoflix.media import conform
from videoflix.media.ffmpeg import source_input
from videoflix.media.ladder import REFERENCE_AUDIO_KBPS

SAMPLE_SECONDS = 2.0
SAMPLE_COUNT = 3
VMAF_MARGIN = 0.3  # aim a little above the reference on the samples
CRF_FIRST, CRF_LOWEST, CRF_HIGHEST = 23, 14, 34
MAX_PROBES = 3  # per search (quality, then bits)
REFERENCE_PRESET = "medium"


@dataclass(frozen=True)
class Sample:
    """What one encode of the samples measured."""

    vmaf: float
    kbps: float


@dataclass(frozen=True)
class Choice:
    """What the search settled on for one rung, and what the samples measured."""

    crf: int
    measured: Sample  # the efficient encode at `crf`, on the samples
    target: float  # the reference's VMAF on the samples, plus the margin
    budget_kbps: float  # the video bits it may spend
    probes: int


def sample_windows(duration, count=SAMPLE_COUNT, seconds=SAMPLE_SECONDS):
    """(start, length) of `count` samples spread over the video; the whole video when it is short."""
    if duration <= count * seconds * 2:
        return [(0.0, duration)]
    spacing = duration / count
    return [(round(spacing * (index + 0.5) - seconds / 2, 3), seconds) for index in range(count)]


def build_sample_command(ffmpeg, source, target, windows, probe):
    """The samples, cut from the source and joined into one nearly lossless file (video only)."""
    picture = ",".join(conform.picture_filters(probe))  # as the renditions will see it
    parts = [
        f"[0:v]trim=start={start}:duration={length},setpts=PTS-STARTPTS,{picture}[s{index}]"
        for index, (start, length) in enumerate(windows)
    ]
    joined = "".join(f"[s{index}]" for index in range(len(windows)))
    graph = ";".join([*parts, f"{joined}concat=n={len(windows)}:v=1:a=0,format=yuv420p[v]"])
    return [
        ffmpeg, "-hide_banner", "-nostdin", "-y", "-loglevel", "error", *source_input(source),
        "-filter_complex", graph, "-map", "[v]", "-an",
        "-c:v", "libx264", "-preset", "ultrafast", "-qp", "0", str(target),
    ]  # fmt: skip


def build_probe_command(ffmpeg, sample, target, rung, gop, crf=None):
    """The samples encoded at the rung's size: as the efficient ladder would at `crf` (under its
    cap), or, without `crf`, as the reference ladder would (fixed bitrate, x264 medium)."""
    spec = rung.spec
    command = [ffmpeg, "-hide_banner", "-nostdin", "-y", "-loglevel", "error", "-i", str(sample)]
    command += ["-vf", f"scale={rung.width}:{rung.height}:flags=bicubic,setsar=1", "-an", "-c:v", "libx264"]
    if crf is None:
        command += ["-preset", REFERENCE_PRESET, "-b:v", f"{spec.reference_kbps}k"]
    else:
        command += ["-preset", spec.preset, "-crf", str(crf)]
        command += ["-maxrate", f"{spec.maxrate_kbps}k", "-bufsize", f"{spec.vbv_bufsize_kbps}k"]
        command += ["-g", str(gop), "-keyint_min", str(gop), "-sc_threshold", "0", "-flags", "+cgop"]
    command += ["-profile:v", spec.profile, "-level:v", spec.level, "-pix_fmt", "yuv420p", str(target)]
    return command


def build_vmaf_command(ffmpeg, distorted, reference, width, height, log_path, threads=2):
    """VMAF (libvmaf, its default model) of `distorted` against `reference` scaled to width x height."""
    graph = (
        f"[0:v]setpts=PTS-STARTPTS[d];[1:v]scale={width}:{height}:flags=bicubic,setsar=1,setpts=PTS-STARTPTS[r];"
        f"[d][r]libvmaf=log_fmt=json:log_path={log_path}:n_threads={threads}"
    )
    return [
        ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error",
        "-i", str(distorted), "-i", str(reference), "-lavfi", graph, "-f", "null", "-",
    ]  # fmt: skip


def read_vmaf(log_text):
    """The pooled mean VMAF from libvmaf's JSON log."""
    return float(json.loads(log_text)["pooled_metrics"]["vmaf"]["mean"])


def video_budget(spec, reference):
    """The video bits the efficient rung may spend: what the reference ladder delivers (what its
    fixed-bitrate encode spent on the samples, which on easy content is under its nominal rate,
    and its audio) less this rung's audio."""
    return reference.kbps + REFERENCE_AUDIO_KBPS - spec.audio_kbps


def choose_crf(measure, reference, budget, margin=VMAF_MARGIN, first=CRF_FIRST, max_probes=MAX_PROBES):
    """The CRF for one rung, given measure(crf) -> Sample, the reference's Sample and a video bit
    budget: the highest CRF that reaches the reference's VMAF plus `margin`, moved up while it would
    spend more than the budget. At most `max_probes` new calls of measure for each of the two searches."""
    target = reference.vmaf + margin
    measured = {}

    def probe(crf):
        if crf not in measured:
            measured[crf] = measure(crf)
        return measured[crf]

    def over_target(crf):
        return probe(crf).vmaf - target  # in VMAF points, about one CRF step each

    def over_budget(crf):
        return -_bits_gap(probe(crf).kbps, budget)  # in CRF steps

    tried = search(lambda crf: over_target(crf) >= 0, first, max_probes, over_target)
    chosen = max((crf for crf, ok in tried.items() if ok), default=min(tried))
    if over_budget(chosen) > 0:  # from the lowest CRF over budget up to the first one measured within it
        search(lambda crf: over_budget(crf) > 0, chosen, max_probes, over_budget)
        chosen = min((crf for crf in measured if crf > chosen and over_budget(crf) <= 0), default=CRF_HIGHEST)
    return Choice(crf=chosen, measured=probe(chosen), target=target, budget_kbps=budget, probes=len(measured))


def search(passes, first, max_probes, margin_of, lowest=CRF_LOWEST, highest=CRF_HIGHEST):
    """Look for the highest CRF in [lowest, highest] for which passes(crf) holds (a higher CRF
    passes less often), with at most `max_probes` calls; margin_of(crf) says by how much a CRF
    passes or fails, in CRF steps, for the next guess. Returns {crf: passed} of what it tried."""
    tried = {}
    crf = first
    while len(tried) < max_probes and crf not in tried:
        tried[crf] = passes(crf)
        best_pass = max((c for c, ok in tried.items() if ok), default=None)
        fails_above = [c for c, ok in tried.items() if not ok and (best_pass is None or c > best_pass)]
        if best_pass is not None and fails_above:
            best_fail = min(fails_above)
            if best_fail - best_pass <= 1:
                break
            crf = (best_pass + best_fail) // 2
        elif best_pass is not None:  # passes: a higher CRF (fewer bits) may too
            if best_pass >= highest:
                break
            crf = min(highest, best_pass + _step(margin_of(best_pass)))
        else:  # fails: a lower CRF (more bits)
            lowest_tried = min(tried)
            if lowest_tried <= lowest:
                break
            crf = max(lowest, lowest_tried - _step(-margin_of(lowest_tried)))
    return tried


def _bits_gap(kbps, budget):
    """How many CRF steps `kbps` is under `budget` (negative: over); one step is about 12% of bits."""
    return math.log(budget / kbps) / math.log(1.12)


def _step(gap):
    """CRF steps to try for a gap measured in steps (about one VMAF point, or 12% of bits, each)."""
    return max(1, min(6, round(abs(gap))))
