"""What staff see beyond the forms: the video's status on its edit page, a poster picked from its own
frames, the audience (from watch progress reported through the API) and the storage it uses."""

import os
import re
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.conftest import FFMPEG, AuthActions, make_clip, spa_client
from tests.helpers import admin_upload, csrf_token, get_video, import_video, only_video, run_part, started
from videoflix.admin import file_size
from videoflix.extensions import db, utcnow
from videoflix.pipeline import chunked
from videoflix.storage import keys
from videoflix.videos.models import PartKind, Phase, Video, WatchProgress


@pytest.fixture
def staff(admin_client):
    return admin_client


def edit_page(staff, video_id):
    response = staff.get(f"/admin/video/edit/?id={video_id}")
    assert response.status_code == 200
    return response.get_data(as_text=True)


def files_under(root, *folders):
    return sum(path.stat().st_size for folder in folders for path in (Path(root) / folder).rglob("*") if path.is_file())


def test_the_edit_page_shows_status_phase_progress_and_the_last_error(app, staff, clips):
    assert admin_upload(staff, clips["small"]).status_code == 302
    video = only_video(app)
    page = edit_page(staff, video.id)
    assert re.search(r'id="video-status"><span class="badge badge-success">ready</span>', page)
    assert '<dd class="col-sm-10" id="video-error">none</dd>' in page
    with app.app_context():
        row = db.session.get(Video, video.id)
        row.phase, row.progress, row.error = Phase.OPTIMISING, 40, "The efficient pass failed.\nffmpeg: out of memory"
        db.session.commit()
    page = edit_page(staff, video.id)
    assert "playable, optimising 40%" in page and '<dd class="col-sm-10">optimising</dd>' in page
    assert '<dd class="col-sm-10">40%</dd>' in page
    assert "The efficient pass failed.<details><summary>ffmpeg output</summary><pre>ffmpeg: out of memory</pre>" in page


def test_the_video_file_field_is_marked_required_on_the_create_form(staff):
    page = staff.get("/admin/video/new/").get_data(as_text=True)
    field = re.search(r'<input[^>]*name="video_file"[^>]*>', page).group(0)
    assert "required" in field
    edit_field = re.search(r'<label[^>]*for="video_file"[^>]*>.*?</label>', page, re.S).group(0)
    assert "&#42;" in edit_field or "*" in edit_field


