"""Playback in a real browser: headless Chromium plays renditions of a transcoded video with hls.js,
from a page on an allowed origin, signed in through the API with cookies, exactly like the SPA."""

import contextlib
import functools
import re
import shutil
import subprocess
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.conftest import FFMPEG, PASSWORD, create_user, free_port, make_clip, require_or_skip, running_app
from tests.helpers import add_subtitle, admin_login, get_video, import_video, only_video, run_part, started
from videoflix.extensions import db
from videoflix.videos.models import PartKind, Phase, Video

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
PAGE_DIR = Path(__file__).parent / "browser"
HLS_JS = PAGE_DIR / "node_modules" / "hls.js" / "dist" / "hls.js"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
]


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *_args):
        pass


@pytest.fixture
def live(app_config, tmp_path, serve_app):
    """The API under waitress and the test page on another origin, both on 127.0.0.1."""
    require_or_skip(CHROMIUM, "Chromium", "REQUIRE_BROWSER")
    require_or_skip(HLS_JS.exists(), "hls.js (npm ci --prefix tests/browser)", "REQUIRE_BROWSER")
    page_port = free_port()
    origin = f"http://127.0.0.1:{page_port}"
    origins = {"CORS_ALLOWED_ORIGINS": [origin], "CSRF_TRUSTED_ORIGINS": [origin]}
    stack = contextlib.ExitStack()
    app = stack.enter_context(running_app({**app_config, **origins}))
    api_base = serve_app(app)

    site = tmp_path / "site"
    site.mkdir()
    shutil.copy(PAGE_DIR / "player.html", site / "index.html")
    shutil.copy(HLS_JS, site / "hls.js")
    page_server = ThreadingHTTPServer(("127.0.0.1", page_port), functools.partial(QuietHandler, directory=site))
    threading.Thread(target=page_server.serve_forever, daemon=True).start()
    yield app, f"{api_base}/api/", f"{origin}/index.html"
    page_server.shutdown()
    page_server.server_close()
    stack.close()


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def browser_page(browser):
    """A page whose test may evaluate strings (wait_for_function), which the admin's
    Content-Security-Policy refuses: the policy itself is tested with `strict_page`."""
    return browser.new_context(bypass_csp=True).new_page()


@pytest.fixture
def strict_page(browser):
    return browser.new_context().new_page()


def _wait_until_playing_past(page, seconds):
    page.wait_for_function(
        f"document.getElementById('player').currentTime > {seconds} || window.fatalErrors.length > 0",
        timeout=60_000,
    )
    assert page.evaluate("window.fatalErrors") == []
    assert page.evaluate("document.getElementById('player').currentTime") > seconds


def open_the_create_form(page, admin_url, title, clip):
    """What staff do: sign in at /admin/, open the create form, name the video and choose its file."""
    page.goto(f"{admin_url}login/")
    page.fill("input[name=email]", "staff@example.com")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.goto(f"{admin_url}video/new/")
    page.fill("input[name=title]", title)
    page.select_option("select[name=category]", "Drama")
    page.set_input_files("input[name=video_file]", str(clip))


def upload_in_the_admin(page, admin_url, clip):
    """The create form filled in with a file, saved."""
    open_the_create_form(page, admin_url, "Browser Film", clip)
    page.fill("textarea[name=description]", "Uploaded through the admin in Chromium.")
    with page.expect_navigation(timeout=120_000):  # the test config transcodes inside the request
        page.click("input[type=submit][value=Save]")
    return page.content()


def test_staff_upload_plays_in_chromium_with_hls_js(live, browser_page, tmp_path):
    app, api, page_url = live
    create_user(app, email="staff@example.com", staff=True)
    viewer_id = create_user(app)
    page = browser_page

    listing_page = upload_in_the_admin(
        page, api.replace("/api/", "/admin/"), make_clip(tmp_path / "film.mp4", 1280, 720, 8)
    )
    assert "Browser Film" in listing_page and "badge-success" in listing_page
    video = only_video(app)
    assert video.renditions == ["480p", "720p"]

    page.goto(page_url)
    page.evaluate(f"window.API = {api!r}")
    login = page.evaluate(f"login('viewer@example.com', {PASSWORD!r})")
    assert login == {
        "status": 200,
        "body": {"detail": "Login successful", "user": {"id": viewer_id, "username": "viewer@example.com"}},
    }
    listing = page.evaluate("api('video/')")
    assert listing["status"] == 200 and [item["title"] for item in listing["body"]] == ["Browser Film"]

    # Adaptive: the master playlist, then a forced switch to the other level.
    page.evaluate(f"startPlayback(window.API + 'video/{video.id}/master.m3u8')")
    _wait_until_playing_past(page, 2)
    levels = page.evaluate("window.hls.levels.map(level => level.height)")
    assert levels == [480, 720]
    target = 1 - page.evaluate("window.hls.currentLevel")
    page.evaluate(f"window.hls.currentLevel = {target}")
    page.wait_for_function(f"window.switchedLevels.includes({target})", timeout=30_000)
    _wait_until_playing_past(page, page.evaluate("document.getElementById('player').currentTime") + 0.5)

    # What the SPA does: one resolution's playlist; its 1080p choice plays the 720p rendition.
    for resolution in ("480p", "1080p"):
        page.evaluate(f"startPlayback(window.API + 'video/{video.id}/{resolution}/index.m3u8')")
        _wait_until_playing_past(page, 2)
        assert page.evaluate("window.hls.levels.length") == 1


