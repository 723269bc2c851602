"""Operator commands: `flask create-admin`, `flask worker`, `flask serve`, `flask videos ...`,
`flask media ...`."""

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import UTC
from pathlib import Path

import click
import sqlalchemy as sa
from flask import current_app
from flask.cli import with_appcontext
from huey.consumer import Consumer
from waitress import serve as waitress_serve

from videoflix import metrics
from videoflix.auth.models import User, normalize_email
from videoflix.auth.passwords import password_problems
from videoflix.extensions import db
from videoflix.live_state import LiveState
from videoflix.media.probe import VIDEO_EXTENSIONS, NotAVideo, probe
from videoflix.pipeline.cleanup import sweep
from videoflix.pipeline.tasks import enqueue_transcode, hurry_lane, recover_at_startup
from videoflix.processes import die_with_parent
from videoflix.queue import huey
from videoflix.storage import keys, media_store, migration
from videoflix.storage.errors import StorageUnavailable
from videoflix.storage.local import LocalStorage
from videoflix.videos.models import CATEGORIES, Status, Video, publish_at_value


def fail(message):
    click.echo(f"Error: {message}", err=True)
    sys.exit(1)


@click.command("create-admin")
@click.option("--email", prompt=True)
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
@click.option("--superuser", is_flag=True, help="Also manage staff: grant and remove the staff role.")
@with_appcontext
def create_admin(email, password, superuser):
    """Create an active staff user who can sign in to /admin/ (with --superuser, one who manages staff)."""
    email = normalize_email(email)
    if "@" not in email:
        fail("that is not an email address.")
    if db.session.scalar(sa.select(User.id).where(User.email == email)) is not None:
        fail(f"a user with the email {email} already exists.")
    problems = password_problems(password, email)
    if problems:
        fail(" ".join(problems))
    user = User(email=email, is_active=True, is_staff=True, is_superuser=superuser)
    user.set_password(password)
    db.session.add(user)
    db.session.commit()
    click.echo(f"Created {'superuser' if superuser else 'staff user'} {email}.")


QUEUE_MAX_IDLE_SECONDS = 0.5


@click.command("worker")
@click.option("--workers", type=int, default=None, help="Worker threads (default: WORKER_THREADS).")
@with_appcontext
def worker(workers):
    """Run the Huey consumer that transcodes videos and sends mail."""
    report_storage()
    if current_app.config["METRICS_PORT"]:
        metrics.serve(current_app.config["METRICS_PORT"])
    recovered = recover_at_startup()
    if recovered:
        click.echo(f"Re-queued interrupted jobs of videos {recovered}.")
    threads = workers or current_app.config["WORKER_THREADS"]
    lane = ""
    if current_app.config["HURRY_LANE"]:
        app, stopped = current_app._get_current_object(), threading.Event()
        threading.Thread(target=hurry_lane, args=(app, stopped), name="hurry-lane", daemon=True).start()
        lane = ", and one for segments viewers wait for"
    click.echo(f"Worker started with {threads} threads{lane}.")
    # An idle consumer looks at the queue at least every QUEUE_MAX_IDLE_SECONDS (Huey backs off to
    # 10 s by default): a new upload's start waits no longer than that before it is playable.
    Consumer(huey, workers=threads, worker_type="thread", check_worker_health=True,
             max_delay=QUEUE_MAX_IDLE_SECONDS).run()  # fmt: skip


def report_storage():
    """Say at start-up where media go, and whether that store can be used."""
    store = media_store()
    try:
        store.check()
        click.echo(f"Media storage: {store.describe()}.")
    except StorageUnavailable as error:
        click.echo(f"Warning: media storage unusable: {error}", err=True)


def port_is_free(host, port):
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe_socket:
        try:
            probe_socket.bind((host, port))
        except OSError:
            return False
    return True


def _stop(_signal_number, _frame):
    raise KeyboardInterrupt


