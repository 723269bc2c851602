"""Media in an S3-compatible bucket (a real SeaweedFS): the store itself, upload -> transcode ->
playback -> delete with web and worker sharing nothing but the bucket and the database, faults of
the store at each step, start-up and health reports, the sweep and the migration from disk."""

import json
import logging
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from http.cookiejar import CookieJar
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.conftest import (
    SPA_ORIGIN,
    bucket_keys,
    create_user,
    install_video,
    make_app,
    require_or_skip,
    running_app,
    spa_client,
)
from tests.helpers import (
    PASSWORD,
    STAFF,
    add_subtitle,
    admin_login,
    admin_upload,
    csrf_token,
    get_video,
    import_video,
    only_video,
)
from tests.servers import Nginx, free_port, nginx_binary, render_conf, wait_for
from videoflix.admin import file_size
from videoflix.extensions import db
from videoflix.media import chunks
from videoflix.pipeline import chunked, cleanup, steps, tasks
from videoflix.queue import huey
from videoflix.storage import media_store
from videoflix.storage.errors import StorageUnavailable
from videoflix.videos.models import PartKind, Phase, Status, TranscodePart, Video

pytestmark = pytest.mark.s3


def scratch_files(root):
    """Files under a machine's MEDIA_ROOT: with a bucket, nothing should stay there."""
    return sorted(str(p.relative_to(root)) for p in Path(root).rglob("*") if p.is_file())


@pytest.fixture
def s3_app(app_config, bucket):
    with running_app({**app_config, **bucket}) as app:
        yield app


def sign_in(app):
    create_user(app)
    client = spa_client(app)
    assert client.post("/api/login/", json={"email": "viewer@example.com", "password": PASSWORD}).status_code == 200
    return client


# --- the store ---


def test_the_store_keeps_reads_lists_and_removes_objects(s3_app, tmp_path, seaweed, bucket):
    local = tmp_path / "file.ts"
    local.write_bytes(b"segment bytes")
    folder = tmp_path / "version"
    (folder / "480p").mkdir(parents=True)
    (folder / "master.m3u8").write_text("#EXTM3U\n")
    (folder / "480p" / "000.ts").write_bytes(b"x" * 1000)
    with s3_app.app_context():
        store = media_store()
        store.put_file("hls/1/a/480p/000.ts", local)
        store.put_file("hls/10/a/480p/000.ts", local)
        store.put_tree(folder, "hls/1/b")
        assert store.exists("hls/1/a/480p/000.ts") and not store.exists("hls/1/a/480p/001.ts")
        with store.local_file("hls/1/a/480p/000.ts") as path:
            assert path.read_bytes() == b"segment bytes"
        assert not path.exists()  # the scratch copy goes afterwards
        listed = {stored.key: stored.size for stored in store.list("hls/1")}
        assert listed == {"hls/1/a/480p/000.ts": 13, "hls/1/b/master.m3u8": 8, "hls/1/b/480p/000.ts": 1000}
        found = store.get("hls/1/b/480p/000.ts")
        assert found["ContentType"] == "video/MP2T" and found["Body"].read() == b"x" * 1000
        assert store.get("hls/1/b/master.m3u8")["ContentType"] == "application/vnd.apple.mpegurl"
        store.delete_prefix("hls/1")
        assert bucket_keys(seaweed, bucket) == ["hls/10/a/480p/000.ts"]  # hls/1 is not a prefix of hls/10
        store.delete("hls/10/a/480p/000.ts")
        assert bucket_keys(seaweed, bucket) == []
        with pytest.raises(FileNotFoundError, match="missing from the media store"):
            with store.local_file("sources/gone.mp4"):
                pass


def test_objects_live_under_the_configured_prefix(app_config, bucket, seaweed, clips):
    with running_app({**app_config, **bucket, "S3_PREFIX": "/tenant-a/"}) as app:
        assert import_video(app.test_cli_runner(), clips["small"], "Prefixed").exit_code == 0
        assert only_video(app).status == Status.READY
    stored = bucket_keys(seaweed, bucket)
    assert stored and all(key.startswith("tenant-a/") for key in stored)


# --- upload -> transcode -> playback -> delete ---


