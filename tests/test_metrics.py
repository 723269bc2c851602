"""Prometheus metrics (videoflix/metrics.py, videoflix/live_state.py), scraped by a real Prometheus
(Debian's package) from a real `flask serve --no-worker` and a real `flask worker`, each on its own
metrics port, while a film is transcoded and a viewer asks for it."""

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import PASSWORD, create_user, make_clip, require_or_skip, running_app
from tests.helpers import import_video
from tests.servers import Worker, free_port, wait_for
from tests.test_faults import HEARTBEAT_SECONDS, all_ready, videos, worker_env

PROMETHEUS = shutil.which("prometheus")
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def prometheus_binary():
    require_or_skip(PROMETHEUS, "Prometheus (apt-get install prometheus)", "REQUIRE_PROMETHEUS")
    return PROMETHEUS


def start_prometheus(folder, targets):
    port = free_port()
    config = folder / "prometheus.yml"
    listed = ", ".join(f"'127.0.0.1:{target}'" for target in targets)
    config.write_text(
        f"global: {{scrape_interval: 1s, evaluation_interval: 1s}}\n"
        f"scrape_configs:\n  - job_name: videoflix\n    static_configs:\n      - targets: [{listed}]\n"
    )
    command = [PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={folder / 'tsdb'}",
               f"--web.listen-address=127.0.0.1:{port}"]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(f"http://127.0.0.1:{port}/-/ready", timeout=30)
    return process, f"http://127.0.0.1:{port}"


def query(prometheus, expression):
    url = f"{prometheus}/api/v1/query?{urllib.parse.urlencode({'query': expression})}"
    with urllib.request.urlopen(url, timeout=10) as response:
        result = json.load(response)["data"]["result"]
    return {json.dumps(item["metric"], sort_keys=True): float(item["value"][1]) for item in result}


def value_of(prometheus, expression):
    found = query(prometheus, expression)
    return sum(found.values()) if found else None


def eventually(prometheus, expression, check, timeout=30):
    deadline = time.monotonic() + timeout
    while True:
        value = value_of(prometheus, expression)
        if value is not None and check(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{expression} = {value}")
        time.sleep(0.5)


def test_a_real_prometheus_scrapes_the_web_and_a_worker_during_a_transcode(app_config, tmp_path, prometheus_binary):
    web_metrics, worker_metrics, web_port = free_port(), free_port(), free_port()
    settings = {**app_config, "HUEY_IMMEDIATE": False, "JOB_HEARTBEAT_SECONDS": HEARTBEAT_SECONDS}
    with running_app(settings) as app:
        create_user(app)
        env = {
            **os.environ,
            **worker_env(app, tmp_path),
            "RATELIMIT_ENABLED": "false",
            "METRICS_PORT": str(web_metrics),
        }
        web = subprocess.Popen(
            [sys.executable, "-m", "flask", "--app", "wsgi", "serve", "--no-worker", f"--port={web_port}"],
            env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        prometheus, prometheus_url = start_prometheus(tmp_path, [web_metrics, worker_metrics])
        worker = Worker(worker_env(app, tmp_path, METRICS_PORT=str(worker_metrics)), tmp_path / "worker.log")
        try:
            base = f"http://127.0.0.1:{web_port}"
            wait_for(f"{base}/api/health/", timeout=30)
            assert (
                import_video(app.test_cli_runner(), make_clip(tmp_path / "film.mp4", 320, 180, 20), "Metered").exit_code
                == 0
            )
            with worker:
                wait_for_ready(app)
                opener = signed_in(base)
                video_id = videos(app)[0].id
                for _ in range(5):
                    opener.open(f"{base}/api/video/").read()
                opener.open(f"{base}/api/video/{video_id}/480p/index.m3u8").read()
                opener.open(f"{base}/api/video/{video_id}/480p/000.ts").read()
                # Requests counted equal requests sent (5 lists; the health checks are their own route).
                listed = 'videoflix_http_requests_total{route="/api/video/",method="GET",status="200"}'
                eventually(prometheus_url, listed, lambda value: value == 5)
                assert value_of(prometheus_url, 'videoflix_http_requests_total{route="/api/login/",status="200"}') == 1
                eventually(prometheus_url, 'videoflix_media_requests_total{kind="segment"}', lambda value: value == 1)
                assert value_of(prometheus_url, 'videoflix_media_bytes_total{kind="segment"}') > 1000
                latency = value_of(prometheus_url, 'videoflix_http_request_duration_seconds_count{route="/api/video/"}')
                assert latency == 5
                # The worker's parts: the start, the sound, three chunks, the poster, the finish.
                chunks_done = eventually(prometheus_url, 'videoflix_transcode_parts_total{kind="chunk",outcome="done"}',
                                         lambda value: value >= 3)  # fmt: skip
                assert chunks_done == 3  # 20 s: chunks of 1, 2 and 1 segments (6+12+2 s)
                # (the finish's counter moves just after the video shows ready: waited for like the rest)
                finished = 'videoflix_transcode_parts_total{kind="finish",outcome="done"}'
                eventually(prometheus_url, finished, lambda value: value == 1)
                # x realtime, summed over the three chunks: a tiny clip encodes far faster than it plays
                assert value_of(prometheus_url, 'videoflix_encode_speed_ratio_sum{kind="chunk"}') > 1
                assert value_of(prometheus_url, 'videoflix_encode_speed_ratio_count{kind="chunk"}') == 3
                playable = value_of(prometheus_url, "videoflix_time_to_playable_seconds_sum")
                assert 0 < playable < 60
                assert value_of(prometheus_url, "videoflix_time_to_playable_seconds_count") == 1
                assert value_of(prometheus_url, 'videoflix_videos{status="ready",phase="fast"}') == 1
                assert value_of(prometheus_url, 'videoflix_queue_tasks{state="pending"}') is not None
        finally:
            web.terminate()
            web.wait()
            prometheus.terminate()
            prometheus.wait()


def wait_for_ready(app, timeout=120):
    deadline = time.monotonic() + timeout
    while not (videos(app) and all_ready(app)):
        assert time.monotonic() < deadline, "the film was not made in time"
        time.sleep(0.2)


def signed_in(base):
    from http.cookiejar import CookieJar

    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))
    body = json.dumps({"email": "viewer@example.com", "password": PASSWORD}).encode()
    request = urllib.request.Request(f"{base}/api/login/", data=body, headers={"Content-Type": "application/json"})
    opener.open(request).read()
    return opener
