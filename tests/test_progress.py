"""Watch progress and "continue watching" through the public API."""

import time

import pytest
import sqlalchemy as sa

from tests.conftest import AuthActions, running_app, spa_client
from videoflix.auth.models import User
from videoflix.extensions import db
from videoflix.videos.models import Status, Video, WatchProgress


def add_video(app, title, duration=600.0, ready=True):
    with app.app_context():
        video = Video(title=title, description="", category="Drama", status=Status.READY if ready else Status.PENDING,
                      poster_path="thumbnails/" + "ab" * 16 + ".jpg", hls_path=f"hls/{title}" if ready else None,
                      renditions=["480p"] if ready else [], duration=duration)  # fmt: skip
        db.session.add(video)
        db.session.commit()
        return video.id


@pytest.fixture
def viewer(client, auth):
    auth.signed_in()
    return client


def report(client, video_id, body):
    return client.put(f"/api/video/{video_id}/progress/", json=body)


def test_progress_needs_a_signed_in_viewer(app, client):
    video_id = add_video(app, "Film")
    response = report(client, video_id, {"position": 10})
    assert response.status_code == 401
    assert response.get_json() == {"detail": "Authentication credentials were not provided."}
    assert client.get("/api/video/continue/").status_code == 401


def test_position_is_recorded_shown_in_the_detail_and_clamped(app, viewer):
    video_id = add_video(app, "Film")
    before = viewer.get(f"/api/video/{video_id}/").get_json()
    assert (before["position"], before["finished"]) == (0.0, False)
    response = report(viewer, video_id, {"position": 12.5})
    assert response.status_code == 200 and response.get_json() == {"position": 12.5, "finished": False}
    assert report(viewer, video_id, {"position": 42}).get_json() == {"position": 42.0, "finished": False}
    detail = viewer.get(f"/api/video/{video_id}/").get_json()
    assert (detail["position"], detail["finished"]) == (42.0, False)
    assert detail["title"] == "Film" and detail["resolutions"] == ["480p"]  # the contract's fields stay
    assert report(viewer, video_id, {"position": 9999}).get_json() == {"position": 600.0, "finished": True}
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(WatchProgress)) == 1  # upserted


def test_the_end_of_a_video_counts_as_finished(app, viewer):
    film = add_video(app, "Film", duration=600.0)  # the last 30 s (3% would be 18 s)
    assert report(viewer, film, {"position": 569}).get_json()["finished"] is False
    assert report(viewer, film, {"position": 571}).get_json()["finished"] is True
    epic = add_video(app, "Epic", duration=7200.0)  # the last 3%: 216 s of credits
    assert report(viewer, epic, {"position": 6983}).get_json()["finished"] is False
    assert report(viewer, epic, {"position": 6985}).get_json()["finished"] is True
    clip = add_video(app, "Clip", duration=60.0)  # never more than a tenth
    assert report(viewer, clip, {"position": 53}).get_json()["finished"] is False
    assert report(viewer, clip, {"position": 55}).get_json()["finished"] is True


@pytest.mark.parametrize(
    "body",
    [
        {"position": -1},
        {"position": "12"},
        {"position": True},
        {"position": None},
        {},
        {"position": 1e12},
    ],
)
def test_bad_positions_are_refused(app, viewer, body):
    video_id = add_video(app, "Film")
    response = report(viewer, video_id, body)
    assert response.status_code == 400
    assert list(response.get_json()) == ["position"]


def test_not_a_number_is_refused(app, viewer):
    video_id = add_video(app, "Film")
    response = viewer.put(f"/api/video/{video_id}/progress/", data='{"position": NaN}',
                          content_type="application/json")  # fmt: skip
    assert response.status_code == 400


def test_progress_of_unknown_or_unready_videos_is_404(app, viewer):
    pending = add_video(app, "Pending", ready=False)
    for video_id in (pending, 999):
        response = report(viewer, video_id, {"position": 1})
        assert response.status_code == 404 and response.get_json() == {"detail": "Video not found."}


def test_continue_watching_lists_started_unfinished_videos_newest_first(app, viewer, auth):
    first, second, done, untouched = (add_video(app, title) for title in ("First", "Second", "Done", "Untouched"))
    report(viewer, first, {"position": 100})
    report(viewer, done, {"position": 600})
    time.sleep(0.01)
    report(viewer, second, {"position": 50})
    report(viewer, untouched, {"position": 0})
    listing = viewer.get("/api/video/continue/")
    assert listing.status_code == 200
    body = listing.get_json()
    assert [(item["title"], item["position"]) for item in body] == [("Second", 50.0), ("First", 100.0)]
    assert set(body[0]) == {"id", "created_at", "title", "description", "thumbnail_url", "category", "position"}
    time.sleep(0.01)
    report(viewer, first, {"position": 120})  # watching again moves it to the front
    assert [item["title"] for item in viewer.get("/api/video/continue/").get_json()] == ["First", "Second"]

    other = spa_client(app)
    AuthActions(app, other).signed_in("other@example.com")
    assert other.get("/api/video/continue/").get_json() == []  # each viewer sees their own
    assert other.get(f"/api/video/{first}/").get_json()["position"] == 0.0


def test_deleting_a_video_or_a_user_removes_their_progress(app, viewer, auth):
    kept, removed = add_video(app, "Kept"), add_video(app, "Removed")
    report(viewer, kept, {"position": 10})
    report(viewer, removed, {"position": 10})
    with app.app_context():
        db.session.delete(db.session.get(Video, removed))
        db.session.commit()
        assert db.session.scalars(sa.select(WatchProgress.video_id)).all() == [kept]
        db.session.delete(db.session.scalar(sa.select(User).where(User.email == "viewer@example.com")))
        db.session.commit()
        assert db.session.scalar(sa.select(sa.func.count()).select_from(WatchProgress)) == 0


def test_progress_is_rate_limited_per_viewer(app_config):
    with running_app({**app_config, "RATELIMIT_ENABLED": True, "RATELIMIT_PROGRESS": "3 per minute"}) as app:
        video_id = add_video(app, "Film")
        first, second = spa_client(app), spa_client(app)
        AuthActions(app, first).signed_in("first@example.com")
        AuthActions(app, second).signed_in("second@example.com")
        assert [report(first, video_id, {"position": 1}).status_code for _ in range(4)] == [200, 200, 200, 429]
        assert report(second, video_id, {"position": 1}).status_code == 200  # per viewer, not per address