def test_an_imported_video_plays_from_the_bucket_and_leaves_nothing_on_disk(s3_app, seaweed, bucket, clips):
    assert import_video(s3_app.test_cli_runner(), clips["long"], "Stored").exit_code == 0
    video = only_video(s3_app)
    assert video.status == Status.READY
    stored = bucket_keys(seaweed, bucket)
    assert video.source_path in stored and video.poster_path in stored
    assert f"{video.hls_path}/master.m3u8" in stored and f"{video.hls_path}/480p/001.ts" in stored
    assert scratch_files(s3_app.config["MEDIA_ROOT"]) == []

    client = sign_in(s3_app)
    master = client.get(f"/api/video/{video.id}/master.m3u8")
    assert master.status_code == 200 and master.mimetype == "application/vnd.apple.mpegurl"
    assert master.headers["Cache-Control"] == "private, no-cache"
    segment = client.get(f"/api/video/{video.id}/480p/001.ts/")
    expected = seaweed.client().get_object(Bucket=bucket["S3_BUCKET"], Key=f"{video.hls_path}/480p/001.ts")
    assert segment.status_code == 200 and segment.data == expected["Body"].read()
    assert segment.mimetype == "video/MP2T" and segment.headers["Cache-Control"] == "private, max-age=3600"
    ranged = client.get(f"/api/video/{video.id}/480p/001.ts/", headers={"Range": "bytes=10-19"})
    assert ranged.status_code == 206 and ranged.data == segment.data[10:20]
    assert ranged.headers["Content-Range"] == f"bytes 10-19/{len(segment.data)}"
    unsatisfiable = client.get(f"/api/video/{video.id}/480p/001.ts/", headers={"Range": "bytes=99999999-"})
    assert unsatisfiable.status_code == 416
    assert client.get(f"/api/video/{video.id}/480p/999.ts").status_code == 404

    poster = spa_client(s3_app).get(f"/media/thumbnails/{Path(video.poster_path).name}")
    assert poster.status_code == 200 and poster.mimetype == "image/jpeg" and poster.data[:3] == b"\xff\xd8\xff"
    assert poster.headers["Cache-Control"] == "public, max-age=86400"

    with s3_app.app_context():
        cleanup.delete_video_media(db.session.get(Video, video.id))
    assert bucket_keys(seaweed, bucket) == []


def test_a_film_still_encoding_makes_a_far_segment_on_request_in_the_bucket(s3_app, seaweed, bucket, clips):
    video_id, job_id = queued_video(s3_app, clips["long"])
    with s3_app.app_context():
        assert steps.start(video_id, job_id) == Status.READY
        assert chunked.run_part(video_id, job_id, PartKind.SOUND, 0, chunked.make_sound) == chunked.DONE
        version = db.session.get(Video, video_id).hls_path
    assert f"{version}/480p/index.m3u8" in bucket_keys(seaweed, bucket)
    assert f"{version}/480p/002.ts" not in bucket_keys(seaweed, bucket)
    client = sign_in(s3_app)
    segment = client.get(f"/api/video/{video_id}/480p/002.ts")  # the last chunk's: made for this request
    stored = seaweed.client().get_object(Bucket=bucket["S3_BUCKET"], Key=f"{version}/480p/002.ts")
    assert segment.status_code == 200 and segment.data == stored["Body"].read()
    assert get_video(s3_app, video_id).phase == Phase.ENCODING  # chunk 0 still waits in the queue
    assert client.get(f"/api/video/{video_id}/480p/000.ts").status_code == 200  # the last chunk: then the finish
    assert get_video(s3_app, video_id).phase == Phase.FAST
    assert f"{version}/{chunks.AUDIO_FOLDER}/000.ts" not in bucket_keys(seaweed, bucket)
    assert scratch_files(s3_app.config["MEDIA_ROOT"]) == []  # the machine's copy of the source went too


def test_a_seek_ahead_of_the_sound_takes_its_own_in_the_bucket_and_the_films_before_the_finish(
    s3_app, seaweed, bucket, clips
):
    video_id, job_id = queued_video(s3_app, clips["long"])
    with s3_app.app_context():
        assert steps.start(video_id, job_id) == Status.READY  # the sound is queued, not running
        version = db.session.get(Video, video_id).hls_path
    client = sign_in(s3_app)
    segment = client.get(f"/api/video/{video_id}/480p/002.ts")  # the last chunk's, with its own sound
    key = f"{version}/480p/002.ts"
    assert (
        segment.status_code == 200
        and segment.data == seaweed.client().get_object(Bucket=bucket["S3_BUCKET"], Key=key)["Body"].read()
    )
    with s3_app.app_context():
        assert db.session.scalars(sa.select(TranscodePart.number).where(TranscodePart.own_sound.is_(True))).all() == [1]
        tasks.transcode_sound(video_id, job_id)
        tasks.transcode_chunk(video_id, job_id, 0)  # the last part: chunk 1 is made again, then the finish
    assert get_video(s3_app, video_id).phase == Phase.FAST
    remade = seaweed.client().get_object(Bucket=bucket["S3_BUCKET"], Key=key)["Body"].read()
    assert remade != segment.data  # now with the film's sound
    assert f"{version}/{chunks.AUDIO_FOLDER}/000.ts" not in bucket_keys(seaweed, bucket)