def test_an_admin_upload_rides_out_a_cut_connection_and_the_preview_plays(live, browser_page, tmp_path):
    app, api, _page_url = live
    create_user(app, email="staff@example.com", staff=True)
    admin = api.replace("/api/", "/admin/")
    # Noise at a low quantiser: over 16 MB, three 8 MiB chunks, so the cut comes between two of them.
    film = tmp_path / "large.mp4"
    subprocess.run([FFMPEG, "-v", "error", "-f", "lavfi", "-i", "testsrc2=s=640x360:r=25:d=5", "-vf",
                    "noise=alls=40:allf=t", "-c:v", "libx264", "-preset", "ultrafast", "-qp", "20", "-pix_fmt",
                    "yuv420p", str(film)], check=True)  # fmt: skip
    assert film.stat().st_size > 16 * 2**20
    page = browser_page
    open_the_create_form(page, admin, "Resumed Film", film)

    requests = {"sent": 0, "refused": 0}

    def cut_after_the_first_chunk(route):
        """The network goes away after the first chunk: three upload requests fail, then it is back."""
        if route.request.method in ("PATCH", "HEAD"):
            requests["sent"] += 1
            if requests["sent"] > 1 and requests["refused"] < 3:
                requests["refused"] += 1
                route.abort("connectionreset")
                return
        route.continue_()

    page.route("**/admin/uploads/**", cut_after_the_first_chunk)
    page.click("input[type=submit][value=Save]")
    # While the connection is cut, the bar stands part of the way, with the amount sent.
    page.wait_for_function(
        "(() => { const bar = document.querySelector('#upload-panel .progress-bar');"
        " const percent = bar && parseInt(bar.textContent); return percent > 0 && percent < 100; })()",
        timeout=30_000,
    )
    assert " MB of " in page.inner_text("#upload-status")
    page.wait_for_url(re.compile(r".*/admin/video/(\?.*)?$"), timeout=120_000)  # saved once it is complete
    assert requests["refused"] == 3
    assert "Resumed Film" in page.content() and "badge-success" in page.content()
    video = only_video(app)
    assert (Path(app.config["MEDIA_ROOT"]) / video.source_path).read_bytes() == film.read_bytes()

    page.goto(f"{admin}video/edit/?id={video.id}")
    assert page.locator("table >> text=480p").count() == 1  # the per-rendition sizes
    page.evaluate("document.getElementById('preview').play()")
    page.wait_for_function("document.getElementById('preview').currentTime > 1", timeout=60_000)


def test_subtitles_show_in_hls_js_and_scrub_previews_need_the_cookie(live, browser_page, tmp_path):
    app, api, page_url = live
    create_user(app, email="staff@example.com", staff=True)
    create_user(app)
    assert (
        import_video(app.test_cli_runner(), make_clip(tmp_path / "film.mp4", 640, 360, 8), "Subtitled").exit_code == 0
    )
    video = only_video(app)
    staff = app.test_client()
    admin_login(staff, "staff@example.com", PASSWORD)
    srt = b"1\r\n00:00:02,000 --> 00:00:05,000\r\nBonjour \xe0 tous\r\n"  # Latin-1
    assert add_subtitle(staff, video.id, srt).status_code == 302

    page = browser_page
    page.goto(page_url)
    page.evaluate(f"window.API = {api!r}")
    assert page.evaluate(f"login('viewer@example.com', {PASSWORD!r})")["status"] == 200
    page.evaluate(f"startPlayback(window.API + 'video/{video.id}/master.m3u8')")
    page.wait_for_function(
        "Array.from(document.getElementById('player').textTracks).some(track => track.language === 'fr')",
        timeout=30_000,
    )
    page.evaluate("Array.from(document.getElementById('player').textTracks).forEach(t => { t.mode = 'showing'; })")
    page.wait_for_function(
        "Array.from(document.getElementById('player').textTracks).some(track =>"
        " track.activeCues && track.activeCues.length && track.activeCues[0].text === 'Bonjour à tous')",
        timeout=30_000,
    )
    shown_at = page.evaluate("document.getElementById('player').currentTime")
    assert 2.0 <= shown_at <= 5.2, shown_at  # on the video's clock
    assert page.evaluate("window.fatalErrors") == []

    storyboard = page.evaluate(
        """async (id) => {
            const track = await fetch(window.API + `video/${id}/storyboard.vtt`, {credentials: 'include'});
            const sheet = await fetch(window.API + `video/${id}/storyboard/sprite-000.jpg`, {credentials: 'include'});
            const anonymous = await fetch(window.API + `video/${id}/storyboard/sprite-000.jpg`,
                                          {credentials: 'omit', cache: 'no-store'});  // the server, not the cache
            return [track.status, (await track.text()).slice(0, 6), sheet.status, sheet.headers.get('content-type'),
                    anonymous.status];
        }""",
        video.id,
    )
    assert storyboard == [200, "WEBVTT", 200, "image/jpeg", 401]


