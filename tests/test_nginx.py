"""deploy/nginx.conf.template in front of the app, with a real nginx: the app authorises each media
request and nginx sends the bytes (X-Accel-Redirect); renditions are never reachable directly."""

import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from http.cookiejar import CookieJar
from pathlib import Path
from string import Template

import pytest

from tests.conftest import PASSWORD, create_user, free_port, make_app, require_or_skip
from tests.helpers import import_video, only_video
from videoflix.extensions import db

pytestmark = pytest.mark.nginx
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
TEMPLATE = Path(__file__).resolve().parent.parent / "deploy" / "nginx.conf.template"


def render_nginx_conf(folder, listen_port, upstream, media_root):
    """The shipped server block, filled in as the nginx image's envsubst would, in a minimal main config."""
    server = Template(TEMPLATE.read_text()).safe_substitute(
        LISTEN_PORT=f"127.0.0.1:{listen_port}", UPSTREAM=upstream, MEDIA_ROOT=media_root, MAX_UPLOAD="64m"
    )
    user = "user root;" if os.geteuid() == 0 else ""
    temp = {name: folder / name for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi")}
    for path in temp.values():
        path.mkdir(exist_ok=True)
    conf = folder / "nginx.conf"
    conf.write_text(
        f"""{user}
worker_processes 1;
daemon off;
pid {folder}/nginx.pid;
error_log {folder}/error.log warn;
events {{ worker_connections 256; }}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log off;
    client_body_temp_path {temp["body"]};
    proxy_temp_path {temp["proxy"]};
    fastcgi_temp_path {temp["fastcgi"]};
    uwsgi_temp_path {temp["uwsgi"]};
    scgi_temp_path {temp["scgi"]};
{server}
}}
"""
    )
    return conf


@pytest.fixture
def behind_nginx(app_config, tmp_path, serve_app):
    require_or_skip(NGINX, "nginx", "REQUIRE_NGINX")
    app = make_app({**app_config, "MEDIA_ACCEL_REDIRECT": "/protected-media", "PROXY_COUNT": 1})
    with app.app_context():
        db.create_all()
    upstream = serve_app(app).removeprefix("http://")
    port = free_port()
    conf = render_nginx_conf(tmp_path, port, upstream, app.config["MEDIA_ROOT"])
    process = subprocess.Popen([NGINX, "-c", str(conf), "-p", str(tmp_path)], stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"{base}/api/health/", timeout=1).close()
            break
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.1)
    yield app, base
    process.send_signal(signal.SIGQUIT)
    process.wait(10)
    process.stderr.close()
    with app.app_context():
        db.session.remove()
        db.drop_all()


def fetch(opener, url, headers=None):
    request = urllib.request.Request(url, headers={"Origin": "http://127.0.0.1:5500", **(headers or {})})
    try:
        with opener.open(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, dict(error.headers), error.read()


def test_media_goes_out_through_nginx_after_the_app_authorised_it(behind_nginx, clips):
    app, base = behind_nginx
    assert import_video(app.test_cli_runner(), clips["long"], "Proxied", "Action").exit_code == 0
    video = only_video(app)
    create_user(app)
    anonymous = urllib.request.build_opener()
    viewer = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))
    login = urllib.request.Request(
        f"{base}/api/login/",
        data=f'{{"email": "viewer@example.com", "password": "{PASSWORD}"}}'.encode(),
        headers={"Content-Type": "application/json", "Origin": "http://127.0.0.1:5500"},
    )
    viewer.open(login, timeout=10).close()

    segment_file = Path(app.config["MEDIA_ROOT"]) / video.hls_path / "480p" / "000.ts"
    status, headers, body = fetch(viewer, f"{base}/api/video/{video.id}/480p/000.ts")
    assert status == 200 and body == segment_file.read_bytes()
    assert headers["Content-Type"] == "video/MP2T"
    assert headers["Access-Control-Allow-Origin"] == "http://127.0.0.1:5500"
    assert headers["Access-Control-Allow-Credentials"] == "true"
    assert headers["Cache-Control"] == "private, max-age=3600"
    assert "X-Accel-Redirect" not in headers

    status, headers, body = fetch(viewer, f"{base}/api/video/{video.id}/480p/000.ts/", {"Range": "bytes=100-299"})
    assert status == 206 and body == segment_file.read_bytes()[100:300]

    status, headers, body = fetch(viewer, f"{base}/api/video/{video.id}/480p/index.m3u8")
    assert status == 200 and headers["Content-Type"] == "application/vnd.apple.mpegurl" and b"000.ts" in body

    status, headers, body = fetch(anonymous, f"{base}/api/video/{video.id}/480p/000.ts")
    assert status == 401 and body == b'{"detail":"Authentication credentials were not provided."}\n'
    status, _headers, _body = fetch(anonymous, f"{base}/protected-media/{video.hls_path}/480p/000.ts")
    assert status == 404  # internal: only reachable through the app's X-Accel-Redirect

    listing = fetch(viewer, f"{base}/api/video/")[2].decode()
    assert f"{base}/media/thumbnails/" in listing  # external URLs name the proxy, not the app server
    status, headers, poster = fetch(anonymous, f"{base}/media/thumbnails/{Path(video.poster_path).name}")
    assert status == 200 and poster[:3] == b"\xff\xd8\xff"