# --- web and worker on separate machines: nothing shared but the bucket and the database ---


@pytest.fixture
def web_and_worker(app_config, bucket, tmp_path, serve_app):
    """A web app behind nginx (the shipped config, media from the bucket through X-Accel-Redirect and
    its cache) and a worker app, each with its own MEDIA_ROOT, one queue between them."""
    require_or_skip(nginx_binary(), "nginx", "REQUIRE_NGINX")
    shared = {**app_config, **bucket, "HUEY_IMMEDIATE": False}
    web_settings = {**shared, "MEDIA_ROOT": str(tmp_path / "web"), "MEDIA_ACCEL_REDIRECT": "/protected-s3",
                    "PROXY_COUNT": 1}  # fmt: skip
    with running_app(web_settings) as web:
        worker = make_app({**shared, "MEDIA_ROOT": str(tmp_path / "worker")})  # the queue's app from now on
        port = free_port()
        conf = render_conf(tmp_path / "nginx", port, serve_app(web).removeprefix("http://"), web.config["MEDIA_ROOT"],
                           s3_host=bucket["S3_ENDPOINT_URL"].removeprefix("http://"))  # fmt: skip
        with Nginx(conf, tmp_path / "nginx"):
            base = f"http://127.0.0.1:{port}"
            wait_for(f"{base}/api/health/")
            yield web, worker, base


def run_queued_jobs():
    """What a worker machine does: run every job waiting in the queue (its retries included)."""
    while (job := huey.dequeue()) is not None:
        huey.execute(job)


def fetch(opener, url, headers=None, origin=SPA_ORIGIN):
    request = urllib.request.Request(url, headers={"Origin": origin, **(headers or {})})
    try:
        with opener.open(request, timeout=10) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.headers, error.read()


def viewer_opener(base):
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))
    login = urllib.request.Request(
        f"{base}/api/login/",
        data=json.dumps({"email": "viewer@example.com", "password": PASSWORD}).encode(),
        headers={"Content-Type": "application/json", "Origin": SPA_ORIGIN},
    )
    opener.open(login, timeout=10).close()
    return opener


