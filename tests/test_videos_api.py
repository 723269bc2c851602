"""The Videos part of API.md, on videos transcoded by the real pipeline."""

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask_jwt_extended import create_access_token

from tests.conftest import create_user, install_video
from tests.helpers import import_video, only_video
from videoflix.extensions import db
from videoflix.pipeline.cleanup import delete_video_media
from videoflix.videos.models import Status, Video
from videoflix.videos.schemas import VideoSchema

NO_CREDENTIALS = {"detail": "Authentication credentials were not provided."}


@pytest.fixture
def hd_video(app, transcoded):
    """A ready 720p video (renditions 480p and 720p), transcoded once per run by the real pipeline."""
    install_video(app, transcoded("hd720", "City Lights", "Drama", "--description", "A tramp falls in love."))
    return only_video(app)


@pytest.fixture
def viewer(client, auth):
    auth.signed_in()
    return client


def _add_videos(app, count, status=Status.READY, category="Comedy"):
    """Rows only (no files); ready ones have published renditions, the others none yet."""
    published = status == Status.READY
    with app.app_context():
        for index in range(count):
            db.session.add(
                Video(
                    title=f"Film {index}",
                    description="generated",
                    category=category,
                    status=status,
                    poster_path=f"thumbnails/p{index}.jpg",
                    hls_path=f"hls/x{index}" if published else None,
                    renditions=["480p"] if published else [],
                )
            )
        db.session.commit()


# --- the list ---


def test_list_needs_authentication(client):
    response = client.get("/api/video/")
    assert response.status_code == 401
    assert response.get_json() == NO_CREDENTIALS


def test_list_with_a_forged_token_is_401(client):
    client.set_cookie("access_token", "eyJhbGciOiJIUzI1NiJ9.e30.forged")
    response = client.get("/api/video/")
    assert response.status_code == 401
    assert response.get_json() == {"detail": "Token is invalid or expired."}


def test_list_shows_ready_videos_with_absolute_public_thumbnails(app, hd_video, viewer):
    _add_videos(app, 1, status=Status.PROCESSING)
    response = viewer.get("/api/video/")
    assert response.status_code == 200
    assert response.content_type == "application/json"
    body = response.get_json()
    assert body == [
        {
            "id": hd_video.id,
            "created_at": hd_video.created_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "title": "City Lights",
            "description": "A tramp falls in love.",
            "thumbnail_url": f"http://localhost/media/thumbnails/{Path(hd_video.poster_path).name}",
            "category": "Drama",
        }
    ]
    anonymous = app.test_client().get(body[0]["thumbnail_url"].removeprefix("http://localhost"))
    assert anonymous.status_code == 200
    assert anonymous.content_type == "image/jpeg"


def test_the_list_is_exactly_what_the_documented_schema_dumps(app, viewer):
    """The catalogue writes its JSON by hand for speed; VideoSchema (the OpenAPI document's) decides."""
    _add_videos(app, 3)
    with app.app_context():
        db.session.add(Video(title="No poster yet", description="", category="Horror", status=Status.READY,
                             hls_path="hls/n", renditions=["480p"],
                             created_at=datetime(2026, 1, 2, 3, 4, 5, 987654, tzinfo=UTC)))  # fmt: skip
        db.session.commit()
    body = viewer.get("/api/video/").get_json()
    with app.test_request_context("/api/video/"):
        ready = db.session.scalars(
            sa.select(Video).where(Video.hls_path.is_not(None)).order_by(Video.created_at.desc(), Video.id.desc())
        ).all()
        assert body == VideoSchema(many=True).dump(ready)
    assert body[-1]["created_at"] == "2026-01-02T03:04:05Z" and body[-1]["thumbnail_url"] is None


def test_list_is_newest_first(app, viewer):
    _add_videos(app, 3)
    titles = [item["title"] for item in viewer.get("/api/video/").get_json()]
    assert titles == ["Film 2", "Film 1", "Film 0"]


