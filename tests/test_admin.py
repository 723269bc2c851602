"""The staff UI through the real Flask-Admin forms (multipart posts, CSRF tokens included)."""

import re
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.conftest import FFMPEG, PASSWORD, create_user, running_app
from tests.helpers import STAFF, admin_login, csrf_token, get_video, import_video, media_files, only_video
from tests.helpers import admin_upload as upload
from videoflix.auth.models import User
from videoflix.extensions import db
from videoflix.videos.models import Status, Video


@pytest.fixture
def staff(app, client):
    create_user(app, email=STAFF, staff=True)
    assert admin_login(client).status_code == 302
    return client


def test_anonymous_and_viewers_are_sent_to_the_staff_login(app, client):
    response = client.get("/admin/video/")
    assert response.status_code == 302 and response.headers["Location"].startswith("/admin/login/")
    create_user(app)  # an active viewer, not staff
    response = admin_login(client, email="viewer@example.com")
    assert response.status_code == 200
    assert "Invalid credentials, or not a staff account." in response.get_data(as_text=True)
    assert client.get("/admin/video/").status_code == 302


def test_login_form_needs_its_csrf_token(app, client):
    create_user(app, email=STAFF, staff=True)
    response = client.post("/admin/login/", data={"email": STAFF, "password": PASSWORD})
    assert response.status_code == 200
    assert client.get("/admin/video/").status_code == 302


def test_staff_login_is_rate_limited(app_config):
    with running_app({**app_config, "RATELIMIT_ENABLED": True, "RATELIMIT_AUTH": "2 per minute"}) as app:
        client = app.test_client()
        codes = [admin_login(client, password="wrong-password-1").status_code for _ in range(3)]
        assert codes == [200, 200, 429]


def test_staff_uploads_a_video_that_becomes_ready(app, staff, clips):
    response = upload(staff, clips["small"])
    assert response.status_code == 302, response.get_data(as_text=True)
    video = only_video(app)
    assert (video.title, video.category, video.status) == ("Uploaded", "Horror", Status.READY)
    assert video.source_path.startswith("sources/") and video.source_path.endswith(".mp4")
    assert (Path(app.config["MEDIA_ROOT"]) / video.source_path).read_bytes() == clips["small"].read_bytes()
    assert video.poster_path and not video.poster_uploaded
    assert not any(path.startswith(".incoming/") for path in media_files(app))
    listing = staff.get("/admin/video/").get_data(as_text=True)
    assert "Uploaded" in listing and "badge-success" in listing and "320×180" in listing
    assert f'<img src="http://localhost/media/thumbnails/{Path(video.poster_path).name}"' in listing


def test_the_edit_page_previews_the_video_and_weighs_its_renditions(app, staff, clips):
    upload(staff, clips["small"])
    video = only_video(app)
    page = staff.get(f"/admin/video/edit/?id={video.id}").get_data(as_text=True)
    assert f'data-src="/admin/video/preview/{video.id}/master.m3u8"' in page
    assert "vendor/hls.js-1.7.4/hls.light.min.js" in page and "vendor/tus-js-client-4.3.1/tus.min.js" in page
    segments = sorted((Path(app.config["MEDIA_ROOT"]) / video.hls_path / "480p").glob("*.ts"))
    size = sum(segment.stat().st_size for segment in segments)
    kbps = round(size * 8 / video.duration / 1000)
    assert f"<tr><td>480p</td><td>{len(segments)}</td><td>{size / 2**20:.1f} MB</td>" in page
    assert f"<td>{kbps}</td></tr>" in page
    master = staff.get(f"/admin/video/preview/{video.id}/master.m3u8")
    assert master.status_code == 200 and master.mimetype == "application/vnd.apple.mpegurl"
    segment = staff.get(f"/admin/video/preview/{video.id}/480p/000.ts")
    assert segment.status_code == 200 and segment.data == segments[0].read_bytes()
    assert staff.get(f"/admin/video/preview/{video.id}/480p/../../x.ts").status_code == 404
    anonymous = app.test_client().get(f"/admin/video/preview/{video.id}/480p/000.ts")
    assert anonymous.status_code == 302 and "/admin/login/" in anonymous.headers["Location"]
    assert app.test_client().get("/static/vendor/tus-js-client-4.3.1/tus.min.js").status_code == 200


