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
MAX_SAMPLES = 8
SECONDS_PER_SAMPLE = 600
# Aim a little above the reference on the samples. It was 0.8 while the reference was measured
# before its rate control settled (REFERENCE_PLAYS), which made the target too low: the whole
# encode came out 0.44-1.06 VMAF lower, relative to the seed, than the samples had measured.
VMAF_MARGIN = 0.3
CRF_FIRST, CRF_LOWEST, CRF_HIGHEST = 23, 14, 34
# A fixed-bitrate encoder needs seconds of history before it settles: on a grainy 1080p clip x264's
# first 4 s reached VMAF 70-85 and the rest 90, so the reference measured on 6 s of samples was 8
# points below what it gives a film, and the target with it. The reference encodes the samples
# twice in a row and only the second time is measured: 91.9 against 90.6 steady on the clip (a
# video no longer than its samples is played once: that is the seed's whole encode of it).
REFERENCE_PLAYS = 2
MAX_PROBES = 3  # per search (quality, then bits)
EXTRA_PROBES = 2  # more, while the bracket around the answer is still wider than WIDE_BRACKET
WIDE_BRACKET = 2
REFERENCE_PRESET = "medium"
BITS_PER_CRF = 1.12  # one CRF step up sends about 12% fewer bits
VMAF_PER_CRF = 1.0  # and costs about one VMAF point
# After the whole rung is encoded: more than this above the target (as the samples predict it) is
# quality nobody asked for; at most MAX_REENCODES further encodes of a rung correct it or the bits.
EXCESS_VMAF = 1.5
MAX_REENCODES = 2
BUDGET_MARGIN_CRF = 0.3  # a re-encode for bits aims this much under the budget


@dataclass(frozen=True)
class Sample:
    """What one encode of the samples measured."""

    vmaf: float
    kbps: float


@dataclass(frozen=True)
class Choice:
    """What the search settled on for one rung, and what the samples measured (at a fractional
    CRF, interpolated between the two probes that bracket it)."""

    crf: float
    measured: Sample  # the efficient encode at `crf`, on the samples
    target: float  # the reference's VMAF on the samples, plus the margin
    budget_kbps: float  # the video bits it may spend
    probes: int


def sample_count(duration):
    """More samples for a longer film, one per SECONDS_PER_SAMPLE, between SAMPLE_COUNT and
    MAX_SAMPLES: their share of the pass shrinks as the film grows (16 s of a 2-hour film)."""
    return max(SAMPLE_COUNT, min(MAX_SAMPLES, round(duration / SECONDS_PER_SAMPLE)))


def sample_windows(duration, seconds=SAMPLE_SECONDS):
    """(start, length) of the samples, spread evenly over the video; the whole video only when it is
    no longer than the samples would be (a 10 s clip is sampled, not encoded whole)."""
    count = sample_count(duration)
    if duration <= count * seconds:
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


def build_probe_command(ffmpeg, sample, target, rung, gop, crf=None, plays=1):
    """The samples encoded at the rung's size: as the efficient ladder would at `crf` (under its
    cap), or, without `crf`, as the reference ladder would (fixed bitrate, x264 medium), played
    `plays` times in a row (reference_plays): only the last is measured (reference_skip)."""
    spec = rung.spec
    command = [ffmpeg, "-hide_banner", "-nostdin", "-y", "-loglevel", "error"]
    if plays > 1:
        command += ["-stream_loop", str(plays - 1)]
    command += ["-i", str(sample)]
    command += ["-vf", f"scale={rung.width}:{rung.height}:flags=bicubic,setsar=1", "-an", "-c:v", "libx264"]
    if crf is None:
        command += ["-preset", REFERENCE_PRESET, "-b:v", f"{spec.reference_kbps}k"]
    else:
        command += ["-preset", spec.preset, "-crf", str(crf)]
        command += ["-maxrate", f"{spec.maxrate_kbps}k", "-bufsize", f"{spec.vbv_bufsize_kbps}k"]
        command += ["-g", str(gop), "-keyint_min", str(gop), "-sc_threshold", "0", "-flags", "+cgop"]
    command += ["-profile:v", spec.profile, "-level:v", spec.level, "-pix_fmt", "yuv420p", str(target)]
    return command


