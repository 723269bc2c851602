"""deploy/nginx.conf.template in front of the app, with a real nginx: the app authorises each media
request and nginx sends the bytes (X-Accel-Redirect); renditions are never reachable directly."""

import http.client
import json
import urllib.error
import urllib.parse
import urllib.request
from contextlib import contextmanager
from http.cookiejar import CookieJar
from pathlib import Path

import pytest

from tests.conftest import PASSWORD, create_user, free_port, require_or_skip, running_app
from tests.helpers import import_video, only_video
from tests.servers import Nginx, nginx_binary, render_conf, wait_for

pytestmark = pytest.mark.nginx


@contextmanager
def nginx_in_front(app_config, tmp_path, serve_app, **settings):
    """The app under waitress as `flask serve` runs it, behind the shipped nginx config."""
    require_or_skip(nginx_binary(), "nginx", "REQUIRE_NGINX")
    config = {**app_config, "MEDIA_ACCEL_REDIRECT": "/protected-media", "PROXY_COUNT": 1, **settings}
    with running_app(config) as app:
        app_base = serve_app(app)
        port = free_port()
        conf = render_conf(tmp_path, port, app_base.removeprefix("http://"), app.config["MEDIA_ROOT"])
        base = f"http://127.0.0.1:{port}"
        with Nginx(conf, tmp_path):
            wait_for(f"{base}/api/health/")
            yield app, base, app_base


@pytest.fixture
def behind_nginx(app_config, tmp_path, serve_app):
    with nginx_in_front(app_config, tmp_path, serve_app) as (app, base, _app_base):
        yield app, base


def failed_login_from(client_address, base, forwarded_for=None):
    """One wrong password, sent from `client_address` (any of 127.0.0.0/8 is this machine)."""
    parts = urllib.parse.urlsplit(base)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10, source_address=(client_address, 0))
    headers = {"Content-Type": "application/json", "Origin": "http://127.0.0.1:5500"}
    if forwarded_for:
        headers["X-Forwarded-For"] = forwarded_for
    body = json.dumps({"email": "someone@example.com", "password": "not-the-password"})
    try:
        connection.request("POST", "/api/login/", body=body, headers=headers)
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def test_behind_nginx_rate_limits_count_per_client(app_config, tmp_path, serve_app):
    """The audit: behind nginx every client shared one bucket. Twelve clients with one failed login
    each get no 429; one client with eleven does; and a client that reaches waitress directly
    cannot pick its address with a forged X-Forwarded-For."""
    with nginx_in_front(app_config, tmp_path, serve_app, RATELIMIT_ENABLED=True) as (_app, base, app_base):
        assert [failed_login_from(f"127.0.0.{n}", base) for n in range(2, 14)] == [401] * 12
        assert [failed_login_from("127.0.0.20", base) for _ in range(11)] == [401] * 10 + [429]
        forged = [failed_login_from("127.0.0.30", app_base, forwarded_for=f"10.0.0.{n}") for n in range(11)]
        assert forged == [401] * 10 + [429]
        # nginx passes what a client claims on, and appends the address it saw: only that one counts.
        claims = [failed_login_from("127.0.0.40", base, forwarded_for=f"10.0.1.{n}") for n in range(11)]
        assert claims == [401] * 10 + [429]


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


def test_metrics_are_on_their_own_port_and_never_through_nginx(behind_nginx):
    from videoflix import metrics

    _app, base = behind_nginx
    port = free_port()
    server = metrics.serve(port)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as direct:
            assert "videoflix_http_requests_total" in direct.read().decode()
        for path in ("/metrics", "/api/metrics", "/api/metrics/"):
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(f"{base}{path}", timeout=5)
            assert refused.value.code == 404
            assert "videoflix_" not in refused.value.read().decode()
    finally:
        server.shutdown()
        server.server_close()