def test_staff_poster_is_kept_instead_of_a_generated_one(app, staff, clips, tmp_path):
    poster = tmp_path / "poster.png"
    subprocess.run(
        [FFMPEG, "-v", "error", "-f", "lavfi", "-i", "color=red:s=64x36", "-frames:v", "1", str(poster)], check=True
    )
    assert upload(staff, clips["small"], poster=(open(poster, "rb"), "poster.png")).status_code == 302
    video = only_video(app)
    assert video.poster_uploaded and video.poster_path.endswith(".png")
    assert (Path(app.config["MEDIA_ROOT"]) / video.poster_path).read_bytes() == poster.read_bytes()


@pytest.mark.parametrize(
    ("clip", "message"),
    [
        ("text", "The file is not a decodable video"),
        ("empty", "The file is empty."),
        ("truncated", "The file is not a decodable video"),
    ],
)
def test_upload_that_is_not_a_video_is_refused_with_a_message(app, staff, clips, clip, message):
    response = upload(staff, clips[clip])
    assert response.status_code == 200
    assert message in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(Video.id))) == 0
    assert media_files(app) == []


def test_upload_with_wrong_extension_or_bad_poster_is_refused(app, staff, clips, tmp_path):
    notes = tmp_path / "film.txt"
    notes.write_bytes(clips["small"].read_bytes())
    response = upload(staff, notes)
    assert "Unsupported file type" in response.get_data(as_text=True)
    fake = tmp_path / "poster.jpg"
    fake.write_text("not an image")
    response = upload(staff, clips["small"], poster=(open(fake, "rb"), "poster.jpg"))
    assert "The poster is not a readable image" in response.get_data(as_text=True)
    assert media_files(app) == []


def test_upload_without_title_or_file_is_refused(app, staff, clips):
    response = upload(staff, clips["small"], title="")
    assert response.status_code == 200 and "This field is required." in response.get_data(as_text=True)
    data = {"csrf_token": csrf_token(staff, "/admin/video/new/"), "title": "No file", "category": "Drama"}
    response = staff.post("/admin/video/new/", data=data, content_type="multipart/form-data")
    assert "Choose a video file." in response.get_data(as_text=True)
    assert media_files(app) == []


def test_upload_over_the_size_limit_gets_a_clear_message(app, staff, clips):
    app.config["MAX_UPLOAD_BYTES"] = 1024
    response = upload(staff, clips["small"])
    assert response.status_code == 302
    page = staff.get(response.headers["Location"]).get_data(as_text=True)
    assert "The upload is larger than the limit of" in page
    assert media_files(app) == []


def test_upload_without_csrf_token_is_refused(app, staff, clips):
    data = {"title": "x", "category": "Drama", "video_file": (open(clips["small"], "rb"), "small.mp4")}
    response = staff.post("/admin/video/new/", data=data, content_type="multipart/form-data")
    assert response.status_code == 200
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(Video.id))) == 0


def test_delete_removes_upload_renditions_and_poster(app, staff, clips):
    upload(staff, clips["small"])
    video = only_video(app)
    assert media_files(app)
    token = csrf_token(staff, "/admin/video/")
    response = staff.post("/admin/video/delete/", data={"id": video.id, "csrf_token": token})
    assert response.status_code == 302
    assert get_video(app, video.id) is None
    assert media_files(app) == []


def test_retranscode_action_queues_the_video_again(app, staff, clips):
    upload(staff, clips["small"])
    video = only_video(app)
    token = csrf_token(staff, "/admin/video/")
    response = staff.post(
        "/admin/video/action/", data={"action": "retranscode", "rowid": [video.id], "csrf_token": token}
    )
    assert response.status_code == 302
    again = only_video(app)
    assert again.status == Status.READY and again.job_id != video.job_id and again.hls_path != video.hls_path


