from datetime import UTC

from flask import g
from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate

from videoflix.storage import keys
from videoflix.urls import external_url
from videoflix.validation import storable
from videoflix.videos.models import CATEGORIES


def iso_utc(moment):
    if moment.tzinfo is None:  # SQLite returns naive datetimes; they are stored as UTC
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def poster_url(video):
    """Absolute, public URL of the poster. The URL prefix is built once per request: url_for for
    each of 10,000 rows was a third of rebuilding the catalogue."""
    if not video.poster_path:
        return None
    prefix = g.get("poster_url_prefix")
    if prefix is None:
        prefix = g.poster_url_prefix = external_url("posters.poster", filename="_")[:-1]
    return prefix + keys.poster_name(video.poster_path)


class VideoSchema(Schema):
    id = fields.Integer()
    created_at = fields.Function(lambda video: iso_utc(video.created_at))
    title = fields.String()
    description = fields.String()
    thumbnail_url = fields.Function(poster_url)
    category = fields.String()


class VideoDetailSchema(VideoSchema):
    duration = fields.Float()
    resolutions = fields.List(fields.String(), attribute="renditions")
    position = fields.Float()  # the viewer's, passed in beside the video
    finished = fields.Boolean()
    storyboard_url = fields.Function(
        lambda video: external_url("videos.storyboard_track", video_id=video.id) if video.has_storyboard else None
    )


class SubtitleSchema(Schema):
    language = fields.String()
    label = fields.String()
    default = fields.Boolean(attribute="is_default")
    url = fields.Function(
        lambda track: external_url("videos.subtitle_file", video_id=track.video_id, track_id=track.id)
    )


class ContinueItemSchema(VideoSchema):
    position = fields.Float()


class Seconds(fields.Float):
    """A JSON number of seconds: not a string, not a boolean, not NaN or infinite."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValidationError("Must be a number of seconds.")
        return super()._deserialize(value, attr, data, **kwargs)


class ProgressSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    position = Seconds(required=True, allow_nan=False, validate=validate.Range(min=0, max=10**7))


def _storable_text(text):
    if not storable(text):
        raise ValidationError("Contains a character that is not allowed.")


class CatalogueQuerySchema(Schema):
    class Meta:
        unknown = EXCLUDE

    category = fields.String(validate=validate.OneOf(CATEGORIES))
    q = fields.String(validate=[validate.Length(max=200), _storable_text])
