"""Staff decide when viewers see a video: a draft is seen only in the admin, a scheduled video
appears at its time (the cached catalogue follows without a restart), publish and unpublish act
at once. Everything a viewer can reach is checked: list, detail, playlists, segments, continue."""

import time
from datetime import UTC, datetime, timedelta

import pytest

from tests.conftest import install_video
from tests.helpers import csrf_token, get_video, import_video, only_video
from videoflix.extensions import db
from videoflix.videos.models import Status, Video

VIEWER_PATHS = ["/api/video/{id}/", "/api/video/{id}/master.m3u8", "/api/video/{id}/480p/index.m3u8",
                "/api/video/{id}/480p/000.ts"]  # fmt: skip


def set_publish_at(app, video_id, publish_at):
    with app.app_context():
        db.session.get(Video, video_id).publish_at = publish_at
        db.session.commit()


def listed_ids(client):
    response = client.get("/api/video/")
    assert response.status_code == 200
    return [item["id"] for item in response.get_json()]


def viewer_statuses(client, video_id):
    return [client.get(path.format(id=video_id)).status_code for path in VIEWER_PATHS]


@pytest.fixture
def video(app, transcoded):
    return install_video(app, transcoded("small", "Premiere", "Drama"))


def test_a_draft_is_seen_only_in_the_admin_preview(app, video, client, auth, admin_client):
    auth.signed_in()
    assert client.put(f"/api/video/{video.id}/progress/", json={"position": 0.5}).status_code == 200
    assert [item["id"] for item in client.get("/api/video/continue/").get_json()] == [video.id]

    set_publish_at(app, video.id, None)
    assert get_video(app, video.id).publishing == "draft"
    assert listed_ids(client) == []
    assert viewer_statuses(client, video.id) == [404, 404, 404, 404]
    assert client.get("/api/video/continue/").get_json() == []
    assert client.put(f"/api/video/{video.id}/progress/", json={"position": 1}).status_code == 404
    for path in ("master.m3u8", "480p/index.m3u8", "480p/000.ts"):
        assert admin_client.get(f"/admin/video/preview/{video.id}/{path}").status_code == 200


def test_a_scheduled_video_appears_at_its_time_without_a_restart(app, video, client, auth):
    auth.signed_in()
    assert listed_ids(client) == [video.id]  # the catalogue is cached from here on
    release = datetime.now(UTC) + timedelta(seconds=1.5)
    set_publish_at(app, video.id, release)
    assert get_video(app, video.id).publishing == "scheduled"
    assert listed_ids(client) == [] and viewer_statuses(client, video.id) == [404, 404, 404, 404]
    time.sleep(max(0.0, (release - datetime.now(UTC)).total_seconds()) + 0.1)
    assert listed_ids(client) == [video.id]  # nothing was written meanwhile: the cache followed the clock
    assert viewer_statuses(client, video.id) == [200, 200, 200, 200]


def test_publish_and_unpublish_act_on_the_catalogue_at_once(app, video, client, auth, admin_client):
    auth.signed_in()
    assert listed_ids(client) == [video.id]

    def act(action):
        data = {"action": action, "rowid": [video.id], "csrf_token": csrf_token(admin_client, "/admin/video/")}
        assert admin_client.post("/admin/video/action/", data=data).status_code == 302

    act("unpublish")
    assert listed_ids(client) == [] and get_video(app, video.id).publishing == "draft"
    act("publish")
    assert listed_ids(client) == [video.id] and get_video(app, video.id).publishing == "published"
    assert viewer_statuses(client, video.id) == [200, 200, 200, 200]


def test_the_edit_form_schedules_and_says_when_a_time_is_missing(app, video, client, auth, admin_client):
    auth.signed_in()
    url = f"/admin/video/edit/?id={video.id}"
    form = {"csrf_token": csrf_token(admin_client, url), "title": "Premiere", "description": "", "category": "Drama"}
    missing = admin_client.post(url, data={**form, "publish_choice": "scheduled", "release_at": ""})
    assert "Choose when a scheduled video comes out." in missing.get_data(as_text=True)
    later = (datetime.now(UTC) + timedelta(days=2)).replace(second=0, microsecond=0)
    data = {**form, "csrf_token": csrf_token(admin_client, url), "publish_choice": "scheduled",
            "release_at": later.strftime("%Y-%m-%dT%H:%M")}  # fmt: skip
    assert admin_client.post(url, data=data).status_code == 302
    stored = get_video(app, video.id)
    assert stored.publishing == "scheduled" and stored.publish_at.replace(tzinfo=UTC) == later
    assert f"scheduled {later:%Y-%m-%d %H:%M} UTC" in admin_client.get("/admin/video/").get_data(as_text=True)
    assert listed_ids(client) == []


def test_import_can_keep_a_video_back(app, runner, clips, client, auth):
    auth.signed_in()
    assert import_video(runner, clips["small"], "Kept", "Drama", "--draft").exit_code == 0
    video = only_video(app)
    assert video.status == Status.READY and video.publishing == "draft" and listed_ids(client) == []
    both = import_video(runner, clips["small"], "Both", "Drama", "--draft", "--publish-at", "2030-01-01T18:00")
    assert both.exit_code == 1 and "choose --draft or --publish-at, not both." in both.output
    later = import_video(runner, clips["small"], "Later", "Drama", "--publish-at", "2030-01-01T18:00")
    assert later.exit_code == 0
    with app.app_context():
        scheduled = db.session.scalar(db.select(Video).where(Video.title == "Later"))
        assert scheduled.publish_at.replace(tzinfo=UTC) == datetime(2030, 1, 1, 18, tzinfo=UTC)
    assert listed_ids(client) == []


def test_staff_upload_a_draft_from_the_admin_form(app, admin_client, clips, client, auth):
    from tests.helpers import admin_upload

    assert admin_upload(admin_client, clips["small"], title="Unreleased", publish_choice="draft").status_code == 302
    video = only_video(app)
    assert video.status == Status.READY and video.publishing == "draft"
    auth.signed_in()
    assert listed_ids(client) == []
    assert "draft" in admin_client.get("/admin/video/").get_data(as_text=True)
