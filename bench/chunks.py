"""A film playable in seconds: the chunked fast ladder (pipeline/chunked.py) against the whole one.

On generated 1080p sources with sound (lavfi testsrc2 with grain, never downloaded), through the real
queue, real `flask worker` processes and the real API behind `flask serve`; the workers are pinned
one per core (taskset) where the scaling is measured, and not for time to playable and seeks, as
they are deployed:

- time to playable: from the job's start to the first segment served (and to the playlists);
- time to a segment at 80% asked for right after that (a seek far ahead: made on request);
- time until the whole fast ladder exists, with 1 and 2 workers (this machine has 2 cores), and the
  whole ladder in one ffmpeg (the "before") for the same source;
- CPU-seconds of ffmpeg per source second, chunked and whole;
- bits (every segment) and VMAF of each rung, chunked against whole (goal: within 1%).

Usage: python -m bench.chunks [--minutes 1 10] [--keep DIR]"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import av
import imageio_ffmpeg

from bench.common import machine, measured, table
from bench.serving import SECRET, request_headers, start_app
from bench.transcode import rendition_kbps, vmaf
from tests.servers import free_port
from videoflix import create_app
from videoflix.auth.models import User
from videoflix.auth.tokens import new_access_token
from videoflix.extensions import db
from videoflix.media import chunks
from videoflix.pipeline.steps import encode_whole
from videoflix.pipeline.tasks import enqueue_transcode
from videoflix.videos.models import Phase, Status, Video

ROOT = Path(__file__).resolve().parent.parent
FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()


def make_source(path, seconds):
    """1080p25 with grain and a tone: encoded fast at a high quality, as a camera file would be."""
    subprocess.run(
        [FFMPEG, "-v", "error", "-y", "-f", "lavfi", "-i", f"testsrc2=s=1920x1080:r=25:d={seconds}",
         "-f", "lavfi", "-i", f"sine=frequency=330:duration={seconds}", "-vf", "noise=alls=12:allf=t",
         "-c:v", "libx264", "-preset", "ultrafast", "-crf", "20", "-g", "250", "-c:a", "aac", "-shortest", str(path)],
        check=True,
    )  # fmt: skip
    return path


class Stack:
    """A database, a media folder, a queue and a web process; workers started on demand."""

    def __init__(self, folder):
        self.folder = folder
        self.database = f"sqlite:///{folder / 'bench.sqlite3'}"
        self.media = folder / "media"
        self.settings = {"SQLALCHEMY_DATABASE_URI": self.database, "MEDIA_ROOT": str(self.media), "SECRET_KEY": SECRET,
                         "HUEY_IMMEDIATE": False, "HUEY_SQLITE_PATH": str(folder / "huey.sqlite3"),
                         "TRANSCODE_OPTIMISE": False}  # fmt: skip
        self.app = create_app(self.settings)
        with self.app.app_context():
            db.create_all()
            user = User(email="bench@example.com", is_active=True)
            user.set_password("bench-password-123")
            db.session.add(user)
            db.session.commit()
            self.token = new_access_token(user.id, user.token_version)
        self.port = free_port()
        self.web = start_app(self.database, self.media, self.port, threads=8, extra_env={"INSTANCE_DIR": str(folder)})
        self.workers = []

    def start_workers(self, count, pinned=True):
        env = {**os.environ, "APP_ENV": "development", "DATABASE_URL": self.database, "MEDIA_ROOT": str(self.media),
               "SECRET_KEY": SECRET, "INSTANCE_DIR": str(self.folder), "WORKER_THREADS": "1",
               "TRANSCODE_OPTIMISE": "false"}  # fmt: skip
        pin = pinned and shutil.which("taskset") and count <= (os.cpu_count() or 1)
        for number in range(count):
            command = [sys.executable, "-m", "flask", "--app", "wsgi", "worker"]
            if pin:
                command = ["taskset", "-c", str(number), *command]
            log = open(self.folder / f"worker-{number}.log", "ab")  # noqa: SIM115 - closed with the process
            self.workers.append(subprocess.Popen(command, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT))

    def stop_workers(self):
        for worker in self.workers:
            worker.terminate()
        for worker in self.workers:
            worker.wait()
        self.workers = []

    def close(self):
        self.stop_workers()
        self.web.terminate()
        self.web.wait()

    def add_video(self, source, title):
        key = f"sources/{title}.mp4"
        (self.media / "sources").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, self.media / key)
        with self.app.app_context():
            video = Video(title=title, category="Drama", source_path=key)
            db.session.add(video)
            db.session.commit()
            return video.id

    def enqueue(self, video_id):
        with self.app.app_context():
            enqueue_transcode(db.session.get(Video, video_id))

    def video(self, video_id):
        with self.app.app_context():
            video = db.session.get(Video, video_id)
            db.session.expunge(video)
            return video

    def get(self, path):
        """(status, seconds) of one GET through the API."""
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", headers=request_headers(self.token))
        started = time.perf_counter()
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                response.read()
                return response.status, time.perf_counter() - started
        except urllib.error.HTTPError as error:
            return error.code, time.perf_counter() - started
        except urllib.error.URLError:
            return 0, time.perf_counter() - started

    def until_served(self, path, started, timeout=600):
        """Seconds from `started` until `path` answers 200 (503 and 404 are asked again)."""
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            status, _seconds = self.get(path)
            if status == 200:
                return time.perf_counter() - started
            time.sleep(0.1)
        raise TimeoutError(path)

    def until_encoded(self, video_id, timeout=3600):
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            video = self.video(video_id)
            if video.status == Status.FAILED:
                raise RuntimeError(video.error)
            if video.status == Status.READY and video.phase != Phase.ENCODING:
                return
            time.sleep(0.2)
        raise TimeoutError(video_id)


def playable(stack, source, title, duration):
    """Time to the playlists, to the first segment, and to a segment at 80% asked right after."""
    video_id = stack.add_video(source, title)
    started = time.perf_counter()
    stack.enqueue(video_id)
    playlist = stack.until_served(f"/api/video/{video_id}/1080p/index.m3u8", started)
    first = stack.until_served(f"/api/video/{video_id}/1080p/000.ts", started)
    far = chunks.segment_name(int(0.8 * duration / chunks.SEGMENT_SECONDS))
    asked = time.perf_counter()
    seek = stack.until_served(f"/api/video/{video_id}/1080p/{far}", asked)
    return video_id, playlist, first, seek


def ladder_figures(stack, video_id, source):
    """rung -> (kb/s, VMAF against the source) of a video's published fast ladder."""
    video = stack.video(video_id)
    version = stack.media / video.hls_path
    figures = {}
    for name in video.renditions:
        with av.open(str(version / name / "000.ts")) as container:
            size = container.streams.video[0].width, container.streams.video[0].height
        figures[name] = rendition_kbps(version / name), vmaf(version / name, source, *size, stack.folder)
    return figures


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, nargs="+", default=[1, 10], help="source lengths (first: scaling)")
    parser.add_argument("--keep", type=Path, help="keep sources and stacks in this folder")
    args = parser.parse_args(argv)
    folder = args.keep or Path(tempfile.mkdtemp(prefix="bench-chunks-"))
    folder.mkdir(parents=True, exist_ok=True)
    print(f"# Chunked fast ladder: {machine()}\n")
    sources = {}
    for minutes in args.minutes:
        path = folder / f"source-{minutes:g}min.mp4"
        sources[minutes] = path if path.exists() else make_source(path, int(minutes * 60))

    rows = []
    for minutes, source in sources.items():
        stack = Stack(Path(tempfile.mkdtemp(dir=folder, prefix=f"playable-{minutes:g}-")))
        try:
            stack.start_workers(2, pinned=False)  # as deployed: the scaling runs below pin them
            _video_id, playlist, first, seek = playable(stack, source, f"p{minutes:g}", minutes * 60)
        finally:
            stack.close()
        rows.append([f"{minutes:g} min", f"{playlist:.1f}", f"{first:.1f}", f"{seek:.1f}"])
    print(table(["1080p source", "playlists served (s)", "first segment (s)", "segment at 80% (s)"], rows))
    print()

    minutes, source = next(iter(sources.items()))
    seconds = minutes * 60
    rows, wall_by_workers, stacks = [], {}, {}
    for workers in (1, 2):
        stack = Stack(Path(tempfile.mkdtemp(dir=folder, prefix=f"workers-{workers}-")))
        try:
            video_id = stack.add_video(source, f"w{workers}")
            with measured() as cost:
                stack.start_workers(workers)
                started = time.perf_counter()
                stack.enqueue(video_id)
                stack.until_encoded(video_id)
                wall = time.perf_counter() - started
                stack.stop_workers()
        finally:
            stack.close()
        wall_by_workers[workers] = wall
        stacks[workers] = stack, video_id
        speedup = wall_by_workers[1] / wall
        rows.append([f"chunked, {workers} worker(s)", f"{wall:.1f}", f"{cost['cpu'] / seconds:.2f}",
                     f"{speedup:.2f}x ({speedup / workers:.0%} of linear)"])  # fmt: skip

    stack = Stack(Path(tempfile.mkdtemp(dir=folder, prefix="whole-")))
    try:
        video_id = stack.add_video(source, "whole")
        with stack.app.app_context():
            video = db.session.get(Video, video_id)
            video.job_id = "w" * 32
            db.session.commit()
            with measured() as cost:
                status = encode_whole(video_id, "w" * 32)
        assert status == Status.READY, status
    finally:
        stack.close()
    rows.append(["whole (one ffmpeg, both cores)", f"{cost['wall']:.1f}", f"{cost['cpu'] / seconds:.2f}", "-"])
    print(f"Whole fast ladder of the {minutes:g}-minute source:\n")
    print(table(["how", "wall (s)", "CPU-s per source s", "speed-up over 1 worker"], rows))

    chunked = ladder_figures(*stacks[1], source)
    whole = ladder_figures(stack, video_id, source)
    rows, worst = [], 0.0
    for name, (kbps, score) in whole.items():
        chunked_kbps, chunked_score = chunked[name]
        worst = max(worst, abs(chunked_kbps / kbps - 1), abs(chunked_score / score - 1))
        rows.append([name, f"{kbps:.0f}, {score:.2f}", f"{chunked_kbps:.0f}, {chunked_score:.2f}",
                     f"{chunked_kbps / kbps:.3f}x", f"{chunked_score - score:+.2f}"])  # fmt: skip
    print("\nBits and picture, chunked (1 worker) against whole:\n")
    print(table(["rung", "whole: kb/s, VMAF", "chunked: kb/s, VMAF", "bits ÷ whole", "VMAF − whole"], rows))
    print(f"\n- goal {'met' if worst <= 0.01 else 'MISSED'}: the largest difference is {worst:.1%} (goal ≤ 1%)")
    if not args.keep:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