@click.command("serve")
@click.option("--host", default="127.0.0.1")
@click.option("--port", type=int, default=None, help="Default: PORT.")
@click.option("--threads", type=int, default=None, help="Default: WEB_THREADS.")
@click.option("--worker/--no-worker", default=True, help="Run a worker beside the API (production runs them apart).")
@with_appcontext
def serve(host, port, threads, worker):
    """Serve the API with waitress (behind PROXY_COUNT proxies at TRUSTED_PROXY) and, unless
    --no-worker, a worker beside it; Ctrl-C stops both."""
    port = port or current_app.config["PORT"]
    options = {**current_app.config["WAITRESS_OPTIONS"], **({"threads": threads} if threads else {})}
    if not port_is_free(host, port):
        fail(f"port {port} on {host} is taken (another Videoflix?): stop it, or run make run PORT={port + 1}")
    report_storage()
    metrics_port = current_app.config["METRICS_PORT"]
    if metrics_port:
        metrics.serve(metrics_port, [LiveState(current_app._get_current_object())])
    worker_process = None
    if worker:
        # The worker beside it exports its metrics on the next port.
        env = {**os.environ, "METRICS_PORT": str(metrics_port + 1)} if metrics_port else None
        worker_process = subprocess.Popen(
            [sys.executable, "-m", "flask", "--app", "wsgi", "worker"], preexec_fn=die_with_parent, env=env
        )
    # Explicit, since a shell that starts us in the background leaves SIGINT ignored.
    for stop_signal in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stop_signal, _stop)
    base = f"http://{host}:{port}"
    beside = f"; worker pid {worker_process.pid}" if worker_process else ""
    click.echo(f"Videoflix on {base}: API docs {base}/api/docs/, staff admin {base}/admin/{beside}")
    try:
        waitress_serve(current_app._get_current_object(), host=host, port=port, **options)
    except KeyboardInterrupt:
        pass
    finally:
        if worker_process is not None:
            worker_process.terminate()
            try:
                worker_process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                worker_process.kill()
        click.echo("Stopped.")