def test_upload_transcode_play_and_delete_across_machines(web_and_worker, seaweed, bucket, clips):
    web, worker, base = web_and_worker
    create_user(web, email=STAFF, staff=True)
    create_user(web)
    staff = web.test_client()
    assert admin_login(staff).status_code == 302
    assert admin_upload(staff, clips["small"], title="Across").status_code == 302
    assert only_video(web).status == Status.PENDING  # the web machine only queued it
    run_queued_jobs()
    video = only_video(web)
    assert video.status == Status.READY and video.renditions == ["480p"]
    assert scratch_files(web.config["MEDIA_ROOT"]) == [] and scratch_files(worker.config["MEDIA_ROOT"]) == []
    assert f"{video.hls_path}/480p/000.ts" in bucket_keys(seaweed, bucket)

    viewer, anonymous = viewer_opener(base), urllib.request.build_opener()
    key = f"{video.hls_path}/480p/000.ts"
    stored = seaweed.client().get_object(Bucket=bucket["S3_BUCKET"], Key=key)["Body"].read()
    status, headers, body = fetch(viewer, f"{base}/api/video/{video.id}/480p/000.ts")
    assert status == 200 and body == stored
    assert headers["Content-Type"] == "video/MP2T"
    assert headers["Access-Control-Allow-Origin"] == SPA_ORIGIN
    assert headers["Access-Control-Allow-Credentials"] == "true"
    assert headers["Cache-Control"] == "private, max-age=3600"
    assert "X-Accel-Redirect" not in headers and "x-amz-request-id" not in headers
    status, headers, body = fetch(viewer, f"{base}/api/video/{video.id}/480p/000.ts/", {"Range": "bytes=100-299"})
    assert status == 206 and body == stored[100:300]
    status, headers, _body = fetch(viewer, f"{base}/api/video/{video.id}/480p/000.ts", origin="https://evil.example")
    assert status == 200 and "Access-Control-Allow-Origin" not in headers  # the app's CORS decision holds

    status, headers, body = fetch(viewer, f"{base}/api/video/{video.id}/480p/index.m3u8")
    assert status == 200 and headers["Content-Type"] == "application/vnd.apple.mpegurl" and b"000.ts" in body
    assert headers["Cache-Control"] == "private, no-cache"

    status, _headers, body = fetch(anonymous, f"{base}/api/video/{video.id}/480p/000.ts")
    assert status == 401 and body == b'{"detail":"Authentication credentials were not provided."}\n'
    status, _headers, _body = fetch(anonymous, f"{base}/protected-s3/cors/{bucket['S3_BUCKET']}/{key}")
    assert status == 404  # internal: only reachable through the app's X-Accel-Redirect

    # A subtitle track added by staff: the worker republishes the master, which nginx never caches.
    assert b"SUBTITLES" not in fetch(viewer, f"{base}/api/video/{video.id}/master.m3u8")[2]
    srt = b"1\r\n00:00:00,500 --> 00:00:01,500\r\nHello\r\n"
    assert add_subtitle(staff, video.id, srt, language="en", label="English").status_code == 302
    run_queued_jobs()
    status, _headers, master = fetch(viewer, f"{base}/api/video/{video.id}/master.m3u8")
    assert status == 200 and b'TYPE=SUBTITLES,GROUP-ID="subs",LANGUAGE="en"' in master
    status, _headers, cues = fetch(viewer, f"{base}/api/video/{video.id}/subs/1/000.vtt")
    assert status == 200 and b"Hello" in cues and b"X-TIMESTAMP-MAP=MPEGTS:" in cues

    # A hot segment comes from nginx's cache: the bucket is not asked again.
    seaweed.client().delete_object(Bucket=bucket["S3_BUCKET"], Key=key)
    assert fetch(viewer, f"{base}/api/video/{video.id}/480p/000.ts")[:3:2] == (200, stored)

    status, headers, poster = fetch(anonymous, f"{base}/media/thumbnails/{Path(video.poster_path).name}")
    assert status == 200 and poster[:3] == b"\xff\xd8\xff" and headers["Content-Type"] == "image/jpeg"
    assert headers["Cache-Control"] == "public, max-age=86400"
    listing = fetch(viewer, f"{base}/api/video/")[2].decode()
    assert f"{base}/media/thumbnails/{Path(video.poster_path).name}" in listing

    token = csrf_token(staff, "/admin/video/")
    assert staff.post("/admin/video/delete/", data={"id": video.id, "csrf_token": token}).status_code == 302
    assert bucket_keys(seaweed, bucket) == []
    assert fetch(viewer, f"{base}/api/video/{video.id}/480p/000.ts")[0] == 404


# --- faults of the store ---


def unreachable(settings):
    """The same bucket settings, pointed at a port where nothing listens."""
    return {**settings, "S3_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}"}


def queued_video(app, clip):
    """A video whose source is in the bucket and whose transcode is queued but not run; its job id."""
    with app.app_context():
        source = f"sources/{clip.stem}.mp4"
        media_store().put_file(source, clip)
        video = Video(title="Queued", category="Drama", source_path=source, job_id="b" * 32)
        db.session.add(video)
        db.session.commit()
        return video.id, video.job_id


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (unreachable, "could not be reached to check"),
        (lambda s: {**s, "S3_SECRET_ACCESS_KEY": "wrong"}, "refused the credentials"),
        (lambda s: {**s, "S3_BUCKET": "no-such-bucket"}, "has no such bucket"),
    ],
)
def test_start_up_and_health_say_when_the_store_cannot_be_used(app_config, bucket, caplog, change, reason):
    with caplog.at_level(logging.ERROR, logger="videoflix.storage"):
        app = make_app({**app_config, **change(bucket)})
    assert any(reason in message and "Media storage unusable at start-up" in message for message in caplog.messages)
    response = app.test_client().get("/api/health/")
    assert response.status_code == 503
    assert response.get_json() == {"status": "unavailable", "database": "ok", "queue": "ok", "storage": "unavailable"}


