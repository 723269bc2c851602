"""Faults a real deployment meets: a worker killed mid-transcode (again and again), the database or
Redis gone for a few seconds, and a full disk. Real processes and real servers; nothing mocked.
`make fuzz` runs the kill test with FAULT_KILLS=10."""

import os
import re
import subprocess
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
import sqlalchemy as sa

import config
from tests.conftest import create_user, make_clip, running_app, spa_client
from tests.helpers import PASSWORD, import_video
from tests.servers import CuttableProxy, Worker
from videoflix.extensions import db
from videoflix.queue import huey
from videoflix.storage import media_store
from videoflix.videos.models import PartKind, PartState, Phase, Status, TranscodePart, Video

KILLS = int(os.environ.get("FAULT_KILLS", "2"))
HEARTBEAT_SECONDS = 0.5  # so that a dead worker's job is stale after 1.5 s
UNAVAILABLE = {"detail": "Service temporarily unavailable. Please try again shortly."}


def worker_env(app, folder, **overrides):
    """The environment under which `flask worker` runs on `app`'s database, queue and media."""
    cfg = app.config
    env = {
        "APP_ENV": "development",
        "INSTANCE_DIR": str(folder),  # the queue, outbox, cache and epoch file where folder_settings has them
        "DATABASE_URL": cfg["SQLALCHEMY_DATABASE_URI"],
        "MEDIA_ROOT": cfg["MEDIA_ROOT"],
        "SECRET_KEY": cfg["SECRET_KEY"],
        "JOB_HEARTBEAT_SECONDS": str(HEARTBEAT_SECONDS),
        "TRANSCODE_OPTIMISE": "false",
        "WORKER_THREADS": "2",
    }
    if cfg["REDIS_URL"]:
        env["REDIS_URL"] = cfg["REDIS_URL"]
    return {**env, **overrides}


@pytest.fixture
def queued_app(app_config):
    """An app whose jobs go to the real queue, for a real worker to run (not run in-process)."""
    with running_app({**app_config, "HUEY_IMMEDIATE": False, "JOB_HEARTBEAT_SECONDS": HEARTBEAT_SECONDS}) as app:
        yield app


def videos(app):
    with app.app_context():
        rows = db.session.scalars(sa.select(Video).order_by(Video.id)).all()
        db.session.expunge_all()
        return rows


def wait_until(condition, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"not within {timeout} s: {what}")


def running_chunks(app):
    """(video id, chunk number) of every chunk a worker has claimed and not finished."""
    with app.app_context():
        return set(
            db.session.execute(
                sa.select(TranscodePart.video_id, TranscodePart.number).where(
                    TranscodePart.kind == PartKind.CHUNK, TranscodePart.state == PartState.RUNNING
                )
            ).all()
        )


def all_ready(app):
    rows = videos(app)
    return all(video.status == Status.READY and video.phase != Phase.ENCODING for video in rows)


def assert_published_whole(app):
    """Every video ready with exactly one version on disk, whole; no job's work left behind."""
    media = Path(app.config["MEDIA_ROOT"])
    for video in videos(app):
        assert video.status == Status.READY and video.error is None, (video.id, video.error)
        versions = sorted(p.name for p in (media / "hls" / str(video.id)).iterdir())
        assert [f"hls/{video.id}/{name}" for name in versions] == [video.hls_path]
        version = media / video.hls_path
        assert (version / "master.m3u8").is_file()
        for rendition in video.renditions:
            playlist = (version / rendition / "index.m3u8").read_text()
            segments = [line for line in playlist.splitlines() if line.endswith(".ts")]
            assert segments and all((version / rendition / name).stat().st_size > 0 for name in segments)
    assert [p for p in (media / ".work").rglob("*") if p.is_file()] == []


def queue_holds(app):
    with app.app_context():
        return bool(huey.pending())


def test_a_worker_killed_mid_transcode_again_and_again_loses_nothing(queued_app, app_config, tmp_path, clips):
    count = max(KILLS, 2)
    for number in range(count):
        assert import_video(queued_app.test_cli_runner(), clips["long"], f"Film {number}").exit_code == 0
    # Slow enough that each kill finds a chunk under way.
    env = worker_env(queued_app, tmp_path, TRANSCODE_PRESET="veryslow")
    worker = Worker(env, tmp_path / "worker.log").start()
    try:
        killed = set()
        for _kill in range(KILLS):
            # A chunk under way that no earlier kill stopped (the rows of killed chunks still say running).
            wait_until(
                lambda seen=killed: running_chunks(queued_app) - seen, 120, "a chunk in the middle of a live transcode"
            )
            worker.kill()  # SIGKILL of the worker and its ffmpeg: no cleanup runs
            killed |= running_chunks(queued_app)  # read once it is dead: a chunk can start between two reads
            worker.start()
        wait_until(lambda: all_ready(queued_app), 300, f"{count} videos ready")
        # The recovery's own tasks, queued behind the chunks while the threads were busy, run too.
        wait_until(lambda: not queue_holds(queued_app), 60, "the queue drained")
    finally:
        worker.stop()
    assert_published_whole(queued_app)
    with queued_app.app_context():
        assert huey.pending() == [], [(task.name, task.args) for task in huey.pending()]  # no job left waiting
    assert (tmp_path / "worker.log").read_text().count("Worker started") == KILLS + 1