PUBLISH_AT_FORMATS = ["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M%z", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M"]


@click.group("videos")
def videos():
    """Import, re-transcode and list videos."""


@videos.command("import")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--title", required=True)
@click.option("--category", required=True, type=click.Choice(CATEGORIES, case_sensitive=False))
@click.option("--description", default="")
@click.option("--wait", is_flag=True, help="Follow the job until it is ready or failed.")
@click.option("--draft", is_flag=True, help="Keep it from viewers until staff publish it.")
@click.option("--publish-at", type=click.DateTime(formats=PUBLISH_AT_FORMATS),
              help="Release it at this time (ISO 8601, e.g. 2026-12-24T18:00; UTC without an offset).")  # fmt: skip
@with_appcontext
def import_video(path, title, category, description, wait, draft, publish_at):
    """Copy a video file into the media store and queue its transcode. Viewers see it as soon as it
    is ready, unless --draft or --publish-at say otherwise."""
    if draft and publish_at:
        fail("choose --draft or --publish-at, not both.")
    if not path.is_file():
        fail(f"{path} does not exist.")
    if path.suffix.lower() not in VIDEO_EXTENSIONS:
        fail(f"{path.name} does not have a video extension ({', '.join(VIDEO_EXTENSIONS)}).")
    try:
        probe(path)
    except NotAVideo as error:
        fail(f"{path.name}: {error}")
    source = keys.new_source(path.suffix.lower())
    try:
        media_store().put_file(source, path)
    except StorageUnavailable as error:
        fail(str(error))
    category = next(name for name in CATEGORIES if name.lower() == category.lower())
    video = Video(title=title, description=description, category=category, source_path=source)
    if draft or publish_at:
        video.publish_at = publish_at_value(None if draft else publish_at.astimezone(UTC) if publish_at.tzinfo
                                            else publish_at.replace(tzinfo=UTC))  # fmt: skip
    db.session.add(video)
    db.session.commit()
    enqueue_transcode(video)
    click.echo(f"Imported video {video.id}: {title}")
    if wait:
        _follow(video.id)


def _follow(video_id, poll_seconds=1.0):
    with click.progressbar(length=100, label=f"Transcoding video {video_id}") as bar:
        shown = 0
        while True:
            db.session.expire_all()
            video = db.session.get(Video, video_id)
            if video is None:
                fail(f"video {video_id} was deleted.")
            bar.update(video.progress - shown)
            shown = video.progress
            if video.status in (Status.READY, Status.FAILED):
                break
            time.sleep(poll_seconds)
    if video.status == Status.FAILED:
        fail(f"transcoding failed: {video.error}")
    click.echo(f"Video {video_id} is ready: {', '.join(video.renditions)}")


@videos.command("retranscode")
@click.argument("video_id", type=int)
@with_appcontext
def retranscode(video_id):
    """Queue a new transcode; the current renditions stay playable until it is done."""
    video = db.session.get(Video, video_id)
    if video is None:
        fail(f"no video with id {video_id}.")
    enqueue_transcode(video)
    click.echo(f"Queued video {video_id} for transcoding.")


@videos.command("list")
@with_appcontext
def list_videos():
    """Every video with its status and progress."""
    rows = db.session.scalars(sa.select(Video).order_by(Video.id)).all()
    click.echo(f"{'id':>5}  {'status':<10} {'progress':>8}  title")
    for video in rows:
        click.echo(f"{video.id:>5}  {video.status:<10} {video.progress:>7}%  {video.title}")


@click.group("media")
def media():
    """The media store: create the bucket, migrate to it, sweep leftovers."""


def object_store():
    store = media_store()
    if store.name != "s3":
        fail("no bucket is configured: set S3_BUCKET (and S3_ENDPOINT_URL, S3_ACCESS_KEY_ID, ...) first.")
    return store


@media.command("create-bucket")
@with_appcontext
def create_bucket():
    """Create the S3_BUCKET if it does not exist (the app itself never creates anything)."""
    store = object_store()
    try:
        created = store.create_bucket()
    except StorageUnavailable as error:
        fail(str(error))
    click.echo(f"{'Created' if created else 'Already there:'} {store.describe()}.")


@media.command("migrate-to-s3")
@click.option(
    "--from", "source_root", type=click.Path(file_okay=False, exists=True, path_type=Path), default=None,
    help="The local media folder to copy (default: MEDIA_ROOT).",
)  # fmt: skip
@with_appcontext
def migrate_to_s3(source_root):
    """Copy every video's media from a local media folder into the bucket. Objects already there
    with the same size are skipped, so an interrupted run just runs again."""
    store = object_store()
    local = LocalStorage(source_root or current_app.config["MEDIA_ROOT"])
    try:
        store.check()
        plan = migration.plan(db.session.scalars(sa.select(Video).order_by(Video.id)).all(), local)
        stored = migration.stored_sizes(store)
    except StorageUnavailable as error:
        fail(str(error))
    todo = [item for item in plan.objects if stored.get(item.key) != item.size]
    label = f"Copying {len(todo)} of {len(plan.objects)} objects"
    try:
        with click.progressbar(todo, label=label, item_show_func=lambda item: item.key if item else "") as bar:
            for item in bar:
                store.put_file(item.key, local.path(item.key))
    except StorageUnavailable as error:
        fail(f"{error} Run the command again to go on where it stopped.")
    for video_id, key in plan.missing:
        click.echo(f"Warning: video {video_id} refers to {key}, which is not in {local.root}.", err=True)
    click.echo(
        f"{len(plan.videos)} videos in {store.describe()}: {len(todo)} objects copied, "
        f"{len(plan.objects) - len(todo)} already there. Start web and workers with S3_BUCKET set."
    )
    if plan.missing:
        sys.exit(1)


@media.command("sweep")
@with_appcontext
def sweep_media():
    """Remove stored objects that no video references (left by crashes), older than an hour."""
    try:
        removed = sweep()
    except StorageUnavailable as error:
        fail(str(error))
    click.echo(f"Removed {removed} objects that no video references.")


def init_app(app):
    for command in (create_admin, worker, serve, videos, media):
        app.cli.add_command(command)
