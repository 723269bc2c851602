"""Transcoding: the Django seed's approach against this project's pipeline, on the same generated
1080p H.264 + AAC source, in one run. Prints wall/CPU time, realtime factor, and per rung the SSIM
against the source scaled to that rung and the mean bitrate.

    python -m bench.transcode [--seconds 24] [--steps]

--steps also runs the tuning steps that led to the default ladder, each checked against the SSIM floor.
"""

import argparse
import dataclasses
import logging
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

import imageio_ffmpeg
import m3u8

from bench.common import machine, measured, run, table
from videoflix import create_app
from videoflix.extensions import db
from videoflix.media import ladder
from videoflix.media.probe import probe
from videoflix.pipeline.tasks import enqueue_transcode
from videoflix.storage import keys
from videoflix.videos.models import Status, Video

FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()
# The seed: one ffmpeg per rendition, fixed bitrates, ffmpeg's default preset (medium), 10 s segments.
SEED_RUNGS = (("480p", 854, 480, "1000k"), ("720p", 1280, 720, "2500k"), ("1080p", 1920, 1080, "5000k"))
SSIM_TOLERANCE = 0.01


def make_source(path, seconds):
    """1080p30 with motion (testsrc2 blended with a mandelbrot zoom) and light temporal grain,
    about 18 Mb/s: not trivially compressible."""
    graph = (
        "[1:v]scale=1920:1080,format=yuv420p[b];[0:v]format=yuv420p[a];"
        "[a][b]blend=all_mode=average,noise=alls=4:allf=t[v]"
    )
    run([FFMPEG, "-v", "error", "-y",
         "-f", "lavfi", "-i", f"testsrc2=s=1920x1080:r=30:d={seconds}",
         "-f", "lavfi", "-i", "mandelbrot=s=640x360:r=30",
         "-f", "lavfi", "-i", f"sine=frequency=330:duration={seconds}",
         "-filter_complex", graph, "-map", "[v]", "-map", "2:a", "-t", str(seconds),
         "-c:v", "libx264", "-preset", "veryfast", "-crf", "20", "-g", "60",
         "-c:a", "aac", "-b:a", "192k", str(path)])  # fmt: skip
    return path


def seed_transcode(source, out):
    for name, width, height, bitrate in SEED_RUNGS:
        (out / name).mkdir(parents=True)
        run([FFMPEG, "-v", "error", "-y", "-i", str(source), "-vf", f"scale={width}:{height}",
             "-c:v", "libx264", "-b:v", bitrate, "-c:a", "aac", "-b:a", "128k",
             "-hls_time", "10", "-hls_playlist_type", "vod",
             "-hls_segment_filename", f"{out}/{name}/%03d.ts", f"{out}/{name}/index.m3u8"])  # fmt: skip
    return [(name, width, height) for name, width, height, _ in SEED_RUNGS]


def project_transcode(source, out, specs=None, **options):
    """This project's ffmpeg command, built by the same code the worker runs."""
    info = probe(source)
    rungs = ladder.build_ladder(info, specs) if specs else ladder.build_ladder(info)
    run(ladder.build_hls_command(FFMPEG, source, out, info, rungs, **options))
    return [(rung.name, rung.width, rung.height) for rung in rungs]


def ssim(rendition, source, width, height):
    graph = f"[0:v]setpts=PTS-STARTPTS[d];[1:v]setpts=PTS-STARTPTS,scale={width}:{height}:flags=bicubic[r];[d][r]ssim"
    result = run([FFMPEG, "-hide_banner", "-i", str(rendition), "-i", str(source), "-lavfi", graph, "-f", "null", "-"])
    return float(re.search(r"All:([0-9.]+)", result.stderr).group(1))


def rendition_kbps(folder):
    playlist = m3u8.load(str(folder / "index.m3u8"))
    seconds = sum(segment.duration for segment in playlist.segments)
    size = sum((folder / segment.uri).stat().st_size for segment in playlist.segments)
    return size * 8 / seconds / 1000


def measure(label, transcode, source, seconds, workdir):
    out = workdir / label.replace(" ", "_")
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    with measured() as cost:
        rungs = transcode(source, out)
    quality = {}
    for name, width, height in rungs:
        folder = out / name
        segments = sorted(folder.glob("*.ts"))
        assert segments, f"{label}: no segments for {name}"
        quality[name] = (ssim(folder / "index.m3u8", source, width, height), rendition_kbps(folder))
    return {
        "label": label,
        "wall": cost["wall"],
        "cpu": cost["cpu"],
        "realtime": seconds / cost["wall"],
        "rungs": quality,
    }


