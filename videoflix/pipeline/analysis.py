"""Runs the per-title analysis of media/ratecontrol.py for one transcode: cut the samples once,
then for each rung measure the reference encode and search the CRF. Where VMAF cannot be
measured (an ffmpeg without libvmaf), the rungs keep the ladder's default CRF under its cap."""

import dataclasses
import logging

import av

from videoflix.media import ratecontrol
from videoflix.media.ffmpeg import FFmpegFailed, run_ffmpeg
from videoflix.media.ladder import Rung, keyframe_interval

log = logging.getLogger(__name__)


def video_frames(path):
    """How many frames the video of `path` holds, and their seconds (from its packets: no decoding)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        durations = [packet.duration or 0 for packet in container.demux(stream) if packet.size]
        return len(durations), float(sum(durations) * stream.time_base)


def choose_crfs(t, on_progress):
    """The rungs of transcode `t`, each with the CRF its content needs, and {rung name: Choice}
    (what the samples measured, for the check of the whole rung after it is encoded)."""
    ffmpeg, workspace = t.ffmpeg(), t.job.workspace
    samples = workspace / "samples.mp4"  # exact timestamps: VMAF pairs the right frames
    windows = ratecontrol.sample_windows(t.info.duration)
    run_ffmpeg(ratecontrol.build_sample_command(ffmpeg, t.source, samples, windows, t.info), t.timeout())
    gop = keyframe_interval(t.info.fps, t.ladder.gop_seconds)
    frames, seconds = video_frames(samples)
    reference_plays = ratecontrol.reference_plays(windows, t.info.duration)

    def measure(rung, crf=None):
        encoded, vmaf_log = workspace / "probe.mp4", workspace / "vmaf.json"
        plays = reference_plays if crf is None else 1
        run_ffmpeg(ratecontrol.build_probe_command(ffmpeg, samples, encoded, rung, gop, crf, plays), t.timeout())
        skip = ratecontrol.reference_skip(frames, plays)
        command = ratecontrol.build_vmaf_command(
            ffmpeg, encoded, samples, rung.width, rung.height, vmaf_log, skip_frames=skip
        )
        run_ffmpeg(command, t.timeout())
        kbps = encoded.stat().st_size * 8 / (seconds * plays) / 1000  # the reference's bits over every play
        return ratecontrol.Sample(vmaf=ratecontrol.read_vmaf(vmaf_log.read_text()), kbps=kbps)

    chosen, choices = [], {}
    for index, rung in enumerate(t.rungs):
        try:
            reference = measure(rung)
            budget = ratecontrol.video_budget(rung.spec, reference)
            first = ratecontrol.first_guess(choices.get(t.rungs[index - 1].name) if index else None)
            choice = ratecontrol.choose_crf(lambda crf, rung=rung: measure(rung, crf), reference, budget, first=first)
        except FFmpegFailed as error:
            log.warning("video %s: no per-title CRF for %s (%s); the default applies", t.video.id, rung.name, error)
            chosen.append(rung)
            continue
        log.info("video %s %s: CRF %s, VMAF %.2f at %.0f kb/s on the samples (target %.2f, budget %.0f kb/s, "
                 "%s probes)", t.video.id, rung.name, choice.crf, choice.measured.vmaf, choice.measured.kbps,
                 choice.target, choice.budget_kbps, choice.probes)  # fmt: skip
        chosen.append(Rung(dataclasses.replace(rung.spec, crf=choice.crf), rung.width, rung.height))
        choices[rung.name] = choice
        on_progress((index + 1) / len(t.rungs))
    return chosen, choices
