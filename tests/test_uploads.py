"""Resumable uploads (tus 1.0.0) at /admin/uploads/: the protocol through HTTP, a real tus client
(tuspy) end to end, and the admin form that turns a finished upload into a video."""

import base64
import hashlib
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.conftest import bucket_keys, create_user, make_app, running_app
from tests.helpers import PASSWORD, STAFF, admin_login, csrf_token, only_video
from videoflix.extensions import db
from videoflix.uploads import spool
from videoflix.uploads.models import Upload
from videoflix.videos.models import Status, Video

TUS = {"Tus-Resumable": "1.0.0"}
CHUNK = {**TUS, "Content-Type": "application/offset+octet-stream"}


@pytest.fixture
def staff(admin_client):
    return admin_client


def metadata(**values):
    return ",".join(f"{key} {base64.b64encode(value.encode()).decode()}" for key, value in values.items())


def create(client, length, filename="film.mp4", **headers):
    return client.post(
        "/admin/uploads/", headers={**TUS, "Upload-Length": str(length), "Upload-Metadata": metadata(filename=filename),
                                    **headers},
    )  # fmt: skip


def upload_path(response):
    location = response.headers["Location"]
    assert location.startswith("http://localhost/admin/uploads/")
    return location.removeprefix("http://localhost")


def patch(client, path, offset, body, **headers):
    return client.patch(path, data=body, headers={**CHUNK, "Upload-Offset": str(offset), **headers})


def offset(client, path):
    response = client.head(path, headers=TUS)
    assert response.status_code == 200, response.status_code
    return int(response.headers["Upload-Offset"])


def save_video(client, upload_id, title="Resumed"):
    """The create form as its script submits it once the upload is done: no file, its upload id."""
    data = {"csrf_token": csrf_token(client, "/admin/video/new/"), "title": title, "description": "",
            "category": "Drama", "upload_id": upload_id}  # fmt: skip
    return client.post("/admin/video/new/", data=data, content_type="multipart/form-data")


def test_the_server_says_what_it_speaks(staff, app):
    response = staff.options("/admin/uploads/")
    assert response.status_code == 204
    assert response.headers["Tus-Version"] == "1.0.0"
    assert response.headers["Tus-Extension"] == "creation,expiration,checksum,termination"
    assert response.headers["Tus-Max-Size"] == str(app.config["MAX_UPLOAD_BYTES"])
    assert response.headers["Tus-Checksum-Algorithm"] == "md5,sha1,sha256"


def test_an_interrupted_upload_resumes_where_it_stopped_and_becomes_a_video(staff, app, clips):
    data = clips["small"].read_bytes()
    created = create(staff, len(data))
    assert created.status_code == 201 and created.headers["Tus-Resumable"] == "1.0.0"
    assert "GMT" in created.headers["Upload-Expires"]
    path = upload_path(created)
    assert offset(staff, path) == 0

    first = patch(staff, path, 0, data[:10_000])
    assert first.status_code == 204 and first.headers["Upload-Offset"] == "10000"
    stale = patch(staff, path, 0, data[:10_000])  # a retry of a chunk that had arrived
    assert stale.status_code == 409 and stale.get_json() == {"detail": "The upload is at offset 10000."}
    # The connection drops: the client asks where to go on, from a new process as after a restart.
    restarted = make_app(app.config)
    restarted_client = restarted.test_client()
    assert admin_login(restarted_client).status_code == 302
    assert offset(restarted_client, path) == 10_000
    rest = patch(restarted_client, path, 10_000, data[10_000:])
    assert rest.status_code == 204 and rest.headers["Upload-Offset"] == str(len(data))
    upload_id = path.rsplit("/", 1)[-1]
    with app.app_context():
        assert spool.part_path(upload_id).read_bytes() == data
    response = save_video(staff, upload_id)
    assert response.status_code == 302
    video = only_video(app)
    assert video.status == Status.READY and video.renditions == ["480p"]
    with app.app_context():
        assert (Path(app.config["MEDIA_ROOT"]) / video.source_path).read_bytes() == data
        assert db.session.get(Upload, upload_id) is None  # the upload's bytes are the video's now
        assert not spool.part_path(upload_id).exists()
    assert staff.head(path, headers=TUS).status_code == 404


def test_sizes_are_checked_before_bytes_are_accepted(staff, app):
    limit = app.config["MAX_UPLOAD_BYTES"]
    too_big = create(staff, limit + 1)
    assert too_big.status_code == 413
    assert too_big.get_json() == {"detail": "The file is larger than the limit of 64 MB."}
    assert create(staff, -1).status_code == 400
    assert staff.post("/admin/uploads/", headers=TUS).status_code == 400  # no Upload-Length
    path = upload_path(create(staff, 100))
    past_the_end = patch(staff, path, 0, b"x" * 101)
    assert past_the_end.status_code == 413
    assert offset(staff, path) == 0  # the chunk was refused whole