def test_queue_page_lists_failed_jobs_and_retries_them(app, staff, clips):
    with app.app_context():
        source = Path(app.config["MEDIA_ROOT"]) / "sources" / "broken.mp4"
        source.parent.mkdir(parents=True, exist_ok=True)
        source.write_bytes(clips["small"].read_bytes())
        broken = Video(title="Broken", category="Drama", status=Status.FAILED, source_path="sources/broken.mp4")
        broken.error, broken.job_id = "ffmpeg exited with status 1.", "d" * 32
        db.session.add(broken)
        db.session.commit()
    page = staff.get("/admin/queue/").get_data(as_text=True)
    assert "Failed (1)" in page and "Broken" in page and "ffmpeg exited with status 1." in page
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    video = only_video(app)
    assert staff.post(f"/admin/queue/retry/{video.id}/", data={}).status_code == 302
    assert only_video(app).status == Status.FAILED  # no token: nothing happened
    assert staff.post(f"/admin/queue/retry/{video.id}/", data={"csrf_token": token}).status_code == 302
    assert only_video(app).status == Status.READY


def test_users_can_be_searched_activated_and_made_staff(app, staff):
    create_user(app, email="sleepy@example.com", active=False)
    page = staff.get("/admin/user/?search=sleepy").get_data(as_text=True)
    assert "sleepy@example.com" in page and "password" not in page.lower().replace("password_", "")
    with app.app_context():
        user_id = db.session.scalar(sa.select(User.id).where(User.email == "sleepy@example.com"))
    token = csrf_token(staff, "/admin/user/")
    staff.post("/admin/user/action/", data={"action": "activate", "rowid": [user_id], "csrf_token": token})
    with app.app_context():
        assert db.session.get(User, user_id).is_active is True
    edit = staff.get(f"/admin/user/edit/?id={user_id}").get_data(as_text=True)
    assert "password_hash" not in edit and "scrypt" not in edit


def test_staff_can_sign_out(staff):
    token = csrf_token(staff, "/admin/")
    assert staff.post("/admin/logout/", data={"csrf_token": token}).status_code == 302
    assert staff.get("/admin/video/").status_code == 302


# --- roles: staff manage viewers, a superuser manages staff ---


def _signed_in(app, email, superuser=False):
    create_user(app, email=email, staff=True, superuser=superuser)
    client = app.test_client()
    assert admin_login(client, email=email).status_code == 302
    return client


def _user(app, user_id):
    with app.app_context():
        user = db.session.get(User, user_id)
        return user.is_active, user.is_staff


def test_staff_manage_viewers_but_cannot_touch_staff_or_grant_the_role(app, admin_client):
    viewer_id = create_user(app, email="viewer@example.com")
    colleague_id = create_user(app, email="colleague@example.com", staff=True)
    listing = admin_client.get("/admin/user/").get_data(as_text=True)
    assert "viewer@example.com" in listing and "colleague@example.com" not in listing

    edit = admin_client.get(f"/admin/user/edit/?id={colleague_id}")
    assert edit.status_code == 302  # Flask-Admin's "Record does not exist."
    viewer_form = admin_client.get(f"/admin/user/edit/?id={viewer_id}").get_data(as_text=True)
    assert 'name="is_active"' in viewer_form and 'name="is_staff"' not in viewer_form
    url = f"/admin/user/edit/?id={viewer_id}"
    admin_client.post(url, data={"csrf_token": csrf_token(admin_client, url), "is_active": "y", "is_staff": "y"})
    assert _user(app, viewer_id) == (True, False)  # the role field is not theirs to send

    data = {
        "action": "deactivate",
        "rowid": [colleague_id, viewer_id],
        "csrf_token": csrf_token(admin_client, "/admin/user/"),
    }
    page = admin_client.post("/admin/user/action/", data=data, follow_redirects=True).get_data(as_text=True)
    assert "Deactivated 1 user(s)." in page and "1 account(s) left unchanged" in page
    assert _user(app, colleague_id) == (True, True) and _user(app, viewer_id) == (False, False)
    delete = {"id": colleague_id, "csrf_token": csrf_token(admin_client, "/admin/user/")}
    admin_client.post("/admin/user/delete/", data=delete)
    assert _user(app, colleague_id) == (True, True)