def test_two_workers_share_one_film_s_chunks(queued_app, tmp_path):
    """Any worker takes any part: two processes, one thread each, make one film together."""
    film = make_clip(tmp_path / "film.mp4", 320, 180, seconds=60)  # ten segments: four chunks
    assert import_video(queued_app.test_cli_runner(), film, "Shared").exit_code == 0
    logs = [tmp_path / "one.log", tmp_path / "two.log"]
    workers = [Worker(worker_env(queued_app, tmp_path, WORKER_THREADS="1"), log).start() for log in logs]
    try:
        wait_until(lambda: all_ready(queued_app), 180, "the film made")
    finally:
        for worker in workers:
            worker.stop()
    assert_published_whole(queued_app)
    made = [re.findall(r"video \d+: chunk (\d+) made", log.read_text()) for log in logs]
    assert all(made), made  # each worker made chunks of it
    assert sorted(int(number) for numbers in made for number in numbers) == [0, 1, 3, 8]  # by first segment


def proxied(url, proxy):
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)
    host = f"127.0.0.1:{proxy.port}"
    return urlunsplit(parts._replace(netloc=f"{netloc[0]}@{host}" if len(netloc) == 2 else host))


def signed_in_client(app):
    create_user(app)
    client = spa_client(app)
    assert client.post("/api/login/", json={"email": "viewer@example.com", "password": PASSWORD}).status_code == 200
    return client


def outage_during_a_transcode(app_config, tmp_path, clips, setting, server_url):
    """The server of `server_url` cut off for 3 s while a real worker transcodes and a viewer asks:
    a clear 503 during it, then 200, and the video ends ready and whole."""
    target = urlsplit(server_url)
    proxy = CuttableProxy(target.hostname, target.port or (6379 if target.scheme.startswith("redis") else 5432))
    settings = {**app_config, setting: proxied(server_url, proxy), "HUEY_IMMEDIATE": False,
                "JOB_HEARTBEAT_SECONDS": HEARTBEAT_SECONDS}  # fmt: skip
    try:
        with running_app(settings) as app:
            client = signed_in_client(app)
            assert import_video(app.test_cli_runner(), clips["long"], "During the outage").exit_code == 0
            with Worker(worker_env(app, tmp_path), tmp_path / "worker.log"):
                wait_until(lambda: running_chunks(app), 120, "the transcode under way")
                proxy.cut()
                response = client.get("/api/video/continue/")
                assert response.status_code == 503
                assert response.get_json() == UNAVAILABLE
                assert response.headers["Retry-After"] == "5"
                time.sleep(3)
                proxy.restore()
                assert client.get("/api/video/continue/").status_code == 200
                wait_until(lambda: all_ready(app), 120, "the video ready after the outage")
            assert_published_whole(app)
    finally:
        proxy.close()


@pytest.mark.skipif(not config.TEST_DATABASE_URL, reason="the database outage needs PostgreSQL (TEST_DATABASE_URL)")
def test_a_database_outage_is_a_clear_503_and_a_transcode_during_it_still_ends_ready(app_config, tmp_path, clips):
    outage_during_a_transcode(app_config, tmp_path, clips, "SQLALCHEMY_DATABASE_URI", config.TEST_DATABASE_URL)


@pytest.mark.skipif(not config.TEST_REDIS_URL, reason="the Redis outage needs Redis (TEST_REDIS_URL)")
def test_a_redis_outage_is_a_clear_503_and_a_transcode_during_it_still_ends_ready(app_config, tmp_path, clips):
    # Requests: the revocation check cannot be skipped. The worker: its queue is gone for 3 s.
    outage_during_a_transcode(app_config, tmp_path, clips, "REDIS_URL", config.TEST_REDIS_URL)


@pytest.fixture
def small_disk(tmp_path):
    """A 48 MiB tmpfs (root only; skipped where mounting is not allowed)."""
    folder = tmp_path / "small-disk"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", str(folder)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    yield folder
    subprocess.run(["umount", "-l", str(folder)], check=True)


def test_a_full_disk_fails_the_job_with_its_reason_and_publishes_nothing(app_config, small_disk, clips):
    from videoflix.pipeline.tasks import transcode_in_process as transcode

    media = small_disk / "media"
    with running_app({**app_config, "MEDIA_ROOT": str(media)}) as app:
        with app.app_context():
            media_store().put_file("sources/long.mp4", clips["long"])
            video = Video(title="No room", category="Drama", source_path="sources/long.mp4", job_id="d" * 32)
            db.session.add(video)
            db.session.commit()
            video_id = video.id
            filler = small_disk / "filler"
            free = os.statvfs(small_disk).f_bavail * os.statvfs(small_disk).f_frsize
            filler.write_bytes(b"\0" * (free - 64 * 1024))  # 64 KiB left: less than one segment
            assert transcode(video_id, video.job_id, retries_left=0) == Status.FAILED
            failed = db.session.get(Video, video_id)
            assert failed.hls_path is None and failed.poster_path is None
            assert "No space left on device" in failed.error
        assert sorted(str(p.relative_to(media)) for p in media.rglob("*") if p.is_file()) == ["sources/long.mp4"]
        filler.unlink()  # room again: the same job runs through, nothing was lost
        with app.app_context():
            assert transcode(video_id, "d" * 32) == Status.READY, db.session.get(Video, video_id).error
        assert_published_whole(app)