def test_unfinished_uploads_are_capped_per_staff_member(staff, app):
    """A staff member (or a stolen session) cannot fill the scratch disk with uploads never finished."""
    app.config.update(MAX_OPEN_UPLOADS=2, MAX_PENDING_UPLOAD_MB=1)
    first, _second = upload_path(create(staff, 100)), upload_path(create(staff, 100))
    third = create(staff, 100)
    assert third.status_code == 403
    assert third.get_json() == {"detail": "You have 2 unfinished uploads (the limit is 2): finish or cancel one first."}
    assert staff.delete(first, headers=TUS).status_code == 204
    too_many_bytes = create(staff, 2**20)
    assert too_many_bytes.status_code == 403
    assert too_many_bytes.get_json() == {
        "detail": "Your unfinished uploads hold 0.0 MB; this one (1.0 MB) would go over the limit of 1 MB: "
        "finish or cancel one first."
    }
    assert create(staff, 100).status_code == 201
    create_user(app, email="other-staff@example.com", staff=True)
    other = app.test_client()
    assert admin_login(other, "other-staff@example.com", PASSWORD).status_code == 302
    assert create(other, 100).status_code == 201  # the cap is per person
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Upload)) == 3


def test_protocol_errors_are_named(staff, app):
    path = upload_path(create(staff, 100))
    no_version = staff.head(path)
    assert no_version.status_code == 412 and no_version.headers["Tus-Version"] == "1.0.0"
    wrong_type = staff.patch(path, data=b"x", headers={**TUS, "Upload-Offset": "0", "Content-Type": "text/plain"})
    assert wrong_type.status_code == 415
    assert create(staff, 10, **{"Upload-Metadata": "filename not-base64!"}).status_code == 400
    assert staff.head("/admin/uploads/" + "0" * 32, headers=TUS).status_code == 404
    assert staff.head("/admin/uploads/../../etc", headers=TUS).status_code == 404


def test_checksums_catch_a_corrupted_chunk(staff):
    first, second = b"\x00\x00\x00\x18", b"ftyp"  # an MP4's first box: the upload looks like a video
    path = upload_path(create(staff, 8))
    good = base64.b64encode(hashlib.sha1(first).digest()).decode()
    corrupted = patch(staff, path, 0, b"\x00\x00\x00\x19", **{"Upload-Checksum": f"sha1 {good}"})
    assert corrupted.status_code == 460
    assert corrupted.get_json() == {"detail": "The chunk does not match its Upload-Checksum."}
    assert offset(staff, path) == 0
    assert patch(staff, path, 0, first, **{"Upload-Checksum": f"sha1 {good}"}).status_code == 204
    sha256 = base64.b64encode(hashlib.sha256(second).digest()).decode()
    assert patch(staff, path, 4, second, **{"Upload-Checksum": f"sha256 {sha256}"}).status_code == 204
    assert offset(staff, path) == 8
    assert patch(staff, path, 8, b"", **{"Upload-Checksum": "crc32 AAAA"}).status_code == 400


def test_only_staff_may_upload_and_only_their_own(app, staff):
    anonymous = app.test_client()
    assert create(anonymous, 10).status_code == 403
    assert create(anonymous, 10).get_json() == {"detail": "Only signed-in staff may upload."}
    path = upload_path(create(staff, 10))
    assert anonymous.head(path, headers=TUS).status_code == 403
    assert patch(anonymous, path, 0, b"x").status_code == 403
    create_user(app, email="other-staff@example.com", staff=True)
    other = app.test_client()
    assert admin_login(other, "other-staff@example.com", PASSWORD).status_code == 302
    assert other.head(path, headers=TUS).status_code == 404  # not theirs
    cross_site = create(staff, 10, Origin="https://evil.example")
    assert cross_site.status_code == 403