def test_list_filters_by_category_and_search(app, viewer):
    _add_videos(app, 2, category="Comedy")
    with app.app_context():
        db.session.add(Video(title="Deep Space", description="stars", category="Sci-Fi", status=Status.READY,
                             poster_path="thumbnails/s.jpg", hls_path="hls/s", renditions=["480p"]))  # fmt: skip
        db.session.commit()
    assert [v["title"] for v in viewer.get("/api/video/?category=Sci-Fi").get_json()] == ["Deep Space"]
    assert [v["title"] for v in viewer.get("/api/video/?q=STARS").get_json()] == ["Deep Space"]
    assert [v["title"] for v in viewer.get("/api/video/?q=film 1").get_json()] == ["Film 1"]
    response = viewer.get("/api/video/?category=Western")
    assert response.status_code == 400
    assert list(response.get_json()) == ["category"]


def test_list_cache_is_invalidated_when_a_video_changes(app, viewer):
    _add_videos(app, 1)
    assert [v["title"] for v in viewer.get("/api/video/").get_json()] == ["Film 0"]
    with app.app_context():
        db.session.scalars(sa.select(Video)).one().title = "Renamed"
        db.session.commit()
    assert [v["title"] for v in viewer.get("/api/video/").get_json()] == ["Renamed"]
    _add_videos(app, 1)
    assert len(viewer.get("/api/video/").get_json()) == 2
    with app.app_context():
        db.session.execute(sa.delete(Video))
        db.session.commit()
        db.session.add(Video(title="Not ready", category="Drama", status=Status.PENDING))
        db.session.commit()
    assert viewer.get("/api/video/").get_json() == []


def test_list_costs_the_same_queries_for_1_and_200_videos(app, viewer):
    _add_videos(app, 1)
    one = _count_queries(app, viewer)
    _add_videos(app, 199)
    assert _count_queries(app, viewer) == one == 1


def _count_queries(app, client):
    """SQL statements of one catalogue request (after one that checked the session is live)."""
    assert client.get("/api/video/").status_code == 200
    statements = []

    def record(_conn, _cursor, statement, *_args):
        statements.append(statement)

    with app.app_context():
        engine = db.engine
    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        response = client.get("/api/video/?q=Film")  # searches skip the cache: the query itself is counted
        assert response.status_code == 200
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)
    return len(statements)


def test_video_being_transcoded_again_stays_listed_and_playable(app, hd_video, viewer):
    with app.app_context():
        video = db.session.get(Video, hd_video.id)
        video.status, video.job_id = Status.PROCESSING, "e" * 32
        db.session.commit()
    assert [item["id"] for item in viewer.get("/api/video/").get_json()] == [hd_video.id]
    assert viewer.get(f"/api/video/{hd_video.id}/480p/index.m3u8").status_code == 200
    assert viewer.get(f"/api/video/{hd_video.id}/480p/000.ts").status_code == 200


def test_playback_follows_a_new_published_version_at_once(app, hd_video, viewer):
    assert viewer.get(f"/api/video/{hd_video.id}/720p/000.ts").status_code == 200  # remembered lookup
    media = Path(app.config["MEDIA_ROOT"])
    new_path = f"hls/{hd_video.id}/republished"
    shutil.copytree(media / hd_video.hls_path / "480p", media / new_path / "480p")
    with app.app_context():  # what a publish does: a new folder, the pointer flip, the old folder gone
        video = db.session.get(Video, hd_video.id)
        video.hls_path, video.renditions = new_path, ["480p"]
        db.session.commit()
    shutil.rmtree(media / hd_video.hls_path)
    fallback = viewer.get(f"/api/video/{hd_video.id}/720p/index.m3u8")
    assert fallback.status_code == 200
    assert fallback.get_data() == (media / new_path / "480p" / "index.m3u8").read_bytes()
    with app.app_context():
        video = db.session.get(Video, hd_video.id)
        db.session.delete(video)
        db.session.commit()
        delete_video_media(video)
    assert viewer.get(f"/api/video/{hd_video.id}/480p/000.ts").status_code == 404


def test_empty_list_is_an_empty_array(viewer):
    response = viewer.get("/api/video/")
    assert response.status_code == 200
    assert response.get_json() == []


# --- detail ---


def test_detail_adds_duration_and_resolutions(hd_video, viewer):
    response = viewer.get(f"/api/video/{hd_video.id}/")
    assert response.status_code == 200
    body = response.get_json()
    assert body["resolutions"] == ["480p", "720p"]
    assert abs(body["duration"] - 2.0) < 0.05
    assert body["title"] == "City Lights" and body["category"] == "Drama"