def test_a_superuser_grants_and_removes_the_staff_role_but_superusers_are_managed_from_the_cli(app):
    boss = _signed_in(app, "boss@example.com", superuser=True)
    viewer_id = create_user(app, email="viewer@example.com")
    other_boss_id = create_user(app, email="other-boss@example.com", staff=True, superuser=True)
    assert "other-boss@example.com" in boss.get("/admin/user/").get_data(as_text=True)
    url = f"/admin/user/edit/?id={viewer_id}"
    assert 'name="is_staff"' in boss.get(url).get_data(as_text=True)
    boss.post(url, data={"csrf_token": csrf_token(boss, url), "is_active": "y", "is_staff": "y"})
    assert _user(app, viewer_id) == (True, True)
    url = f"/admin/user/edit/?id={other_boss_id}"
    page = boss.post(url, data={"csrf_token": csrf_token(boss, url), "is_active": "y"}, follow_redirects=True)
    assert "Superuser accounts are managed with" in page.get_data(as_text=True)
    assert _user(app, other_boss_id) == (True, True)


def test_create_admin_makes_a_superuser_on_request(app, runner):
    result = runner.invoke(args=["create-admin", "--email", "root@example.com", "--password", PASSWORD, "--superuser"])
    assert result.exit_code == 0 and "Created superuser root@example.com." in result.output
    with app.app_context():
        boss = db.session.scalar(sa.select(User).where(User.email == "root@example.com"))
        assert (boss.is_staff, boss.is_superuser, boss.is_active) == (True, True, True)


def test_create_admin_command(app, runner):
    result = runner.invoke(args=["create-admin", "--email", "Boss@Example.com", "--password", PASSWORD])
    assert result.exit_code == 0 and "Created staff user boss@example.com." in result.output
    with app.app_context():
        boss = db.session.scalar(sa.select(User).where(User.email == "boss@example.com"))
        assert boss.is_staff and boss.is_active and boss.check_password(PASSWORD)
    again = runner.invoke(args=["create-admin", "--email", "boss@example.com", "--password", PASSWORD])
    assert again.exit_code == 1 and "already exists" in again.output
    weak = runner.invoke(args=["create-admin", "--email", "new@example.com", "--password", "123"])
    assert weak.exit_code == 1 and "too short" in weak.output


def test_create_admin_prompts_for_what_is_missing(app, runner):
    result = runner.invoke(args=["create-admin"], input=f"prompted@example.com\n{PASSWORD}\n{PASSWORD}\n")
    assert result.exit_code == 0, result.output
    with app.app_context():
        assert db.session.scalar(sa.select(User.is_staff).where(User.email == "prompted@example.com"))


def test_staff_read_titles_one_date_format_in_their_zone_and_whose_account_they_edit(app, staff, clips):
    app.config["STAFF_TIME_ZONE"] = "Europe/Berlin"
    assert import_video(app.test_cli_runner(), clips["small"], "Zone Film").exit_code == 0
    video = only_video(app)
    with app.app_context():
        stored = db.session.get(Video, video.id)
        stored.created_at = datetime(2026, 12, 7, 13, 51, 30, tzinfo=UTC)
        db.session.commit()
    listing = staff.get("/admin/video/").get_data(as_text=True)
    assert "2026-12-07 14:51 CET" in listing and "13:51" not in listing
    subtitle_form = staff.get("/admin/subtitle/new/").get_data(as_text=True)
    assert "Zone Film" in subtitle_form and "&lt;Video" not in subtitle_form
    viewer_id = create_user(app, email="someone@example.com")
    assert "Account someone@example.com" in staff.get(f"/admin/user/edit/?id={viewer_id}").get_data(as_text=True)
    login_page = app.test_client().get("/admin/login/").get_data(as_text=True)
    assert "<title>Staff sign-in - Videoflix</title>" in login_page.replace("\n", "")
