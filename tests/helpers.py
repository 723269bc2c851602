"""Helpers shared by the tests that need transcoded videos."""

import re
import threading
import time
from pathlib import Path

import av
import m3u8

from videoflix.extensions import db
from videoflix.pipeline import chunked, steps
from videoflix.storage import keys
from videoflix.videos.models import PartKind, Status, Video

STAFF = "staff@example.com"
PASSWORD = "correct-Horse-7-battery"


def csrf_token(client, url):
    """The CSRF token of the admin form at `url`."""
    page = client.get(url)
    assert page.status_code == 200, page.status_code
    return re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page.get_data(as_text=True)).group(1)


def admin_login(client, email=STAFF, password=PASSWORD):
    token = csrf_token(client, "/admin/login/")
    return client.post("/admin/login/", data={"csrf_token": token, "email": email, "password": password})


def admin_upload(client, clip, poster=None, title="Uploaded", **extra):
    """Post the admin's new-video form (multipart, with its CSRF token) as a signed-in staff member."""
    data = {
        "csrf_token": csrf_token(client, "/admin/video/new/"),
        "title": title,
        "description": "From the admin",
        "category": "Horror",
        "video_file": (open(clip, "rb"), clip.name),
        **extra,
    }
    if poster is not None:
        data["poster_file"] = poster
    return client.post("/admin/video/new/", data=data, content_type="multipart/form-data")


def add_subtitle(staff, video_id, raw, language="fr", label="Français", default=True):
    """Post the admin's new-subtitle form with a subtitle file's bytes."""
    import io

    data = {"csrf_token": csrf_token(staff, "/admin/subtitle/new/"), "video": str(video_id), "language": language,
            "label": label, "subtitle_file": (io.BytesIO(raw), "film.srt")}  # fmt: skip
    if default:
        data["is_default"] = "y"
    return staff.post("/admin/subtitle/new/", data=data, content_type="multipart/form-data")


def import_video(runner, clip, title="Sample", category="Drama", *extra):
    """Import a clip through the operator CLI (the same pipeline as an admin upload)."""
    result = runner.invoke(
        args=["videos", "import", str(clip), "--title", title, "--category", category, *extra],
    )
    return result


def only_video(app):
    with app.app_context():
        return db.session.scalars(db.select(Video)).one()


def get_video(app, video_id):
    with app.app_context():
        return db.session.get(Video, video_id)


def rendition_dir(app, video, name):
    return Path(app.config["MEDIA_ROOT"]) / video.hls_path / name


def segment_durations(folder):
    playlist = m3u8.load(str(folder / "index.m3u8"))
    return [segment.duration for segment in playlist.segments], [segment.uri for segment in playlist.segments]


def starts_with_keyframe(segment_path):
    with av.open(str(segment_path)) as container:
        first = next(container.demux(video=0))
        return first.is_keyframe


def media_files(app):
    root = Path(app.config["MEDIA_ROOT"])
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def job_in_background(app, run, video_id, under_way, timeout=60):
    """Run `run(video_id, job_id)` (a pass of the pipeline) for the video's current job in a thread,
    as a worker would; return (thread, outcome) once under_way(video) holds. outcome["status"] is
    the pass's result after the join."""
    with app.app_context():
        job_id = db.session.get(Video, video_id).job_id
    outcome = {}

    def work():
        with app.app_context():
            outcome["status"] = run(video_id, job_id)

    thread = threading.Thread(target=work)
    thread.start()
    deadline = time.monotonic() + timeout
    while not under_way(get_video(app, video_id)):
        assert time.monotonic() < deadline, "the job never got under way"
        time.sleep(0.02)
    return thread, outcome


def queued_video(app, clip, title="Queued", job_id="a" * 32):
    """A video whose job is recorded but not run (as if waiting in the queue)."""
    relative = f"{keys.SOURCES}/{title.lower()}.mp4"
    path = Path(app.config["MEDIA_ROOT"]) / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(clip.read_bytes())
    with app.app_context():
        video = Video(title=title, category="Drama", source_path=relative, job_id=job_id)
        db.session.add(video)
        db.session.commit()
        return video.id


def started(app, clip):
    """A video whose first pass has only started: playlists published, no part run yet."""
    video_id = queued_video(app, clip, "Film", "f" * 32)
    with app.app_context():
        assert steps.start(video_id, "f" * 32) == Status.READY
    return video_id


def run_part(app, video_id, kind, number=0):
    """One part of a started video's first pass, here and now."""
    work = {PartKind.SOUND: chunked.make_sound, PartKind.CHUNK: chunked.make_chunk}[kind]
    with app.app_context():
        assert chunked.run_part(video_id, "f" * 32, kind, number, work) == chunked.DONE