def test_detail_of_unknown_or_unready_video_is_404(app, viewer):
    _add_videos(app, 1, status=Status.PROCESSING)
    for path in ("/api/video/999/", "/api/video/1/"):
        response = viewer.get(path)
        assert response.status_code == 404
        assert response.get_json() == {"detail": "Video not found."}


# --- playlists and segments ---


def test_media_playlist_has_relative_segment_uris(hd_video, viewer):
    response = viewer.get(f"/api/video/{hd_video.id}/480p/index.m3u8")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/vnd.apple.mpegurl"
    assert response.headers["Cache-Control"] == "private, no-cache"
    text = response.get_data(as_text=True)
    assert "#EXT-X-PLAYLIST-TYPE:VOD" in text and "\n000.ts\n" in text and "/" not in text.split("000.ts")[0][-3:]


def test_master_playlist_points_at_each_rendition(hd_video, viewer):
    response = viewer.get(f"/api/video/{hd_video.id}/master.m3u8")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/vnd.apple.mpegurl"
    text = response.get_data(as_text=True)
    assert "480p/index.m3u8" in text and "720p/index.m3u8" in text and "1080p" not in text


def test_1080p_request_for_a_720p_video_answers_with_720p(app, hd_video, viewer):
    asked = viewer.get(f"/api/video/{hd_video.id}/1080p/index.m3u8")
    best = viewer.get(f"/api/video/{hd_video.id}/720p/index.m3u8")
    assert asked.status_code == 200 and asked.get_data() == best.get_data()
    segment = viewer.get(f"/api/video/{hd_video.id}/1080p/000.ts")
    assert segment.get_data() == viewer.get(f"/api/video/{hd_video.id}/720p/000.ts").get_data()


@pytest.mark.parametrize("suffix", ["", "/"])
def test_segment_answers_directly_with_or_without_trailing_slash(hd_video, viewer, suffix):
    response = viewer.get(f"/api/video/{hd_video.id}/480p/000.ts{suffix}")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "video/MP2T"
    assert response.headers["Cache-Control"] == "private, max-age=3600"
    assert response.get_data()[:1] == b"\x47"  # MPEG-TS sync byte
    assert response.headers["ETag"] and response.headers["Last-Modified"]


def test_segment_range_and_revalidation(hd_video, viewer):
    url = f"/api/video/{hd_video.id}/480p/000.ts"
    full = viewer.get(url)
    partial = viewer.get(url, headers={"Range": "bytes=0-187"})
    assert partial.status_code == 206
    assert partial.headers["Content-Range"] == f"bytes 0-187/{len(full.get_data())}"
    assert partial.get_data() == full.get_data()[:188]
    again = viewer.get(url, headers={"If-None-Match": full.headers["ETag"]})
    assert again.status_code == 304
    since = viewer.get(url, headers={"If-Modified-Since": full.headers["Last-Modified"]})
    assert since.status_code == 304


@pytest.mark.parametrize(
    "path",
    [
        "/api/video/{id}/480p/999.ts",
        "/api/video/{id}/480p/index.m3u8x",
        "/api/video/{id}/480p/..%2F..%2Fsources",
        "/api/video/{id}/480p/%2e%2e",
        "/api/video/{id}/480p/00.ts",
        "/api/video/{id}/480p/%D9%A0%D9%A0%D9%A0.ts",  # Arabic-Indic digits, not 000.ts
        "/api/video/{id}/480p/000.ts%0A",
        "/api/video/{id}/480p/ffmpeg.log",
        "/api/video/{id}/..%2F480p/000.ts",
        "/api/video/{id}/2160p/000.ts",
        "/api/video/{id}/2160p/index.m3u8",
        "/api/video/{id}/%2Fetc%2Fpasswd/000.ts",
        "/api/video/999/480p/000.ts",
        "/api/video/999/480p/index.m3u8",
        "/api/video/999/master.m3u8",
    ],
)
def test_anything_but_an_existing_segment_is_a_json_404(hd_video, viewer, path):
    response = viewer.get(path.format(id=hd_video.id))
    assert response.status_code == 404
    assert response.is_json