def test_the_api_docs_page_renders_every_operation_from_the_apps_own_assets(live, browser_page):
    app, api, _page_url = live
    page = browser_page
    origin = api.removesuffix("/api/")
    requested = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto(f"{api}docs/")
    page.wait_for_selector(".opblock-summary-path", timeout=30_000)
    paths = page.eval_on_selector_all(".opblock-summary-path", "nodes => nodes.map(n => n.dataset.path)")
    document = app.test_client().get("/api/openapi.json").get_json()
    operations = [(path, method) for path, item in document["paths"].items() for method in item]
    assert len(paths) == len(operations) and set(paths) == set(document["paths"])
    assert [url for url in requested if not url.startswith(origin)] == []  # no CDN, no other host


def test_admin_and_docs_pages_run_under_their_policy_and_load_nothing_from_another_host(
    live, strict_page, runner, clips
):
    """Every page staff and developers open: no request leaves the app's origin, no script or style
    is refused by the Content-Security-Policy, and Flask-Admin's own delete confirmation still asks."""
    app, api, _page_url = live
    origin = api.removesuffix("/api/")
    assert import_video(runner, clips["small"], "Policy").exit_code == 0
    video = only_video(app)
    create_user(app, email="staff@example.com", staff=True)
    page = strict_page
    elsewhere, refused, errors = [], [], []
    page.on(
        "request",
        lambda request: None if request.url.startswith((origin, "data:", "blob:")) else elsewhere.append(request.url),
    )
    page.on(
        "console", lambda message: refused.append(message.text) if "Content Security Policy" in message.text else None
    )
    page.on("pageerror", lambda error: errors.append(str(error)))

    page.goto(f"{origin}/admin/login/")
    page.fill("input[name=email]", "staff@example.com")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit], input[type=submit]")
    page.wait_for_url(f"{origin}/admin/")
    for path in ("/admin/", "/admin/video/", f"/admin/video/edit/?id={video.id}", "/admin/video/new/", "/admin/user/",
                 "/admin/subtitle/new/", "/admin/queue/", "/api/docs/"):  # fmt: skip
        response = page.goto(f"{origin}{path}")
        assert response.status == 200, path
        assert response.headers["x-frame-options"] == "DENY" and response.headers["x-content-type-options"] == "nosniff"
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
        page.wait_for_load_state("networkidle")
    page.wait_for_selector(".opblock-summary-path", timeout=30_000)

    page.goto(f"{origin}/admin/video/")
    asked = []
    page.on("dialog", lambda dialog: (asked.append(dialog.message), dialog.dismiss()))
    page.click("form.icon button[title='Delete Record'], .icon button[title='Delete record']")
    assert asked == ["Are you sure you want to delete this record?"]
    assert elsewhere == [] and refused == [] and errors == []


def test_the_spa_player_starts_at_zero_while_the_film_is_still_encoding(live, browser_page, tmp_path):
    """The SPA's setup (one resolution's playlist, withCredentials) on a film whose chunks are not
    made yet: the playlist is complete VOD, so hls.js starts at 0, not at a live edge; each segment
    is made when asked for (the test app runs a hurried chunk inside the request)."""
    app, api, page_url = live
    create_user(app)
    video_id = started(app, make_clip(tmp_path / "film.mp4", 640, 360, 30))
    run_part(app, video_id, PartKind.SOUND)
    page = browser_page
    page.goto(page_url)
    page.evaluate(f"window.API = {api!r}")
    assert page.evaluate(f"login('viewer@example.com', {PASSWORD!r})")["status"] == 200
    page.evaluate(f"startPlayback(window.API + 'video/{video_id}/480p/index.m3u8')")
    _wait_until_playing_past(page, 2)
    assert page.evaluate("window.hls.levels[0].details.live") is False
    assert page.evaluate("document.getElementById('player').played.start(0)") < 0.5
    assert get_video(app, video_id).phase == Phase.ENCODING  # later chunks are still to be made


