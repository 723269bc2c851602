from datetime import UTC

from flask import g
from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate

from videoflix.extensions import as_utc
from videoflix.media.ladder import RESOLUTIONS
from videoflix.storage import keys
from videoflix.urls import external_url
from videoflix.validation import STORABLE_TEXT, storable
from videoflix.videos.models import CATEGORIES


def iso_utc(moment):
    return as_utc(moment).astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def poster_url_prefix():
    """The absolute URL of the posters' folder, built once per request: url_for for each of 10,000
    rows was a third of rebuilding the catalogue."""
    prefix = g.get("poster_url_prefix")
    if prefix is None:
        prefix = g.poster_url_prefix = external_url("posters.poster", filename="_")[:-1]
    return prefix


def poster_url(video):
    """Absolute, public URL of the poster."""
    if not video.poster_path:
        return None
    return poster_url_prefix() + keys.poster_name(video.poster_path)


# Response schemas. `required` and `metadata` say what the OpenAPI document (api_docs/) promises:
# every key is always present, with this JSON type.
class VideoSchema(Schema):
    id = fields.Integer(required=True)
    created_at = fields.Function(
        lambda video: iso_utc(video.created_at), required=True, metadata={"type": "string", "format": "date-time"}
    )
    title = fields.String(required=True)
    description = fields.String(required=True)
    thumbnail_url = fields.Function(
        poster_url, required=True, allow_none=True, metadata={"type": "string", "format": "uri"}
    )
    category = fields.String(required=True, validate=validate.OneOf(CATEGORIES))


class VideoDetailSchema(VideoSchema):
    duration = fields.Float(required=True, metadata={"description": "Seconds."})
    resolutions = fields.List(
        fields.String(validate=validate.OneOf(RESOLUTIONS)), attribute="renditions", required=True
    )
    position = fields.Float(required=True, metadata={"description": "The viewer's position in seconds."})
    finished = fields.Boolean(required=True)
    storyboard_url = fields.Function(
        lambda video: external_url("videos.storyboard_track", video_id=video.id) if video.has_storyboard else None,
        required=True,
        allow_none=True,
        metadata={"type": "string", "format": "uri", "description": "The scrub previews' WebVTT track."},
    )
    subtitles = fields.List(fields.Nested(lambda: SubtitleSchema()), required=True)


class SubtitleSchema(Schema):
    language = fields.String(required=True, metadata={"description": "BCP 47, e.g. en or pt-BR."})
    label = fields.String(required=True)
    default = fields.Boolean(attribute="is_default", required=True)
    url = fields.Function(
        lambda track: external_url("videos.subtitle_file", video_id=track.video_id, track_id=track.id),
        required=True,
        metadata={"type": "string", "format": "uri", "description": "The whole track as WebVTT."},
    )


class ContinueItemSchema(VideoSchema):
    position = fields.Float(required=True)


class ProgressReplySchema(Schema):
    position = fields.Float(required=True)
    finished = fields.Boolean(required=True)


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
    q = fields.String(validate=[validate.Length(max=200), _storable_text], metadata=STORABLE_TEXT)