def test_upload_while_the_store_is_unreachable_says_so_and_keeps_nothing(app_config, bucket, clips, seaweed):
    with running_app({**app_config, **unreachable(bucket)}) as app:
        create_user(app, email=STAFF, staff=True)
        staff = app.test_client()
        admin_login(staff)
        page = admin_upload(staff, clips["small"], title="Lost?")
        assert page.status_code == 200  # the form again, with the reason
        assert "could not be reached to store sources/" in page.get_data(as_text=True)
        with app.app_context():
            assert db.session.scalar(sa.select(sa.func.count()).select_from(Video)) == 0
        result = import_video(app.test_cli_runner(), clips["small"], "Lost too?")
        assert result.exit_code == 1 and "could not be reached to store sources/" in result.output
        assert scratch_files(app.config["MEDIA_ROOT"]) == []
        response = spa_client(app).get("/api/health/")
        assert response.status_code == 503 and response.get_json()["storage"] == "unavailable"
    assert bucket_keys(seaweed, bucket) == []


def test_a_worker_cut_off_from_the_store_retries_then_says_why_and_a_later_run_plays(s3_app, app_config, bucket, clips):
    from videoflix.pipeline.tasks import transcode_in_process as transcode

    video_id, job_id = queued_video(s3_app, clips["small"])
    cut_off = make_app({**app_config, **unreachable(bucket)})
    with cut_off.app_context():
        with pytest.raises(StorageUnavailable):
            transcode(video_id, job_id, retries_left=1)  # huey retries it
        assert transcode(video_id, job_id, retries_left=0) == Status.FAILED
        video = db.session.get(Video, video_id)
        assert video.status == Status.FAILED and video.hls_path is None
        assert video.error.startswith("The media store (bucket ")
        assert "could not be reached to fetch sources/small.mp4" in video.error
    assert scratch_files(cut_off.config["MEDIA_ROOT"]) == []
    with s3_app.app_context():  # the store is back: the retry from the admin works, nothing was lost
        assert transcode(video_id, job_id) == Status.READY


def test_a_publish_the_store_refuses_leaves_the_old_version_playing(s3_app, app_config, bucket, seaweed, clips):
    from videoflix.pipeline.tasks import transcode_in_process as transcode

    assert import_video(s3_app.test_cli_runner(), clips["small"], "Playing").exit_code == 0
    before = only_video(s3_app)
    kept = bucket_keys(seaweed, bucket)
    with s3_app.app_context():
        video = db.session.get(Video, before.id)
        video.job_id, video.poster_uploaded = "c" * 32, True  # a re-transcode; no poster to make
        db.session.commit()
    access_key, secret_key = seaweed.reader
    read_only = make_app({**app_config, **bucket, "S3_ACCESS_KEY_ID": access_key, "S3_SECRET_ACCESS_KEY": secret_key})
    with read_only.app_context():
        assert transcode(before.id, "c" * 32, retries_left=0) == Status.FAILED
    after = only_video(s3_app)
    assert after.hls_path == before.hls_path and "refused the credentials" in after.error
    assert f"while trying to store hls/{before.id}/{'c' * 32}/" in after.error
    assert bucket_keys(seaweed, bucket) == kept  # nothing of the refused version
    client = sign_in(s3_app)
    assert client.get(f"/api/video/{before.id}/480p/000.ts").status_code == 200


# --- what leaves the store, and when ---


def test_a_replaced_version_stays_for_the_grace_then_goes(app_config, bucket, seaweed, clips):
    with running_app({**app_config, **bucket, "RETIRED_VERSION_SECONDS": 60}) as app:
        runner = app.test_cli_runner()
        assert import_video(runner, clips["small"], "Twice").exit_code == 0
        first = only_video(app)
        assert runner.invoke(args=["videos", "retranscode", str(first.id)]).exit_code == 0
        second = only_video(app)
        assert second.hls_path != first.hls_path
        stored = bucket_keys(seaweed, bucket)
        assert f"{first.hls_path}/master.m3u8" in stored and f"{second.hls_path}/master.m3u8" in stored
        later = datetime.now(UTC).replace(tzinfo=None) + timedelta(seconds=61)  # huey keeps naive UTC
        for due in huey.read_schedule(later):
            huey.execute(due, timestamp=later)
        stored = bucket_keys(seaweed, bucket)
        assert f"{second.hls_path}/master.m3u8" in stored
        assert not any(key.startswith(f"{first.hls_path}/") for key in stored)