def test_each_id_serves_only_its_own_renditions(app, hd_video, viewer, runner, clips):
    assert import_video(runner, clips["small"], "Other", "Comedy").exit_code == 0
    with app.app_context():
        other = db.session.scalars(sa.select(Video).where(Video.id != hd_video.id)).one()
    mine = viewer.get(f"/api/video/{hd_video.id}/480p/000.ts").get_data()
    theirs = viewer.get(f"/api/video/{other.id}/480p/000.ts").get_data()
    assert mine == (Path(app.config["MEDIA_ROOT"]) / hd_video.hls_path / "480p" / "000.ts").read_bytes()
    assert mine != theirs
    _add_videos(app, 1, status=Status.PENDING)
    pending_id = other.id + 1
    assert viewer.get(f"/api/video/{pending_id}/480p/000.ts").status_code == 404


MEDIA_PATHS = ["/api/video/{id}/480p/index.m3u8", "/api/video/{id}/480p/000.ts", "/api/video/{id}/master.m3u8"]


@pytest.mark.parametrize("path", [*MEDIA_PATHS, "/api/video/{id}/"])
def test_media_needs_authentication(hd_video, client, path):
    response = client.get(path.format(id=hd_video.id))
    assert response.status_code == 401
    assert response.get_json() == NO_CREDENTIALS


def test_segment_request_near_token_expiry_slides_the_session(app, hd_video, client):
    user_id = create_user(app)
    with app.app_context():
        soon_expired = create_access_token(
            str(user_id), expires_delta=timedelta(minutes=1), additional_claims={"ver": 0}
        )
        client.set_cookie("access_token", soon_expired)
    response = client.get(f"/api/video/{hd_video.id}/480p/000.ts")
    assert response.status_code == 200
    assert any(h.startswith("access_token=") for h in response.headers.getlist("Set-Cookie"))


def test_sources_and_renditions_are_not_public(app, hd_video, client):
    assert client.get(f"/media/{hd_video.source_path}").status_code == 404
    assert client.get(f"/media/{hd_video.hls_path}/480p/000.ts").status_code == 404
    assert client.get("/media/thumbnails/..%2Fsources").status_code == 404


def test_accel_redirect_hands_the_bytes_to_nginx(app, hd_video, viewer):
    app.config["MEDIA_ACCEL_REDIRECT"] = "/protected-media/"
    response = viewer.get(f"/api/video/{hd_video.id}/480p/000.ts/")
    assert response.status_code == 200
    assert response.headers["X-Accel-Redirect"] == f"/protected-media/{hd_video.hls_path}/480p/000.ts"
    assert response.headers["Content-Type"] == "video/MP2T"
    assert response.get_data() == b""
    assert viewer.get(f"/api/video/{hd_video.id}/480p/998.ts").status_code == 404


def test_the_list_goes_out_compressed_when_the_client_accepts_it(app, viewer):
    import gzip

    import brotli

    _add_videos(app, 500)
    plain = viewer.get("/api/video/")
    assert "Content-Encoding" not in plain.headers and "Accept-Encoding" in plain.headers["Vary"]
    gzipped = viewer.get("/api/video/", headers={"Accept-Encoding": "gzip, deflate"})
    assert gzipped.headers["Content-Encoding"] == "gzip" and "Accept-Encoding" in gzipped.headers["Vary"]
    assert gzip.decompress(gzipped.data) == plain.data
    assert len(gzipped.data) <= 0.2 * len(plain.data)
    both = viewer.get("/api/video/", headers={"Accept-Encoding": "gzip, deflate, br"})
    assert both.headers["Content-Encoding"] == "br" and brotli.decompress(both.data) == plain.data
    assert len(both.data) <= 0.2 * len(plain.data)
    refused = viewer.get("/api/video/", headers={"Accept-Encoding": "br;q=0, gzip;q=0"})
    assert "Content-Encoding" not in refused.headers and refused.data == plain.data
    assert viewer.get("/api/video/", headers={"Accept-Encoding": "br"}).data == both.data  # made once, kept
    searched = viewer.get("/api/video/?q=Film 1", headers={"Accept-Encoding": "gzip"})
    assert "Content-Encoding" not in searched.headers and searched.status_code == 200