TESSERACT = shutil.which("tesseract")


def read_aloud(png):
    """The text of a screenshot, read by OCR (tesseract): what a person sees, whatever the markup says."""
    result = subprocess.run([TESSERACT, "stdin", "stdout", "--psm", "6"], input=png, capture_output=True, check=True)
    return " ".join(result.stdout.decode().split())


@pytest.mark.parametrize(
    ("status", "phase", "progress", "label"),
    [("ready", "optimising", 0, "playable, optimising 0%"), ("ready", "optimising", 20, "playable, optimising 20%"),
     ("ready", "encoding", 100, "playable, encoding 100%"), ("processing", None, 20, "20%")],
)  # fmt: skip
def test_the_status_label_reads_at_every_percentage(live, browser, status, phase, progress, label):
    """A screenshot of the list's status cell, read by OCR: the label is beside its bar, not inside it."""
    require_or_skip(TESSERACT, "tesseract (Debian: tesseract-ocr)", "REQUIRE_BROWSER")
    app, api, _page_url = live
    create_user(app, email="staff@example.com", staff=True)
    with app.app_context():
        video = Video(title="Labelled", category="Drama", status=status, phase=phase, progress=progress,
                      hls_path="hls/1/v1" if status == "ready" else None, renditions=["480p"])  # fmt: skip
        db.session.add(video)
        db.session.commit()
    page = browser.new_context(device_scale_factor=3, viewport={"width": 1600, "height": 900}).new_page()
    admin = api.replace("/api/", "/admin/")
    page.goto(f"{admin}login/")
    page.fill("input[name=email]", "staff@example.com")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.goto(f"{admin}video/")
    cell = page.locator("td.col-status")
    assert cell.count() == 1
    seen = read_aloud(cell.screenshot())
    assert label in seen, seen


def test_a_form_error_after_the_upload_does_not_send_the_file_again(live, browser_page, tmp_path):
    app, api, _page_url = live
    create_user(app, email="staff@example.com", staff=True)
    admin = api.replace("/api/", "/admin/")
    clip = make_clip(tmp_path / "clip.mp4", 320, 180, 2)
    page = browser_page
    sent = []
    page.on("request", lambda request: sent.append(request.method) if "/admin/uploads/" in request.url else None)
    open_the_create_form(page, admin, "Scheduled Film", clip)
    page.select_option("select[name=publish_choice]", "scheduled")  # and no time: refused by the server
    with page.expect_navigation(timeout=60_000):
        page.click("input[type=submit][value=Save]")
    assert "Choose when a scheduled video comes out." in page.content()
    size = clip.stat().st_size / 1048576
    assert f"clip.mp4 ({size:.1f} MB) already uploaded: saving will not send it again." in page.inner_text("form")
    uploaded = list(sent)
    assert uploaded.count("PATCH") == 1
    page.fill("input[name=release_at]", "2031-01-01T20:00")
    with page.expect_navigation(timeout=120_000):
        page.click("input[type=submit][value=Save]")
    assert sent == uploaded  # nothing sent again
    video = only_video(app)
    assert video.title == "Scheduled Film" and video.publishing == "scheduled"
    assert (Path(app.config["MEDIA_ROOT"]) / video.source_path).read_bytes() == clip.read_bytes()


def test_a_renamed_text_file_is_refused_at_its_first_chunk_with_the_reason(live, browser_page, tmp_path):
    app, api, _page_url = live
    create_user(app, email="staff@example.com", staff=True)
    notes = tmp_path / "notes.mp4"
    notes.write_text("Meeting notes, not a film.\n" * 700_000)  # about 19 MB: three 8 MiB chunks
    page = browser_page
    patches = []
    page.on("request", lambda request: patches.append(request.url) if request.method == "PATCH" else None)
    open_the_create_form(page, api.replace("/api/", "/admin/"), "Not A Film", notes)
    page.click("input[type=submit][value=Save]")
    page.wait_for_function("document.getElementById('upload-status').textContent.includes('refused')", timeout=30_000)
    status = page.inner_text("#upload-status")
    assert status.startswith("The file was refused: ") and status.endswith(" Choose another file."), status
    assert "not a video" in status.lower(), status
    assert len(patches) == 1  # refused at the first chunk: the other two never went
    assert page.is_hidden("#upload-resume")
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Video)) == 0