def _specs(presets, x264_params):
    return tuple(
        dataclasses.replace(spec, preset=preset, x264_params=params)
        for spec, preset, params in zip(ladder.STANDARD_RUNGS, presets, x264_params, strict=True)
    )


def upload_to_playable(source, workdir):
    """Seconds from a stored upload to a playable video, as the worker runs the job (probe, one
    ffmpeg for the ladder, master playlist, poster, publish). Every rung publishes at once."""
    media = workdir / "app-media"
    app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{workdir / 'app.sqlite3'}", "MEDIA_ROOT": str(media),
                      "CACHE_DIR": str(workdir / "cache"), "SECRET_KEY": "bench-" + "x" * 40})  # fmt: skip
    with app.app_context():
        db.create_all()
        (media / keys.SOURCES).mkdir(parents=True)
        shutil.copyfile(source, media / keys.SOURCES / "upload.mp4")
        video = Video(title="Bench", category="Drama", source_path=f"{keys.SOURCES}/upload.mp4")
        db.session.add(video)
        db.session.commit()
        started = time.perf_counter()
        enqueue_transcode(video)  # the test config runs the Huey task at once, in this process
        elapsed = time.perf_counter() - started
        db.session.expire_all()
        if video.status != Status.READY:
            raise SystemExit(f"the job ended {video.status}: {video.error}")
    return elapsed


def tuning_steps():
    """The steps from a plain single-process ladder to the default, each a (label, transcode) pair."""
    veryfast = _specs(["veryfast"] * 3, [""] * 3)
    superfast = _specs(["superfast"] * 3, [""] * 3)
    plain_ultrafast = _specs(["superfast", "superfast", "ultrafast"], [""] * 3)
    return [
        ("step 1: one process, veryfast, parallel scaling",
         lambda s, o: project_transcode(s, o, veryfast, cascade=False)),
        ("step 2: + scaling cascade", lambda s, o: project_transcode(s, o, veryfast)),
        ("step 3: superfast on every rung", lambda s, o: project_transcode(s, o, superfast)),
        ("step 4: plain ultrafast 1080p (no CABAC, no deblocking)",
         lambda s, o: project_transcode(s, o, plain_ultrafast)),
    ]  # fmt: skip


def report(results, seconds):
    seed = results[0]
    rows = []
    for result in results:
        cells = [result["label"], f"{result['wall']:.1f}", f"{result['cpu']:.1f}", f"{result['realtime']:.2f}×",
                 f"{seed['wall'] / result['wall']:.2f}×"]  # fmt: skip
        for name, _w, _h, _b in SEED_RUNGS:
            if name in result["rungs"]:
                value, kbps = result["rungs"][name]
                delta = value - seed["rungs"][name][0]
                cells.append(f"{value:.4f} ({delta:+.4f}), {kbps:.0f} kb/s")
            else:
                cells.append("-")
        rows.append(cells)
    headers = ["approach", "wall s", "CPU s", "realtime", "vs seed", "480p SSIM (Δ), rate", "720p", "1080p"]
    print(table(headers, rows))
    project = results[-1]
    worst = min(project["rungs"][n][0] - seed["rungs"][n][0] for n in project["rungs"])
    goals = [
        (f"{seed['wall'] / project['wall']:.2f}× faster than the seed", seed["wall"] / project["wall"] >= 4),
        (f"worst SSIM delta {worst:+.4f} (floor -{SSIM_TOLERANCE})", worst >= -SSIM_TOLERANCE),
        (f"{project['realtime']:.2f}× realtime", project["realtime"] >= 1.5),
    ]
    print()
    for text, met in goals:
        print(f"- goal {'met' if met else 'MISSED'}: {text}")
    return all(met for _text, met in goals)


def main(argv=None):
    logging.getLogger("huey").setLevel(logging.WARNING)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=24)
    parser.add_argument("--steps", action="store_true", help="also run the tuning steps")
    args = parser.parse_args(argv)
    print(f"## Transcoding: {args.seconds} s 1080p30 H.264 + AAC source\n\n{machine()}; ffmpeg {FFMPEG}\n")
    with tempfile.TemporaryDirectory(prefix="videoflix-bench-") as tmp:
        workdir = Path(tmp)
        source = make_source(workdir / "source.mp4", args.seconds)
        results = [measure("seed: 3 processes, medium, fixed bitrates", seed_transcode, source, args.seconds, workdir)]
        if args.steps:
            results += [measure(label, fn, source, args.seconds, workdir) for label, fn in tuning_steps()]
        results.append(measure("this project (worker's command)", project_transcode, source, args.seconds, workdir))
        met = report(results, args.seconds)
        print(f"- upload stored → playable (the whole worker job): {upload_to_playable(source, workdir):.1f} s")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
