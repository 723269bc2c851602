"""Which tone map brings HDR uploads back closest to what was filmed.

A colourful SDR picture (testsrc2, smpte bars and a gradient, 1280x720) is turned into HDR the way a
camera would grade it (BT.2020, PQ or HLG, SDR reference white at 203 nits as BT.2408 puts it), then
back to SDR BT.709 with each of the bundled ffmpeg's tone-map operators and two scalings of linear
light (npl = 100 and 203 nits). Each result is compared with the SDR original by VMAF and by the
mean chroma error: the operator the pipeline uses (media/conform.py) should be the best or near it.

    python -m bench.tonemap
"""

import argparse
import json
import sys
import tempfile
from pathlib import Path

from bench.common import machine, run, table
from videoflix.media.ffmpeg import ffmpeg_binary

SOURCES = {
    "testsrc2": "testsrc2=s=1280x720:r=25:d=2",
    "smptehdbars": "smptehdbars=s=1280x720:r=25:d=2",
    "gradient": "gradients=s=1280x720:r=25:d=2:speed=0.02",
}
HDR = {"PQ": ("smpte2084", 16), "HLG": ("arib-std-b67", 18)}
OPERATORS = ("hable", "mobius", "reinhard", "clip", "linear")
REFERENCE_WHITE_NITS = 203


def make_hdr(ffmpeg, lavfi, transfer, target):
    graph = (f"zscale=tin=bt709:min=bt709:pin=bt709:t={transfer}:m=2020_ncl:p=2020:npl={REFERENCE_WHITE_NITS},"
             "format=yuv420p10le")  # fmt: skip
    run([ffmpeg, "-v", "error", "-y", "-f", "lavfi", "-i", lavfi, "-vf", graph, "-c:v", "ffv1", str(target)])


def tone_map(ffmpeg, source, code, operator, npl, target):
    graph = (f"zscale=tin={code}:min=9:pin=9:rin=0:t=linear:npl={npl},format=gbrpf32le,zscale=p=bt709,"
             f"tonemap={operator}:desat=0,zscale=t=bt709:m=bt709:r=tv,format=yuv420p")  # fmt: skip
    run([ffmpeg, "-v", "error", "-y", "-i", str(source), "-vf", graph, "-c:v", "ffv1", str(target)])


def compare(ffmpeg, lavfi, mapped, folder):
    """(VMAF, mean |U|+|V| error in code values) of `mapped` against the SDR original."""
    log = folder / "vmaf.json"
    average = "signalstats,metadata=print:key=lavfi.signalstats.YAVG"
    graph = (f"[0:v]format=yuv420p[d];[1:v]format=yuv420p,split[r1][r2];[d]split[d1][d2];"
             f"[d1][r1]libvmaf=log_fmt=json:log_path={log}:n_threads=2;"
             f"[d2]extractplanes=u+v[du][dv];[r2]extractplanes=u+v[ru][rv];"
             f"[du][ru]blend=all_mode=difference,{average}:file={folder}/u.txt;"
             f"[dv][rv]blend=all_mode=difference,{average}:file={folder}/v.txt")  # fmt: skip
    run([ffmpeg, "-v", "error", "-i", str(mapped), "-f", "lavfi", "-i", lavfi, "-lavfi", graph, "-f", "null", "-"])
    vmaf = json.loads(log.read_text())["pooled_metrics"]["vmaf"]["mean"]
    errors = []
    for name in ("u.txt", "v.txt"):
        values = [float(line.split("=")[1]) for line in (folder / name).read_text().splitlines() if "YAVG" in line]
        errors.append(sum(values) / len(values))
    return vmaf, sum(errors)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.parse_args(argv)
    ffmpeg = ffmpeg_binary()
    print(f"# Tone maps, back to SDR against the original ({machine()})\n")
    rows, scores = [], {}
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        for source_name, lavfi in SOURCES.items():
            for hdr_name, (transfer, code) in HDR.items():
                hdr = folder / f"{source_name}-{hdr_name}.mkv"
                make_hdr(ffmpeg, lavfi, transfer, hdr)
                for npl in (100, REFERENCE_WHITE_NITS):
                    for operator in OPERATORS:
                        mapped = folder / "mapped.mkv"
                        tone_map(ffmpeg, hdr, code, operator, npl, mapped)
                        vmaf, chroma = compare(ffmpeg, lavfi, mapped, folder)
                        scores.setdefault((operator, npl), []).append(vmaf)
                        rows.append([source_name, hdr_name, npl, operator, f"{vmaf:.2f}", f"{chroma:.2f}"])
    print(table(["source", "HDR", "npl", "operator", "VMAF vs SDR original", "chroma error"], rows))
    print()
    ranking = sorted(scores.items(), key=lambda item: -sum(item[1]) / len(item[1]))
    print(table(["operator", "npl", "mean VMAF"], [[op, npl, f"{sum(v) / len(v):.2f}"] for (op, npl), v in ranking]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