def build_vmaf_command(ffmpeg, distorted, reference, width, height, log_path, threads=2, skip_frames=0):
    """VMAF (libvmaf, its default model) of `distorted` against `reference` scaled to width x height,
    leaving out the first `skip_frames` of `distorted` (frames, not seconds: samples cut at 5.3 s
    of a 25 fps clip hold 132 frames, and one frame off paired every frame with the next, VMAF 72
    for 92). Both are tagged alike first (BT.709, limited, as every rendition is): where one input
    is tagged and the other not, ffmpeg converts one to match before libvmaf sees them, which cost
    30 VMAF points of nothing but arithmetic on a synthetic clip. The reference must be
    limited-range SDR."""
    tags = conform.TAGGED_BT709
    skipped = f"trim=start_frame={skip_frames}," if skip_frames else ""
    graph = (
        f"[0:v]{skipped}{tags},setpts=PTS-STARTPTS[d];"
        f"[1:v]scale={width}:{height}:flags=bicubic,setsar=1,{tags},setpts=PTS-STARTPTS[r];"
        f"[d][r]libvmaf=log_fmt=json:log_path={log_path}:n_threads={threads}"
    )
    return [
        ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error",
        "-i", str(distorted), "-i", str(reference), "-lavfi", graph, "-f", "null", "-",
    ]  # fmt: skip


def reference_plays(windows, duration):
    """How many times the reference plays the samples: once when they are the whole video (that is
    the seed's encode of it, its unsettled start included), else REFERENCE_PLAYS (a film's encode
    is mostly settled)."""
    return 1 if windows == [(0.0, duration)] else REFERENCE_PLAYS


def reference_skip(frames, plays):
    """How many frames of the reference encode of `frames` of samples VMAF leaves out: every play but the last."""
    return frames * (plays - 1)


def read_vmaf(log_text):
    """The pooled mean VMAF from libvmaf's JSON log."""
    return float(json.loads(log_text)["pooled_metrics"]["vmaf"]["mean"])


def video_budget(spec, reference):
    """The video bits the efficient rung may spend: what the reference ladder delivers (what its
    fixed-bitrate encode spent on the samples, which on easy content is under its nominal rate,
    and its audio) less this rung's audio."""
    return reference.kbps + REFERENCE_AUDIO_KBPS - spec.audio_kbps


def first_guess(previous):
    """Where the search of a rung starts: at the CRF the rung below settled on (the rungs of one
    title land within a few steps of each other: 25.7, 25.5, 27.4 on bench/transcode.py's
    synthetic clip), each probe of it at this rung's size costing more than the whole search below."""
    return CRF_FIRST if previous is None else min(CRF_HIGHEST, max(CRF_LOWEST, round(previous.crf)))


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
    failing = min((crf for crf, ok in tried.items() if not ok and crf > chosen), default=None)
    if tried[chosen] and failing is not None:  # the fractional CRF where the line between them meets the target
        chosen = _interpolated(chosen, failing, probe(chosen).vmaf, probe(failing).vmaf, target, round_down=True)
    if over_budget_at(measured, chosen, budget) > 0:  # up to the first CRF measured within the budget
        start = max((crf for crf in measured if crf <= chosen), default=chosen)
        search(lambda crf: over_budget(crf) > 0, start, max_probes, over_budget)
        within = min((crf for crf in measured if crf > chosen and over_budget(crf) <= 0), default=CRF_HIGHEST)
        over = max((crf for crf in measured if crf < within and over_budget(crf) > 0), default=None)
        chosen = within
        if over is not None and within in measured:
            logs = math.log(probe(over).kbps), math.log(probe(within).kbps)
            chosen = _interpolated(over, within, *logs, math.log(budget), round_down=False)
    return Choice(
        crf=chosen, measured=estimate(measured, chosen), target=target, budget_kbps=budget, probes=len(measured)
    )


def _interpolated(low_crf, high_crf, at_low, at_high, wanted, round_down):
    """The CRF between two probes where a straight line through their values reaches `wanted`,
    rounded to 0.1 toward the safe side (down for quality, up for bits)."""
    if at_low == at_high:
        return low_crf if round_down else high_crf
    crf = low_crf + (at_low - wanted) / (at_low - at_high) * (high_crf - low_crf)
    crf = min(max(crf, low_crf), high_crf)
    return (math.floor if round_down else math.ceil)(round(crf * 10, 6)) / 10