def ssim(first, second, second_at=None):
    """SSIM of two pictures (the second one's frame at `second_at` seconds when it is a video)."""
    seek = ["-ss", f"{second_at:.3f}"] if second_at is not None else []
    result = subprocess.run(
        [FFMPEG, "-hide_banner", "-i", str(first), *seek, "-i", str(second), "-lavfi",
         "[1:v]scale=640:360,setsar=1[b];[0:v]setsar=1[a];[a][b]ssim", "-frames:v", "1", "-f", "null", "-"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return float(re.search(r"All:([\d.]+)", result.stderr).group(1))


def test_staff_pick_the_poster_from_a_frame_and_viewers_see_it(app, staff, clips, tmp_path):
    assert import_video(app.test_cli_runner(), clips["long"], "Framed").exit_code == 0  # 13 s, 640x360
    video = only_video(app)
    assert video.has_storyboard and not video.poster_uploaded
    page = edit_page(staff, video.id)
    frames = re.findall(r'<button type="submit" name="at" value="([\d.]+)"', page)
    assert frames == ["0.0", "2.0", "4.0", "6.0", "8.0", "10.0", "12.0"]  # a thumbnail every 2 s
    sheet = re.search(r"url\((/admin/video/preview/\d+/storyboard/sprite-000\.jpg)\)", page).group(1)
    response = staff.get(sheet)
    assert response.status_code == 200 and response.mimetype == "image/jpeg"
    response.close()

    token = csrf_token(staff, f"/admin/video/edit/?id={video.id}")
    response = staff.post(f"/admin/video/poster/{video.id}/", data={"csrf_token": token, "at": "8.0"})
    assert response.status_code == 302 and response.headers["Location"].endswith(f"/admin/video/edit/?id={video.id}")
    assert "The poster is now the frame at 0:08." in staff.get(response.headers["Location"]).get_data(as_text=True)
    picked = get_video(app, video.id)
    assert picked.poster_uploaded and picked.poster_path != video.poster_path

    viewer = spa_client(app)
    AuthActions(app, viewer).signed_in()
    listed = viewer.get("/api/video/").get_json()  # the cached catalogue follows the new poster
    poster_url = listed[0]["thumbnail_url"]
    assert poster_url.endswith(Path(picked.poster_path).name)
    poster = tmp_path / "poster.jpg"
    poster.write_bytes(viewer.get(poster_url.removeprefix("http://localhost")).data)
    # That frame, not another: closer to the source at 8 s than at 2 s.
    at_eight, at_two = ssim(poster, clips["long"], 8.0), ssim(poster, clips["long"], 2.0)
    assert at_eight > 0.9 and at_eight > at_two + 0.05, (at_eight, at_two)


@pytest.mark.parametrize(
    ("at", "message"),
    [("abc", "Pick a moment within the video."), ("13.5", "Pick a moment within the video."),
     ("-1", "Pick a moment within the video."), ("nan", "Pick a moment within the video.")],
)  # fmt: skip
def test_a_frame_outside_the_video_is_refused_with_a_message(app, staff, clips, at, message):
    assert import_video(app.test_cli_runner(), clips["long"], "Framed").exit_code == 0
    video = only_video(app)
    token = csrf_token(staff, f"/admin/video/edit/?id={video.id}")
    response = staff.post(f"/admin/video/poster/{video.id}/", data={"csrf_token": token, "at": at})
    assert response.status_code == 302
    assert message in staff.get(response.headers["Location"]).get_data(as_text=True)
    assert get_video(app, video.id).poster_path == video.poster_path


def test_picking_a_frame_needs_the_form_token_and_an_existing_video(app, staff, clips):
    assert admin_upload(staff, clips["small"]).status_code == 302
    video = only_video(app)
    response = staff.post(f"/admin/video/poster/{video.id}/", data={"at": "1.0"})
    assert "The form expired; please try again." in staff.get(response.headers["Location"]).get_data(as_text=True)
    assert get_video(app, video.id).poster_path == video.poster_path
    token = csrf_token(staff, f"/admin/video/edit/?id={video.id}")
    response = staff.post("/admin/video/poster/999/", data={"csrf_token": token, "at": "1.0"})
    assert response.status_code == 302 and response.headers["Location"].endswith("/admin/video/")
    assert "Video 999 no longer exists." in staff.get("/admin/video/").get_data(as_text=True)
    anonymous = app.test_client().post(f"/admin/video/poster/{video.id}/", data={"at": "1.0"})
    assert anonymous.status_code == 302 and "/admin/login/" in anonymous.headers["Location"]


def viewers_report(app, video_id, positions):
    """Each position reported by its own viewer through the API."""
    for number, position in enumerate(positions):
        client = spa_client(app)
        AuthActions(app, client).signed_in(f"viewer{number}@example.com")
        response = client.put(f"/api/video/{video_id}/progress/", json={"position": position})
        assert response.status_code == 200


def test_audience_figures_agree_with_the_progress_viewers_reported(app, staff, clips):
    assert import_video(app.test_cli_runner(), clips["long"], "Watched").exit_code == 0
    assert admin_upload(staff, clips["small"], title="Unwatched").status_code == 302
    with app.app_context():
        watched = db.session.scalar(sa.select(Video.id).where(Video.title == "Watched"))
    viewers_report(app, watched, [1.0, 5.0, 13.0])  # the last one at the end: finished
    summary = "3 viewer(s), 33% finished, average position 0:06"
    listing = staff.get("/admin/video/").get_data(as_text=True)
    assert summary in listing and "no viewers yet" in listing
    assert summary in edit_page(staff, watched)
    home = staff.get("/admin/").get_data(as_text=True)
    row = f'<tr><td><a href="/admin/video/edit/?id={watched}">Watched</a></td><td>3</td></tr>'
    assert home.count(row) == 2  # watching now and this week

    with app.app_context():  # one viewer stopped 10 minutes ago, one 8 days ago
        rows = db.session.scalars(sa.select(WatchProgress).order_by(WatchProgress.position)).all()
        rows[0].updated_at = utcnow() - timedelta(minutes=10)
        rows[1].updated_at = utcnow() - timedelta(days=8)
        db.session.commit()
    home = staff.get("/admin/").get_data(as_text=True)
    now, week = home.split('id="most-watched"')
    assert f'<a href="/admin/video/edit/?id={watched}">Watched</a></td><td>1</td>' in now
    assert f'<a href="/admin/video/edit/?id={watched}">Watched</a></td><td>2</td>' in week


def test_storage_per_video_and_in_all_is_read_from_the_store(app, staff, clips):
    assert import_video(app.test_cli_runner(), clips["long"], "Stored").exit_code == 0
    video = only_video(app)
    root = Path(app.config["MEDIA_ROOT"])
    versions = files_under(root, keys.renditions(video.id))
    source, poster = (root / video.source_path).stat().st_size, (root / video.poster_path).stat().st_size
    version = root / video.hls_path
    storyboards = files_under(version, "storyboard") + (version / "storyboard.vtt").stat().st_size
    page = " ".join(edit_page(staff, video.id).split())
    assert (f"{file_size(versions + source + poster)}: renditions {file_size(versions - storyboards)}, "
            f"source {file_size(source)}, storyboards {file_size(storyboards)}") in page  # fmt: skip
    total = files_under(root, *keys.FOLDERS)
    home = staff.get("/admin/").get_data(as_text=True)
    assert f"{file_size(total)} in all" in home
    assert re.search(rf'\?id={video.id}">Stored</a></td>\s*<td>{re.escape(file_size(total))}</td>', home)

    leftover = root / keys.SOURCES / "leftover.mp4"  # no video's: counted, and said to be no one's
    leftover.write_bytes(os.urandom(300_000))
    assert f"{file_size(total)} in all" in staff.get("/admin/").get_data(as_text=True)  # cached a few minutes
    fresh = staff.get("/admin/?storage=fresh").get_data(as_text=True)
    assert f"{file_size(total + 300_000)} in all" in fresh
    assert f"no video's (leftovers, unfinished uploads)</td><td>{file_size(300_000)}</td>" in fresh


def test_a_frame_picked_while_the_film_encodes_stays_the_poster(app, staff, tmp_path):
    video_id = started(app, make_clip(tmp_path / "film.mp4", 320, 180, 25))
    run_part(app, video_id, PartKind.SOUND)
    run_part(app, video_id, PartKind.CHUNK, 0)  # only the first segment exists
    token = csrf_token(staff, f"/admin/video/edit/?id={video_id}")
    later = staff.post(f"/admin/video/poster/{video_id}/", data={"csrf_token": token, "at": "20.0"})
    text = staff.get(later.headers["Location"]).get_data(as_text=True)
    assert "That part of the video is not encoded yet: try again once it is." in text
    assert not get_video(app, video_id).poster_uploaded
    picked = staff.post(f"/admin/video/poster/{video_id}/", data={"csrf_token": token, "at": "3.0"})
    assert "The poster is now the frame at 0:03." in staff.get(picked.headers["Location"]).get_data(as_text=True)
    chosen = get_video(app, video_id).poster_path
    with app.app_context():  # the film's own poster part runs afterwards: the staff's choice stays
        assert chunked.run_part(video_id, "f" * 32, PartKind.POSTER, 0, chunked.make_poster) == chunked.DONE
    assert get_video(app, video_id).poster_path == chosen
    assert (Path(app.config["MEDIA_ROOT"]) / chosen).is_file()
