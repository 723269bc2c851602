"""Flask-Admin: the staff UI at /admin/ (videos, users, the job queue). Built inside the factory.

Staff sign in with a session (the SPA's cookie JWTs are for the API); every form is CSRF-protected
by Flask-Admin's SecureForm."""

import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import current_app, flash, g, redirect, request, url_for
from flask_admin import Admin, AdminIndexView, BaseView, expose
from flask_admin.actions import action
from flask_admin.contrib.sqla import ModelView
from flask_admin.form import SecureForm
from flask_admin.model import typefmt
from flask_admin.theme import Bootstrap4Theme
from markupsafe import Markup, escape
from werkzeug.exceptions import RequestEntityTooLarge
from wtforms import (
    DateTimeLocalField,
    EmailField,
    FileField,
    HiddenField,
    PasswordField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, InputRequired, Length, StopValidation, ValidationError

from videoflix import errors, security_headers
from videoflix.auth import staff
from videoflix.auth.limits import auth_limit
from videoflix.auth.models import User, user_by_credentials
from videoflix.auth.staff import current_staff
from videoflix.extensions import as_utc, cache, db, limiter
from videoflix.media import storyboard, subtitles
from videoflix.media.probe import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, NotAVideo, check_image, probe
from videoflix.pipeline import posters
from videoflix.pipeline.cleanup import delete_video_media, retire
from videoflix.pipeline.subtitles import republish as republish_subtitles
from videoflix.pipeline.tasks import enqueue_transcode, queued_jobs
from videoflix.storage import keys, media_store, usage
from videoflix.storage.errors import StorageUnavailable
from videoflix.uploads.models import Upload
from videoflix.uploads.spool import part_path, remove_upload
from videoflix.validation import parse_id
from videoflix.videos import audience, playback
from videoflix.videos.models import CATEGORIES, Phase, Status, Subtitle, Video, publish_at_value
from videoflix.videos.schemas import poster_url


def _safe_next(target):
    """Only same-site paths are followed after login."""
    parts = urlsplit(target or "")
    return target if target and not parts.scheme and not parts.netloc and target.startswith("/") else None


def staff_time(_view, value, *_args):
    """Every date the staff read, in one format and in STAFF_TIME_ZONE."""
    moment = as_utc(value).astimezone(staff_zone())
    return moment.strftime("%Y-%m-%d %H:%M ") + (moment.tzname() or "")


class StaffOnly:
    column_type_formatters = {**typefmt.BASE_FORMATTERS, datetime: staff_time}

    def is_accessible(self):
        return current_staff() is not None

    def inaccessible_callback(self, name, **kwargs):
        return redirect(url_for("admin.login", next=request.full_path))


class LoginForm(SecureForm):
    email = EmailField("Email", validators=[DataRequired()])
    password = PasswordField("Password", validators=[DataRequired()])


class StaffIndexView(AdminIndexView):
    @expose("/")
    def index(self):
        if current_staff() is None:
            return redirect(url_for(".login"))
        counts = dict(db.session.execute(sa.select(Video.status, sa.func.count()).group_by(Video.status)).all())
        try:
            storage, storage_error = store_usage(fresh=request.args.get("storage") == "fresh"), None
        except StorageUnavailable as error:  # the rest of the page still helps
            storage, storage_error = None, str(error)
        return self.render(
            "admin/videoflix_index.html", counts=counts, staff=current_staff(), logout_form=SecureForm(),
            watching=audience.watching_now(), week=audience.most_watched_this_week(),
            storage=storage, storage_error=storage_error, read_at=storage and staff_time(self, storage.read_at),
            storage_minutes=STORAGE_CACHE_SECONDS // 60, titles=video_titles(),
            active_minutes=audience.ACTIVE_VIEWER_MINUTES, file_size=file_size,
        )  # fmt: skip

    @expose("/login/", methods=("GET", "POST"))
    @limiter.limit(auth_limit, methods=["POST"])
    def login(self):
        form = LoginForm(request.form)
        if request.method == "POST" and form.validate():
            user = user_by_credentials(form.email.data, form.password.data)
            if user is not None and user.is_active and user.is_staff:
                user.last_login = datetime.now(UTC)
                db.session.commit()
                staff.sign_in(user)
                return redirect(_safe_next(request.args.get("next")) or url_for(".index"))
            flash("Invalid credentials, or not a staff account.", "error")
        return self.render("admin/videoflix_login.html", form=form)

    @expose("/logout/", methods=("POST",))
    def logout(self):
        if SecureForm(request.form).validate():
            staff.sign_out()
        return redirect(url_for(".login"))


STORAGE_CACHE_KEY, STORAGE_CACHE_SECONDS = "staff:storage-usage", 300


def store_usage(fresh=False):
    """What the store holds per video and in all (storage/usage.py), cached for a few minutes:
    listing the bucket of a large catalogue takes a while. `fresh` reads it again."""
    found = None if fresh else cache.get(STORAGE_CACHE_KEY)
    if found is None:
        found = usage.read(db.session.scalars(sa.select(Video)).all())
        cache.set(STORAGE_CACHE_KEY, found, timeout=STORAGE_CACHE_SECONDS)
    return found


def video_titles():
    return dict(db.session.execute(sa.select(Video.id, Video.title)).all())


def clock(seconds):
    """m:ss, or h:mm:ss from an hour on."""
    minutes, seconds = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


def file_size(size):
    for unit, scale in (("GB", 2**30), ("MB", 2**20), ("kB", 2**10)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} B"


def _ids(raw_ids):
    """The row ids an action form names, as integers (anything else is dropped)."""
    return [parsed for parsed in map(parse_id, raw_ids) if parsed is not None]


def _extension(filename):
    return Path(filename or "").suffix.lower()


def _chosen(upload):
    """True when the form's file field carries a file (an edit may leave it empty)."""
    return bool(upload and getattr(upload, "filename", ""))


class VideoFileRequired(InputRequired):
    """A file chosen, or one already sent by the resumable upload. An InputRequired, so that the form
    shows the required mark and the browser asks for a file."""

    def __call__(self, form, field):
        if not _chosen(field.data) and not form.upload_id.data:
            raise StopValidation("Choose a video file.")


def finished_upload(upload_id):
    """The signed-in staff member's complete resumable upload with this id, or None."""
    upload = db.session.get(Upload, upload_id) if upload_id else None
    staff = current_staff()
    if upload is None or staff is None or upload.staff_id != staff.id or not upload.complete:
        return None
    return upload


def validate_resumable_upload(form, _field):
    """A finished tus upload named by the form's script: its extension, then the probe. A validator
    of the visible file field, so that its reasons show where the file was chosen."""
    if not form.upload_id.data:
        return
    upload = finished_upload(form.upload_id.data)
    if upload is None:
        raise ValidationError("The upload is not finished or has expired; choose the file again.")
    if _extension(upload.filename) not in VIDEO_EXTENSIONS:
        raise ValidationError(f"Unsupported file type; use one of {', '.join(VIDEO_EXTENSIONS)}.")
    try:
        probe(part_path(upload.id))
    except NotAVideo as error:
        raise ValidationError(str(error)) from None


def upload_validator(kind, extensions, check):
    """A validator for an optional file field: the extension first, then `check` reads the file
    (it raises NotAVideo with a readable reason)."""

    def validate(_form, field):
        upload = field.data
        if not _chosen(upload):
            return
        if _extension(upload.filename) not in extensions:
            raise ValidationError(f"Unsupported {kind} type; use one of {', '.join(extensions)}.")
        try:
            check(upload.stream.name)
        except NotAVideo as error:
            raise ValidationError(str(error)) from None

    return validate


validate_video_file = upload_validator("file", VIDEO_EXTENSIONS, probe)
validate_poster_file = upload_validator("image", IMAGE_EXTENSIONS, check_image)


def _progress_bar(percent, label):
    """The label beside the bar, not inside it: readable at 0% as at 100%."""
    return Markup(
        '<div class="small text-nowrap">{label}</div>'
        '<div class="progress" style="min-width:8em;height:.5rem" title="{label}">'
        '<div class="progress-bar progress-bar-striped progress-bar-animated" role="progressbar" '
        'style="width:{p}%" aria-valuenow="{p}" aria-valuemin="0" aria-valuemax="100" aria-label="{label}"></div></div>'
    ).format(p=int(percent), label=label)


def _status_cell(_view, _context, video, _name):
    return status_markup(video)


def status_markup(video):
    """The status, and while a ready video's efficient ladder is made, that phase's progress."""
    if video.status == Status.PROCESSING:
        return _progress_bar(video.progress, f"{int(video.progress)}%")
    badge = {"ready": "success", "failed": "danger", "pending": "secondary"}.get(video.status, "light")
    cell = Markup('<span class="badge badge-{}">{}</span>').format(badge, video.status)
    if video.status == Status.READY and video.phase in (Phase.ENCODING, Phase.OPTIMISING):
        cell += _progress_bar(video.progress, f"playable, {video.phase} {int(video.progress)}%")
    elif video.status == Status.READY and video.phase:
        cell += Markup(' <small class="text-muted">{} ladder</small>').format(video.phase)
    return cell


def _duration_cell(_view, _context, video, _name):
    return "" if video.duration is None else clock(video.duration)


def audience_summary(seen):
    return f"{seen.views} viewer(s), {seen.completion:.0%} finished, average position {clock(seen.average_position)}"


def _audience_cell(_view, context, video, _name):
    seen = context.resolve("audience").get(video.id)
    return audience_summary(seen) if seen else "no viewers yet"


def _error_cell(_view, _context, video, _name):
    if not video.error:
        return ""
    first, _, rest = video.error.partition("\n")
    if not rest:
        return first
    return Markup("{}<details><summary>ffmpeg output</summary><pre>{}</pre></details>").format(first, escape(rest))


@dataclass
class StoredUploads:
    """What one admin form request put in the store, passed from the hook before the commit to the
    hooks after it: the keys it stored (removed if the save fails), the keys they replace (removed
    once the save is committed), and whether the video needs a transcode."""

    needs_transcode: bool
    stored: list = field(default_factory=list)
    replaced: list = field(default_factory=list)
    resumable: Upload | None = None  # a finished tus upload that became the video's file

    def keep(self, local_file, key, replacing):
        media_store().put_file(key, local_file)
        self.stored.append(key)
        if replacing:
            self.replaced.append(replacing)
        return key


def _poster_cell(_view, _context, video, _name):
    url = poster_url(video)
    if not url:
        return ""
    thumbnail = '<img src="{}" alt="" loading="lazy" style="height:40px;max-width:72px;object-fit:cover">'
    return Markup(thumbnail).format(url)


@dataclass
class RungFigures:
    name: str
    segments: int
    megabytes: float
    kbps: int


def rung_figures(video):
    """What each published rendition weighs: segments, size and average bit rate (from the store)."""
    figures = []
    for name in video.renditions or ():
        segments = [stored for stored in media_store().list(f"{video.hls_path}/{name}") if stored.key.endswith(".ts")]
        size = sum(stored.size for stored in segments)
        kbps = round(size * 8 / video.duration / 1000) if video.duration else 0
        figures.append(RungFigures(name, len(segments), size / 2**20, kbps))
    return figures


WHEN_READY, DRAFT, SCHEDULED = "published", "draft", "scheduled"
PUBLISHING_CHOICES = [(WHEN_READY, "Publish when ready"), (DRAFT, "Draft (staff only)"), (SCHEDULED, "Scheduled")]


def require_release_time(form, field):
    if form.publish_choice.data == SCHEDULED and field.data is None:
        raise StopValidation("Choose when a scheduled video comes out.")
    if form.publish_choice.data != SCHEDULED:
        field.errors = []
        raise StopValidation()


def staff_zone():
    return ZoneInfo(current_app.config["STAFF_TIME_ZONE"])


def publish_at_for(choice, release_at, current):
    """The video's publish_at for a choice on the form: a draft has none, a scheduled video its
    time (entered in STAFF_TIME_ZONE), and "when ready" keeps a past time or starts now."""
    if choice == DRAFT:
        return None
    if choice == SCHEDULED:
        return release_at.replace(tzinfo=staff_zone()).astimezone(UTC)
    now = datetime.now(UTC)
    return current if current is not None and as_utc(current) <= now else now


POSTER_FRAMES = 48  # thumbnails offered as the poster, spread over the film


def poster_frames(video):
    """The storyboard's thumbnails staff may pick a poster from (none while it has no storyboard)."""
    if not video.has_storyboard or not video.hls_path:
        return []
    store = media_store()
    try:
        with store.local_file(f"{video.hls_path}/{storyboard.TRACK}", folder=store.work_root()) as track:
            return storyboard.spread(storyboard.thumbnails(Path(track).read_text()), POSTER_FRAMES)
    except FileNotFoundError:
        return []


def _seconds(text):
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if 0 <= value < float("inf") else None


def _publishing_cell(_view, _context, video, _name):
    if video.publishing == SCHEDULED:
        return f"scheduled {staff_time(None, video.publish_at)}"
    return video.publishing


class VideoAdmin(StaffOnly, ModelView):
    form_base_class = SecureForm
    list_template = "admin/video_list.html"
    create_template = "admin/video_create.html"
    edit_template = "admin/video_edit.html"
    column_list = ("id", "poster", "title", "category", "status", "publishing", "duration", "source", "renditions",
                   "audience", "error", "created_at")  # fmt: skip
    column_default_sort = ("created_at", True)
    column_searchable_list = ("title", "description")
    column_filters = ("category", "status")
    column_formatters = {
        "poster": _poster_cell,
        "status": _status_cell,
        "duration": _duration_cell,
        "source": lambda _v, _c, video, _n: f"{video.width}×{video.height}" if video.width else "",
        "renditions": lambda _v, _c, video, _n: ", ".join(video.renditions or []),
        "error": _error_cell,
        "publishing": _publishing_cell,
        "audience": _audience_cell,
        "created_at": lambda view, _c, video, _n: staff_time(view, video.created_at),
    }
    form_columns = ("title", "description", "category", "video_file", "upload_id", "poster_file", "publish_choice",
                    "release_at")  # fmt: skip
    form_overrides = {"category": SelectField, "description": TextAreaField, "title": StringField}
    form_args = {
        "title": {"validators": [InputRequired(), Length(max=200)]},
        "category": {"choices": [(name, name) for name in CATEGORIES], "validators": [InputRequired()]},
    }
    form_extra_fields = {
        # Filled by the form's script once a resumable upload of the chosen file has finished.
        "upload_id": HiddenField(),
        "video_file": FileField("Video file", validators=[validate_resumable_upload, validate_video_file]),
        "poster_file": FileField(
            "Poster (optional; generated from the video otherwise)", validators=[validate_poster_file]
        ),
        "publish_choice": SelectField("Publishing", choices=PUBLISHING_CHOICES, default=WHEN_READY),
        "release_at": DateTimeLocalField(
            "Release at (UTC)", format=["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"], validators=[require_release_time]
        ),
    }

    def render(self, template, **kwargs):
        if template == self.list_template:
            kwargs["audience"] = audience.per_video([video.id for video in kwargs.get("data") or ()])
        if template == self.edit_template and kwargs.get("model") is not None:
            video = kwargs["model"]
            try:  # what the store holds: the form and the facts from the database still help without it
                stored = dict(rungs=rung_figures(video) if video.hls_path else [], usage=usage.read_video(video),
                              frames=poster_frames(video), storage_error=None)  # fmt: skip
            except StorageUnavailable as error:
                stored = dict(rungs=[], usage=None, frames=[], storage_error=str(error))
            kwargs.update(
                status=status_markup(video), error=_error_cell(None, None, video, None), file_size=file_size,
                seen=audience_summary(audience.per_video([video.id]).get(video.id, audience.NO_AUDIENCE)),
                poster=poster_url(video), pick_form=SecureForm(), clock=clock, **stored,
            )  # fmt: skip
        return super().render(template, **kwargs)

    @expose("/poster/<id:video_id>/", methods=("POST",))
    def pick_poster(self, video_id):
        """The poster from the frame at `at` seconds (a storyboard thumbnail the staff clicked)."""
        back = redirect(url_for(".edit_view", id=video_id))
        video = db.session.get(Video, video_id)
        at = _seconds(request.form.get("at"))
        if not SecureForm(request.form).validate():
            flash("The form expired; please try again.", "error")
        elif video is None:
            flash(f"Video {video_id} no longer exists.", "error")
            return redirect(url_for(".index_view"))
        elif at is None or not video.duration or at >= video.duration:
            flash("Pick a moment within the video.", "error")
        else:
            try:
                with tempfile.TemporaryDirectory(dir=media_store().work_root()) as scratch:
                    key = posters.frame_poster(video, at, Path(scratch))
            except posters.NoFrame as error:
                flash(str(error), "error")
                return back
            old_poster, video.poster_path, video.poster_uploaded = video.poster_path, key, True
            db.session.commit()
            retire(stored_keys=[old_poster])
            flash(f"The poster is now the frame at {clock(at)}.", "success")
        return back

    @expose("/preview/<id:video_id>/storyboard/<sheet>")
    def preview_storyboard_sheet(self, video_id, sheet):
        return playback.storyboard_sheet(video_id, sheet, released_only=False)

    # The edit page's preview player: the published HLS files, for the staff session.
    # Drafts and scheduled videos play here too (released_only=False).
    @expose("/preview/<id:video_id>/master.m3u8")
    def preview_master(self, video_id):
        return playback.master(video_id, released_only=False)

    @expose("/preview/<id:video_id>/<resolution>/index.m3u8")
    def preview_media_playlist(self, video_id, resolution):
        return playback.media_playlist(video_id, resolution, released_only=False)

    @expose("/preview/<id:video_id>/<resolution>/<segment>")
    def preview_segment(self, video_id, resolution, segment):
        return playback.segment(video_id, resolution, segment, released_only=False)

    @expose("/preview/<id:video_id>/audio/<id:track>/index.m3u8")
    def preview_audio_playlist(self, video_id, track):
        return playback.audio_playlist(video_id, track, released_only=False)

    @expose("/preview/<id:video_id>/audio/<id:track>/<segment>")
    def preview_audio_segment(self, video_id, track, segment):
        return playback.audio_segment(video_id, track, segment, released_only=False)

    def get_create_form(self):
        """A new video needs a file; an edit may keep the one it has."""
        form_class = super().get_create_form()

        class CreateVideoForm(form_class):
            video_file = FileField(
                "Video file", validators=[VideoFileRequired(), validate_resumable_upload, validate_video_file]
            )

        return CreateVideoForm

    def create_form(self, obj=None):
        """After a validation error, the file that already went up is named, so staff do not send it again."""
        form = super().create_form(obj)
        upload = finished_upload(form.upload_id.data) if request.method == "POST" else None
        if upload is not None:
            form.video_file.flags.required = False  # the file is there: the browser must not ask for it again
            form.video_file.description = (
                f"{upload.filename} ({upload.length / 1048576:.1f} MB) already uploaded: saving will not send it again."
            )
        return form

    def edit_form(self, obj=None):
        form = super().edit_form(obj)
        if request.method == "GET" and obj is not None:
            form.publish_choice.data = obj.publishing
            scheduled = obj.publishing == SCHEDULED
            form.release_at.data = (
                as_utc(obj.publish_at).astimezone(staff_zone()).replace(tzinfo=None) if scheduled else None
            )
        return form

    def on_model_change(self, form, model, is_created):
        model.publish_at = publish_at_value(
            publish_at_for(form.publish_choice.data, form.release_at.data, model.publish_at)
        )
        uploads = g.stored_uploads = StoredUploads(needs_transcode=is_created)
        video_upload, poster_upload = form.video_file.data, form.poster_file.data
        resumable = finished_upload(form.upload_id.data)
        if resumable is not None:
            source = keys.new_source(_extension(resumable.filename))
            model.source_path = uploads.keep(part_path(resumable.id), source, replacing=model.source_path)
            uploads.resumable, uploads.needs_transcode = resumable, True
        elif _chosen(video_upload):
            source = keys.new_source(_extension(video_upload.filename))
            model.source_path = uploads.keep(video_upload.stream.name, source, replacing=model.source_path)
            uploads.needs_transcode = True
        if _chosen(poster_upload):
            poster = keys.new_poster(_extension(poster_upload.filename))
            model.poster_path = uploads.keep(poster_upload.stream.name, poster, replacing=model.poster_path)
            model.poster_uploaded = True

    def after_model_change(self, form, model, is_created):
        uploads = g.pop("stored_uploads")
        retire(stored_keys=uploads.replaced)
        if uploads.resumable is not None:  # its bytes are the video's now
            remove_upload(uploads.resumable)
            db.session.commit()
        if uploads.needs_transcode:
            enqueue_transcode(model)

    def handle_view_exception(self, exc):
        # Files stored for a row that then failed to save must not stay behind.
        uploads = g.pop("stored_uploads", None)
        for key in uploads.stored if uploads else ():
            media_store().delete(key)
        return super().handle_view_exception(exc)

    def after_model_delete(self, model):
        delete_video_media(model)

    @action("publish", "Publish now", "Show the selected videos to viewers (as soon as they are ready)?")
    def action_publish(self, ids):
        self._set_publish_at(ids, lambda video: publish_at_for(WHEN_READY, None, video.publish_at), "Published")

    @action("unpublish", "Unpublish (draft)", "Hide the selected videos from viewers?")
    def action_unpublish(self, ids):
        self._set_publish_at(ids, lambda _video: None, "Unpublished")

    def _set_publish_at(self, ids, publish_at_of, done):
        videos = db.session.scalars(sa.select(Video).where(Video.id.in_(_ids(ids)))).all()
        for video in videos:
            video.publish_at = publish_at_of(video)
        db.session.commit()
        flash(f"{done} {len(videos)} video(s).", "success")

    @action("retranscode", "Re-transcode", "Transcode the selected videos again?")
    def action_retranscode(self, ids):
        videos = db.session.scalars(sa.select(Video).where(Video.id.in_(_ids(ids)))).all()
        for video in videos:
            enqueue_transcode(video)
        flash(f"Queued {len(videos)} video(s) for transcoding.", "success")


def validate_subtitle_file(_form, field):
    """Converted here, so that a file that cannot be used is refused on the form with the reason."""
    if not _chosen(field.data):
        return
    try:
        field.webvtt = subtitles.to_webvtt(field.data.stream.read())
    except subtitles.SubtitleProblem as error:
        raise ValidationError(str(error)) from None


def require_subtitle_file(_form, field):
    if not _chosen(field.data):
        raise StopValidation("Choose a subtitle file (SRT or WebVTT).")


def validate_language(_form, field):
    if not subtitles.LANGUAGE.fullmatch(field.data or ""):
        raise ValidationError('Use a language code such as "en", "de" or "pt-BR".')


def validate_label(_form, field):
    problem = subtitles.label_problem(field.data or "")
    if problem:
        raise ValidationError(problem)


class SubtitleAdmin(StaffOnly, ModelView):
    """Subtitle tracks: a file per language, published into the video's HLS without re-encoding."""

    form_base_class = SecureForm
    column_list = ("video", "language", "label", "is_default", "created_at")
    column_default_sort = ("created_at", True)
    column_labels = {"is_default": "Default"}
    form_columns = ("video", "language", "label", "is_default", "subtitle_file")
    form_args = {
        "language": {"validators": [InputRequired(), validate_language]},
        "label": {"validators": [InputRequired(), Length(max=64), validate_label]},
        "video": {"validators": [InputRequired()]},
    }
    form_extra_fields = {
        "subtitle_file": FileField("Subtitle file (SRT or WebVTT)", validators=[validate_subtitle_file]),
    }

    def get_create_form(self):
        form_class = super().get_create_form()

        class CreateSubtitleForm(form_class):
            subtitle_file = FileField(
                "Subtitle file (SRT or WebVTT)", validators=[require_subtitle_file, validate_subtitle_file]
            )

        return CreateSubtitleForm

    def on_model_change(self, form, model, is_created):
        webvtt = getattr(form.subtitle_file, "webvtt", None)
        g.replaced_subtitle = None
        if webvtt is not None:
            with tempfile.NamedTemporaryFile("w", suffix=".vtt", dir=media_store().work_root()) as local:
                local.write(webvtt)
                local.flush()
                g.replaced_subtitle, model.source_key = model.source_key, keys.new_subtitle(model.video.id)
                media_store().put_file(model.source_key, local.name)
        if model.is_default:  # one default track per video
            db.session.flush()  # a new track gets its id
            db.session.execute(
                sa.update(Subtitle)
                .where(Subtitle.video_id == model.video.id, Subtitle.id != model.id)
                .values(is_default=False)
            )

    def after_model_change(self, form, model, is_created):
        retire(stored_keys=[g.pop("replaced_subtitle", None)])
        republish_subtitles(model.video_id)

    def after_model_delete(self, model):
        media_store().delete(model.source_key)
        republish_subtitles(model.video_id)


NOT_YOURS = "Only a superuser can change staff accounts or grant and remove the staff role."
SUPERUSERS_FROM_CLI = "Superuser accounts are managed with `flask create-admin --superuser`."


def may_manage(manager, user):
    """Staff manage viewers; a superuser also manages staff; superusers only from the command line."""
    if user.is_superuser:
        return False
    return manager.is_superuser or not user.is_staff


class UserAdmin(StaffOnly, ModelView):
    """Accounts. Staff see and manage viewers; a superuser sees everyone and grants or removes the
    staff role (which, like any role change, ends that user's sessions)."""

    form_base_class = SecureForm
    can_create = False
    column_list = ("email", "is_active", "is_staff", "is_superuser", "date_joined", "last_login")
    column_searchable_list = ("email",)
    column_filters = ("is_active", "is_staff")
    column_editable_list = ("is_active",)
    column_default_sort = ("date_joined", True)
    form_columns = ("is_active", "is_staff")
    edit_template = "admin/user_edit.html"  # names the account being edited

    def _visible(self, query):
        return query if current_staff().is_superuser else query.filter(User.is_staff.is_(False))

    def get_query(self):
        return self._visible(super().get_query())

    def get_count_query(self):
        return self._visible(super().get_count_query())

    def get_one(self, id):
        user = super().get_one(id)
        return user if user is not None and (current_staff().is_superuser or not user.is_staff) else None

    def edit_form(self, obj=None):
        form = super().edit_form(obj)
        if not current_staff().is_superuser:
            del form.is_staff
        return form

    def on_model_change(self, form, model, is_created):
        manager = current_staff()
        if not may_manage(manager, model) or (model.is_staff and not manager.is_superuser):
            raise ValidationError(SUPERUSERS_FROM_CLI if model.is_superuser else NOT_YOURS)

    def delete_model(self, model):
        if not may_manage(current_staff(), model):
            flash(SUPERUSERS_FROM_CLI if model.is_superuser else NOT_YOURS, "error")
            return False
        return super().delete_model(model)

    @action("activate", "Activate")
    def action_activate(self, ids):
        self._set_active(ids, True)

    @action("deactivate", "Deactivate")
    def action_deactivate(self, ids):
        self._set_active(ids, False)

    def _set_active(self, ids, active):
        # Through the ORM, so that a deactivation also moves the users' token version on.
        manager = current_staff()
        users = db.session.scalars(sa.select(User).where(User.id.in_(_ids(ids)))).all()
        allowed = [user for user in users if may_manage(manager, user)]
        for user in allowed:
            user.is_active = active
        db.session.commit()
        flash(f"{'Activated' if active else 'Deactivated'} {len(allowed)} user(s).", "success")
        if len(allowed) < len(users):
            flash(f"{len(users) - len(allowed)} account(s) left unchanged: {NOT_YOURS}", "error")


class QueueView(StaffOnly, BaseView):
    """Pending, running and failed transcode jobs, with a retry for the failed ones."""

    @expose("/")
    def index(self):
        waiting = dict(queued_jobs())
        videos = db.session.scalars(
            sa.select(Video).where(Video.status != Status.READY).order_by(Video.updated_at.desc())
        ).all()
        groups = {status: [v for v in videos if v.status == status] for status in Status if status != Status.READY}
        return self.render("admin/queue.html", groups=groups, waiting=waiting, form=SecureForm(), Status=Status)

    @expose("/retry/<id:video_id>/", methods=("POST",))
    def retry(self, video_id):
        form = SecureForm(request.form)
        if not form.validate():
            flash("The form expired; please try again.", "error")
            return redirect(url_for(".index"))
        video = db.session.get(Video, video_id)
        if video is None:
            flash(f"Video {video_id} no longer exists.", "error")
        else:
            enqueue_transcode(video)
            flash(f"Video {video_id} queued again.", "success")
        return redirect(url_for(".index"))


UPLOAD_ENDPOINTS = ("video.create_view", "video.edit_view")  # the forms that carry video files


def is_upload_request():
    return request.endpoint in UPLOAD_ENDPOINTS and request.method == "POST"


def allow_video_uploads():
    """Only the staff upload forms may send large bodies; every other request keeps MAX_CONTENT_LENGTH."""
    if is_upload_request():
        request.max_content_length = current_app.config["MAX_UPLOAD_BYTES"]


def upload_too_large(error):
    """Over the limit on an upload form: say so on the form; anywhere else the usual 413."""
    if not is_upload_request():
        return errors.handle_http_exception(error)
    flash(f"The upload is larger than the limit of {request.max_content_length // 2**20} MB.", "error")
    return redirect(request.url)


def init_app(app):
    app.before_request(allow_video_uploads)
    app.register_error_handler(RequestEntityTooLarge, upload_too_large)
    admin = Admin(
        app,
        name="Videoflix",
        theme=Bootstrap4Theme(swatch="flatly", base_template="admin/videoflix_base.html"),
        index_view=StaffIndexView(),
        csp_nonce_generator=security_headers.csp_nonce,
    )
    views = [
        VideoAdmin(Video, db, name="Videos"),
        SubtitleAdmin(Subtitle, db, name="Subtitles"),
        UserAdmin(User, db, name="Users"),
        QueueView(name="Queue", endpoint="queue"),
    ]
    for view in views:
        admin.add_view(view)
    # Each list action is an inline onclick in Flask-Admin's templates: allowed by its exact text.
    actions = sorted({name for view in views if isinstance(view, ModelView) for name, _ in view.get_actions_list()[0]})
    security_headers.allow_inline_handlers(app, [f"return modelActions.execute('{name}');" for name in actions])