def test_termination_and_expiry_remove_the_bytes(staff, app):
    path = upload_path(create(staff, 10))
    upload_id = path.rsplit("/", 1)[-1]
    assert patch(staff, path, 0, b"12345").status_code == 204
    assert staff.delete(path, headers=TUS).status_code == 204
    assert staff.head(path, headers=TUS).status_code == 404
    with app.app_context():
        assert not spool.part_path(upload_id).exists()

    path = upload_path(create(staff, 10))
    upload_id = path.rsplit("/", 1)[-1]
    with app.app_context():
        db.session.execute(sa.update(Upload).values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
        db.session.commit()
    gone = patch(staff, path, 0, b"12345")
    assert gone.status_code == 410 and gone.get_json() == {"detail": "The upload expired; start again."}
    assert staff.head(path, headers=TUS).status_code == 404  # removed with its bytes
    with app.app_context():
        assert not spool.part_path(upload_id).exists() and db.session.get(Upload, upload_id) is None

    abandoned, continued = (upload_path(create(staff, 10)).rsplit("/", 1)[-1] for _ in range(2))
    with app.app_context():
        later = datetime.now(UTC) + timedelta(hours=app.config["UPLOAD_EXPIRY_HOURS"], minutes=1)
        db.session.execute(sa.update(Upload).where(Upload.id == continued).values(expires_at=later))
        db.session.commit()
        assert spool.remove_expired(now=later - timedelta(seconds=30)) == 1  # the abandoned one only
        assert not spool.part_path(abandoned).exists() and spool.part_path(continued).exists()


def test_a_form_error_after_the_upload_names_the_file_and_saving_does_not_send_it_again(staff, app, clips):
    data = clips["small"].read_bytes()
    path = upload_path(create(staff, len(data), filename="clip.mp4"))
    assert patch(staff, path, 0, data).status_code == 204
    upload_id = path.rsplit("/", 1)[-1]
    page = save_video(staff, upload_id, title="")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "This field is required." in text
    assert f"clip.mp4 ({len(data) / 1048576:.1f} MB) already uploaded: saving will not send it again." in text
    assert f'value="{upload_id}"' in text  # the form keeps naming it: its script skips the upload
    # The file field loses its required mark there, so the browser lets the form go without a file.
    assert re.search(r'<input[^>]*name="video_file"[^>]*>', text).group(0).count("required") == 0
    assert save_video(staff, upload_id, title="Named now").status_code == 302
    assert only_video(app).title == "Named now"


def test_a_non_video_is_refused_at_its_first_chunk_with_the_reason(staff, app, clips):
    data = clips["text"].read_bytes() * 50  # a renamed text, many chunks long
    path = upload_path(create(staff, len(data), filename="notes.mp4"))
    refused = patch(staff, path, 0, data[:1024])
    assert refused.status_code == 415
    assert refused.get_json() == {
        "detail": "This file is not a video: its first bytes start none of MP4, MOV, MKV, WebM, AVI, MPEG, WMV or FLV."
    }
    assert staff.head(path, headers=TUS).status_code == 404  # gone, bytes and row: nothing more is taken
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Upload)) == 0


def test_a_finished_upload_that_is_not_a_decodable_video_is_refused_with_a_reason(staff, app):
    data = b"\x00\x00\x00\x18ftypisom" + bytes(range(256)) * 40  # an MP4's start, then nothing of a video
    path = upload_path(create(staff, len(data), filename="broken.mp4"))
    assert patch(staff, path, 0, data).status_code == 204
    page = save_video(staff, path.rsplit("/", 1)[-1])
    assert page.status_code == 200
    assert "The file is not a decodable video" in page.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Video)) == 0
    unfinished = upload_path(create(staff, 100))
    page = save_video(staff, unfinished.rsplit("/", 1)[-1])
    assert "The upload is not finished or has expired" in page.get_data(as_text=True)


def test_a_real_tus_client_uploads_a_file_end_to_end(app, staff, clips, serve_app):
    from tusclient import client as tus_client

    base = serve_app(app)
    staff_cookie = staff.get_cookie("session")
    uploader = tus_client.TusClient(f"{base}/admin/uploads/", headers={"Cookie": f"session={staff_cookie.value}"})
    with open(clips["long"], "rb") as stream:
        upload = uploader.uploader(file_stream=stream, chunk_size=64 * 1024, metadata={"filename": "long.mp4"},
                                   upload_checksum=True)  # fmt: skip
        upload.upload()
    upload_id = upload.url.rsplit("/", 1)[-1]
    with app.app_context():
        assert spool.part_path(upload_id).read_bytes() == clips["long"].read_bytes()
    assert save_video(staff, upload_id, title="Via tuspy").status_code == 302
    assert only_video(app).status == Status.READY


def test_a_resumable_upload_lands_in_the_bucket(app_config, bucket, seaweed, clips):
    with running_app({**app_config, **bucket}) as app:
        create_user(app, email=STAFF, staff=True)
        staff = app.test_client()
        admin_login(staff)
        data = clips["small"].read_bytes()
        path = upload_path(create(staff, len(data)))
        assert patch(staff, path, 0, data).status_code == 204
        assert save_video(staff, path.rsplit("/", 1)[-1]).status_code == 302
        video = only_video(app)
        assert video.status == Status.READY and video.source_path in bucket_keys(seaweed, bucket)
        incoming = Path(app.config["MEDIA_ROOT"]) / ".incoming"
        assert [p.name for p in incoming.iterdir()] == []