def test_the_sweep_removes_only_old_objects_that_no_video_references(s3_app, seaweed, bucket, clips, tmp_path):
    assert import_video(s3_app.test_cli_runner(), clips["small"], "Kept").exit_code == 0
    video = only_video(s3_app)
    kept = bucket_keys(seaweed, bucket)
    strays = ["sources/0123.mp4", f"hls/{video.id}/deadjob/480p/000.ts", "thumbnails/" + "ab" * 16 + ".jpg"]
    with s3_app.app_context():
        for key in strays:
            media_store().put_file(key, clips["small"])
        assert cleanup.sweep() == 0  # too young: an upload or a publish may be under way
        assert cleanup.sweep(now=datetime.now(UTC) + timedelta(hours=2)) == 3
    assert bucket_keys(seaweed, bucket) == kept
    result = s3_app.test_cli_runner().invoke(args=["media", "sweep"])
    assert result.exit_code == 0 and "Removed 0 objects" in result.output


# --- from the disk into the bucket ---


def test_migrate_to_s3_copies_every_video_and_runs_again_safely(app_config, bucket, seaweed, clips):
    with running_app(app_config) as local_app:  # the embedded default, with a ready video on disk
        assert import_video(local_app.test_cli_runner(), clips["small"], "Moved").exit_code == 0
        video = only_video(local_app)
        on_disk = scratch_files(local_app.config["MEDIA_ROOT"])
        s3_app = make_app({**app_config, **bucket})  # the same database and folder, now with a bucket
        runner = s3_app.test_cli_runner()
        result = runner.invoke(args=["media", "migrate-to-s3"])
        assert result.exit_code == 0, result.output
        assert f"{len(on_disk)} objects copied, 0 already there" in result.output
        assert bucket_keys(seaweed, bucket) == on_disk
        seaweed.client().delete_object(Bucket=bucket["S3_BUCKET"], Key=f"{video.hls_path}/480p/000.ts")
        result = runner.invoke(args=["media", "migrate-to-s3"])  # interrupted before: goes on where it stopped
        assert result.exit_code == 0 and f"1 objects copied, {len(on_disk) - 1} already there" in result.output
        client = sign_in(s3_app)
        segment = client.get(f"/api/video/{video.id}/480p/000.ts")
        local_segment = Path(local_app.config["MEDIA_ROOT"]) / video.hls_path / "480p" / "000.ts"
        assert segment.status_code == 200 and segment.data == local_segment.read_bytes()
        refused = local_app.test_cli_runner().invoke(args=["media", "migrate-to-s3"])
        assert refused.exit_code == 1 and "no bucket is configured" in refused.output


def test_the_admin_home_and_edit_page_read_storage_from_the_bucket_and_say_when_they_cannot(
    s3_app, app_config, bucket, clips, transcoded
):
    assert import_video(s3_app.test_cli_runner(), clips["small"], "Stored").exit_code == 0
    create_user(s3_app, email=STAFF, staff=True)
    staff = s3_app.test_client()
    admin_login(staff)
    with s3_app.app_context():  # what the bucket holds, listed here independently of the admin
        client, name = media_store().client, media_store().bucket
        stored = sum(item["Size"] for item in client.list_objects_v2(Bucket=name).get("Contents", ()))
    assert stored > 0
    assert f"{file_size(stored)} in all" in staff.get("/admin/?storage=fresh").get_data(as_text=True)
    with running_app({**app_config, **unreachable(bucket)}) as cut_off:
        create_user(cut_off, email=STAFF, staff=True)
        staff = cut_off.test_client()
        admin_login(staff)
        response = staff.get("/admin/?storage=fresh")
        assert response.status_code == 200  # the audience and the links still help
        page = response.get_data(as_text=True)
        assert 'id="storage-error">The store could not be read: The media store (bucket ' in page
        assert 'id="watching-now"' in page
        video = install_video(cut_off, transcoded("small"))  # its renditions, storyboard and poster in the bucket
        edit = staff.get(f"/admin/video/edit/?id={video.id}")
        assert edit.status_code == 200  # the form, status and audience, without the bucket's figures
        page = edit.get_data(as_text=True)
        assert 'id="storage-error">The store could not be read: The media store (bucket ' in page
        assert 'id="video-status"' in page and f'value="{video.title}"' in page