def estimate(measured, crf):
    """The samples' VMAF and bits at `crf`, from the probes on either side of it (or the nearest)."""
    if crf in measured:
        return measured[crf]
    below = max((c for c in measured if c < crf), default=None)
    above = min((c for c in measured if c > crf), default=None)
    if below is None or above is None:
        return measured[below if above is None else above]
    share = (crf - below) / (above - below)
    low, high = measured[below], measured[above]
    return Sample(
        vmaf=low.vmaf + share * (high.vmaf - low.vmaf),
        kbps=math.exp(math.log(low.kbps) + share * (math.log(high.kbps) - math.log(low.kbps))),
    )


def over_budget_at(measured, crf, budget):
    """How many CRF steps the samples at `crf` are over the budget (negative: under)."""
    return -_bits_gap(estimate(measured, crf).kbps, budget)


# --- after the whole rung is encoded: what it really delivered ---


@dataclass(frozen=True)
class Encode:
    """One encode of a whole rung: its CRF and what its segments deliver (video + audio, kb/s)."""

    crf: float
    kbps: float


def rung_budget(choice, audio_kbps):
    """What the reference would deliver for the rung: its video on the samples and its audio."""
    return choice.budget_kbps + audio_kbps


def predicted_excess(choice, crf):
    """VMAF above the target at `crf`, as the samples predict it."""
    return choice.measured.vmaf - choice.target - (crf - choice.crf) * VMAF_PER_CRF


def corrected_crf(choice, encode, audio_kbps):
    """The CRF to encode the rung again at, or None to keep it: over its budget, at the CRF that
    the gap in bits points to (and a little more); far above the target, nearer to it."""
    budget = rung_budget(choice, audio_kbps)
    if encode.kbps > budget:
        crf = encode.crf + math.log(encode.kbps / budget) / math.log(BITS_PER_CRF) + BUDGET_MARGIN_CRF
    elif predicted_excess(choice, encode.crf) > EXCESS_VMAF:
        crf = encode.crf + (predicted_excess(choice, encode.crf) - VMAF_MARGIN) / VMAF_PER_CRF
    else:
        return None
    crf = min(CRF_HIGHEST, math.ceil(crf * 10) / 10)
    return crf if crf > encode.crf else None


def settle(choice, first, encode_at, audio_kbps):
    """Check the whole rung's first encode against its budget and target, encoding it again with
    encode_at(crf) -> Encode at most MAX_REENCODES times; (the encode to publish, all of them)."""
    encodes = [first]
    while len(encodes) <= MAX_REENCODES:
        crf = corrected_crf(choice, encodes[-1], audio_kbps)
        if crf is None or any(encode.crf == crf for encode in encodes):
            break
        encodes.append(encode_at(crf))
    return best_encode(encodes, choice, audio_kbps), encodes


def best_encode(encodes, choice, audio_kbps):
    """Which encode of the rung to publish: within its budget first; among those, the fewest bits
    that still reach the target (as predicted), else the best quality within the budget; with none
    within the budget, the fewest bits."""
    budget = rung_budget(choice, audio_kbps)
    within = [encode for encode in encodes if encode.kbps <= budget]
    if not within:
        return min(encodes, key=lambda encode: encode.kbps)
    reaching = [encode for encode in within if predicted_excess(choice, encode.crf) >= 0]
    if reaching:
        return min(reaching, key=lambda encode: encode.kbps)
    return min(within, key=lambda encode: encode.crf)


def search(passes, first, max_probes, margin_of, lowest=CRF_LOWEST, highest=CRF_HIGHEST):
    """Look for the highest CRF in [lowest, highest] for which passes(crf) holds (a higher CRF
    passes less often), with at most `max_probes` calls; margin_of(crf) says by how much a CRF
    passes or fails, in CRF steps, for the next guess. Returns {crf: passed} of what it tried."""
    tried = {}
    crf = first
    wide = True  # no bracket yet, or one wider than WIDE_BRACKET: extra probes are worth it
    while crf not in tried and len(tried) < max_probes + (EXTRA_PROBES if wide else 0):
        tried[crf] = passes(crf)
        best_pass = max((c for c, ok in tried.items() if ok), default=None)
        fails_above = [c for c, ok in tried.items() if not ok and (best_pass is None or c > best_pass)]
        if best_pass is not None and fails_above:
            best_fail = min(fails_above)
            wide = best_fail - best_pass > WIDE_BRACKET
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
