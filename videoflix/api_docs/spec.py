"""The OpenAPI 3.1 document of API.md, built by apispec from the app's URL rules and its marshmallow
schemas (MarshmallowPlugin). What a schema cannot say (codes, media types, cookies) is
declared here, next to the route it belongs to, with the texts and patterns the code itself uses."""

import re

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from marshmallow import Schema, fields

from videoflix.auth import routes as auth_routes
from videoflix.auth.schemas import EmailSchema, LoginUserSchema, NewPasswordSchema, RegisterSchema, UserSchema
from videoflix.media.ladder import RESOLUTIONS
from videoflix.storage import keys
from videoflix.validation import MAX_ID, STORABLE_TEXT
from videoflix.videos import playback, posters
from videoflix.videos import routes as video_routes
from videoflix.videos.schemas import (
    CatalogueQuerySchema,
    ContinueItemSchema,
    ProgressReplySchema,
    ProgressSchema,
    VideoDetailSchema,
    VideoSchema,
)

TITLE = "Videoflix API"
VERSION = "1.0"
OPENAPI_VERSION = "3.1.0"
JSON = "application/json"
RULE_VARIABLE = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")  # Flask's <id:video_id> is OpenAPI's {video_id}
ACCESS_COOKIE = [{"accessCookie": []}]
STRING = {"type": "string"}


# --- bodies that the code answers by hand (their texts live in the routes) ---


class LoginSchema(Schema):
    """Login reads these two strings itself: anything else is a 401, never a 400."""

    email = fields.String(required=True, metadata={"example": "viewer@example.com", **STORABLE_TEXT})
    password = fields.String(required=True, metadata={"format": "password", **STORABLE_TEXT})


class RegisteredSchema(Schema):
    user = fields.Nested(UserSchema, required=True)
    detail = fields.String(required=True)


class LoggedInSchema(Schema):
    detail = fields.String(required=True)
    user = fields.Nested(LoginUserSchema, required=True)


class RefreshedSchema(Schema):
    detail = fields.String(required=True)
    access = fields.String(required=True, metadata={"description": "The new access JWT (also set as its cookie)."})


class HealthSchema(Schema):
    status = fields.String(required=True, metadata={"enum": ["ok", "unavailable"]})
    database = fields.String(required=True, metadata={"enum": ["ok", "unavailable"]})
    queue = fields.String(required=True, metadata={"enum": ["ok", "unavailable"]})
    storage = fields.String(required=True, metadata={"enum": ["ok", "unavailable"]})


MESSAGE = {
    "type": "object",
    "required": ["detail"],
    "properties": {"detail": {"type": "string"}},
    "description": "Every error of the API that is not about fields.",
}
ERROR = {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}}
FIELD_ERRORS = {
    "type": "object",
    "description": 'Messages per field of the body, e.g. {"confirmed_password": ["Passwords do not match."]}.',
    "additionalProperties": {"type": "array", "items": {"type": "string"}},
}


# --- small builders: one place for the media types, the error bodies and the cookies ---


def ref(name):
    return {"$ref": f"#/components/schemas/{name}"}


def json_reply(description, schema=None, headers=None):
    reply = {"description": description, "content": {JSON: {"schema": schema or ref("Message")}}}
    if headers:
        reply["headers"] = headers
    return reply


def media_reply(description, media_type, schema=None):
    return {"description": description, "content": {media_type: {"schema": schema or STRING}}}


def json_body(schema):
    return {"required": True, "content": {JSON: {"schema": schema}}}


SET_COOKIE = {"Set-Cookie": {"description": "The session cookies (see the security schemes).", "schema": STRING}}
BAD_BODY = json_reply(
    "The body is not a JSON object, or a field is wrong.", {"anyOf": [ref("Message"), ref("FieldErrors")]}
)
TOO_LARGE = json_reply("The body is larger than the service accepts.")
CSRF = json_reply("The request carries session cookies but comes from an untrusted origin, or its X-CSRFToken differs.")
LIMITED = json_reply("Too many requests.", headers={"Retry-After": {"schema": {"type": "integer"}}})
UNAVAILABLE = json_reply(
    "A backend (database, queue or store) is briefly unavailable; try again.",
    headers={"Retry-After": {"schema": {"type": "integer"}}},
)
UNAUTHENTICATED = json_reply("No valid access token cookie.")
NOT_FOUND = json_reply("No such ready video, rendition or file.")
NOT_MODIFIED = {"description": "The cached copy (ETag / Last-Modified) is still current."}


def with_common(responses, writes=False, limited=False):
    """Every operation may answer 503; writes may be refused for CSRF or size; some are rate limited."""
    responses = {**responses, 503: UNAVAILABLE}
    if writes:
        responses.setdefault(400, BAD_BODY)
        responses.setdefault(403, CSRF)
        responses[413] = TOO_LARGE
    if limited:
        responses[429] = LIMITED
    return responses


def operation(summary, responses, tags, secured=False, writes=False, limited=False, **fields_):
    op = {"summary": summary, "tags": tags, "responses": with_common(responses, writes, limited), **fields_}
    if secured:
        op["security"] = ACCESS_COOKIE
        op["responses"].setdefault(401, UNAUTHENTICATED)
    else:
        op["security"] = []
    return op


def path_param(name, schema, description=None):
    param = {"in": "path", "name": name, "required": True, "schema": schema}
    if description:
        param["description"] = description
    return param


VIDEO_ID = path_param("video_id", {"type": "integer", "minimum": 1, "maximum": MAX_ID})
TRACK_ID = path_param("track_id", {"type": "integer", "minimum": 1, "maximum": MAX_ID})
AUDIO_TRACK = path_param("track", {"type": "integer", "minimum": 1, "maximum": MAX_ID})
RESOLUTION = path_param(
    "resolution",
    {"type": "string", "enum": list(RESOLUTIONS)},
    "A rendition; one above the source's height answers with the best that exists.",
)
UID = path_param("uidb64", {"type": "string"}, "The user id, URL-safe base64 without padding.")
TOKEN = path_param("token", {"type": "string"}, "The opaque token of the emailed link.")
REFRESH_COOKIE = {
    "in": "cookie",
    "name": "refresh_token",
    "required": True,
    "schema": {"type": "string", "minLength": 1},
    "description": "Set by login (HttpOnly); without it, 400.",
}


def pattern(regex):
    return {"type": "string", "pattern": f"^{regex.pattern}$"}


def media_file(summary, media_type, params, ranges=False):
    """A file of a published version: 200 (206 with Range), 304 on revalidation, 404 JSON."""
    responses = {200: media_reply(summary, media_type), 304: NOT_MODIFIED, 404: NOT_FOUND}
    if ranges:
        responses[206] = media_reply("The requested byte range.", media_type)
        responses[416] = json_reply("The range lies outside the file.")
    return {"get": operation(summary, responses, ["playback"], secured=True, parameters=params)}


# --- the operations of API.md, by view function ---


def auth_paths():
    a = auth_routes
    yield (
        a.register,
        {
            "post": operation(
                "Create an inactive account and email its activation link",
                {201: json_reply("Registered; nothing secret is returned.", ref("Registered"))},
                ["auth"],
                writes=True,
                limited=True,
                requestBody=json_body(ref("Register")),
            )
        },
    )
    yield (
        a.activate,
        {
            "get": operation(
                "Activate an account from the emailed link",
                {
                    200: json_reply(
                        "Activated.",
                        {"type": "object", "required": ["message"], "properties": {"message": {"type": "string"}}},
                    ),
                    400: json_reply(a.INVALID_ACTIVATION, ref("Error")),
                },  # fmt: skip
                ["auth"],
                parameters=[UID, TOKEN],
            )
        },
    )
    yield (
        a.login,
        {
            "post": operation(
                "Sign in: sets the access_token, refresh_token and csrftoken cookies",
                {
                    200: json_reply("Signed in.", ref("LoggedIn"), headers=SET_COOKIE),
                    401: json_reply(a.INVALID_CREDENTIALS),
                    403: json_reply(f"{a.NOT_ACTIVATED} (Or a CSRF refusal.)"),
                },
                ["auth"],
                writes=True,
                limited=True,
                requestBody=json_body(ref("Login")),
            )
        },
    )
    yield (
        a.refresh,
        {
            "post": operation(
                "A new access token from the refresh_token cookie",
                {
                    200: json_reply("Refreshed.", ref("Refreshed"), headers=SET_COOKIE),
                    400: json_reply(a.REFRESH_MISSING),
                    401: json_reply(a.REFRESH_INVALID),
                },
                ["auth"],
                writes=True,
                limited=True,
                parameters=[REFRESH_COOKIE],
            )
        },
    )
    yield (
        a.logout,
        {
            "post": operation(
                "Sign out: revokes the session and deletes the three cookies",
                {200: json_reply(a.LOGGED_OUT, headers=SET_COOKIE), 400: json_reply(a.REFRESH_MISSING)},
                ["auth"],
                writes=True,
                parameters=[REFRESH_COOKIE],
            )
        },
    )
    yield (
        a.password_reset,
        {
            "post": operation(
                "Email a password reset link (the same answer whether or not the address has an account)",
                {200: json_reply(a.RESET_SENT)},
                ["auth"],
                writes=True,
                limited=True,
                requestBody=json_body(ref("Email")),
            )
        },
    )
    yield (
        a.password_confirm,
        {
            "post": operation(
                "Set a new password from the emailed link (revokes every earlier session)",
                {
                    200: json_reply(a.RESET_DONE),
                    400: json_reply(
                        "Field errors, or an invalid or expired link.",
                        {"anyOf": [ref("Message"), ref("FieldErrors"), ref("Error")]},
                    ),
                },
                ["auth"],
                writes=True,
                limited=True,
                parameters=[UID, TOKEN],
                requestBody=json_body(ref("NewPassword")),
            )
        },
    )


def video_paths():
    v = video_routes
    yield (
        v.list_videos,
        {
            "get": operation(
                "The catalogue: ready videos, newest first (gzip or brotli when accepted)",
                {
                    200: json_reply("The videos.", {"type": "array", "items": ref("Video")}),
                    400: json_reply("A query parameter is wrong.", ref("FieldErrors")),
                },  # fmt: skip
                ["videos"],
                secured=True,
                parameters=[{"in": "query", "schema": CatalogueQuerySchema}],
            )
        },
    )
    yield (
        v.continue_watching,
        {
            "get": operation(
                "The viewer's started, unfinished videos, most recently watched first",
                {200: json_reply("The videos with their positions.", {"type": "array", "items": ref("ContinueItem")})},
                ["videos"],
                secured=True,
            )
        },
    )
    yield (
        v.video_detail,
        {
            "get": operation(
                "One ready video: the list fields, duration, renditions, position, subtitles",
                {200: json_reply("The video.", ref("VideoDetail")), 404: NOT_FOUND},
                ["videos"],
                secured=True,
                parameters=[VIDEO_ID],
            )
        },
    )
    yield (
        v.record_progress,
        {
            "put": operation(
                "Remember the viewer's position (clamped to the duration; the end counts as finished)",
                {200: json_reply("The stored position.", ref("ProgressReply")), 404: NOT_FOUND},
                ["videos"],
                secured=True,
                writes=True,
                limited=True,
                parameters=[VIDEO_ID],
                requestBody=json_body(ref("Progress")),
            )
        },
    )
    playlist = keys.CONTENT_TYPES[".m3u8"]
    vtt = keys.CONTENT_TYPES[".vtt"]
    yield v.master_playlist, media_file("The multivariant playlist (adaptive bitrate)", playlist, [VIDEO_ID])
    yield v.media_playlist, media_file("A rendition's media playlist (relative segment URIs)", playlist,
                                       [VIDEO_ID, RESOLUTION])  # fmt: skip
    segment = [VIDEO_ID, RESOLUTION, path_param("segment", pattern(playback.SEGMENT_NAME))]
    yield v.media_segment, media_file("A segment (MPEG-TS)", keys.CONTENT_TYPES[".ts"], segment, ranges=True)
    yield v.audio_playlist, media_file("An alternative audio track's playlist (the source's second track is 1)",
                                       playlist, [VIDEO_ID, AUDIO_TRACK])  # fmt: skip
    audio_segment = [VIDEO_ID, AUDIO_TRACK, path_param("segment", pattern(playback.SEGMENT_NAME))]
    yield v.audio_segment, media_file("An audio-only segment (MPEG-TS)", keys.CONTENT_TYPES[".ts"], audio_segment,
                                      ranges=True)  # fmt: skip
    yield v.storyboard_track, media_file("The scrub previews' WebVTT track", vtt, [VIDEO_ID])
    sheet = [VIDEO_ID, path_param("name", pattern(playback.SHEET_NAME))]
    yield v.storyboard_sheet, media_file("A sheet of scrub preview frames", "image/jpeg", sheet, ranges=True)
    yield v.subtitle_playlist, media_file("A subtitle rendition's playlist", playlist, [VIDEO_ID, TRACK_ID])
    cue_segment = [VIDEO_ID, TRACK_ID, path_param("name", pattern(playback.SUBTITLE_SEGMENT_NAME))]
    yield v.subtitle_segment, media_file("A WebVTT segment of a subtitle rendition", vtt, cue_segment, ranges=True)
    yield v.subtitle_file, media_file("A subtitle track whole, as WebVTT", vtt, [VIDEO_ID, TRACK_ID], ranges=True)


def other_paths():
    from videoflix import health

    yield (
        health.health,
        {
            "get": operation(
                "Whether the database, the queue and the media store answer",
                {200: json_reply("All answer.", ref("Health")), 503: json_reply("One does not.", ref("Health"))},
                ["service"],
            )
        },
    )
    poster = {
        "get": {
            "summary": "A poster (public: thumbnail_url points here, loaded without cookies)",
            "tags": ["videos"],
            "security": [],
            "parameters": [path_param("filename", pattern(keys.POSTER_NAME))],
            "responses": {
                200: media_reply("The image.", "image/*", {"type": "string", "format": "binary"}),
                206: media_reply("The requested byte range.", "image/*", {"type": "string", "format": "binary"}),
                304: NOT_MODIFIED,
                404: media_reply("No such poster (outside /api/, so an HTML page).", "text/html"),
                416: media_reply("The range lies outside the file.", "text/html"),
            },
        }
    }
    yield posters.poster, poster


SCHEMAS = {
    "Register": RegisterSchema,
    "Registered": RegisteredSchema,
    "Login": LoginSchema,
    "LoggedIn": LoggedInSchema,
    "Refreshed": RefreshedSchema,
    "Email": EmailSchema,
    "NewPassword": NewPasswordSchema,
    "Video": VideoSchema,
    "VideoDetail": VideoDetailSchema,
    "ContinueItem": ContinueItemSchema,
    "Progress": ProgressSchema,
    "ProgressReply": ProgressReplySchema,
    "Health": HealthSchema,
}
PLAIN_SCHEMAS = {"Message": MESSAGE, "Error": ERROR, "FieldErrors": FIELD_ERRORS}


def build(app):
    """The document as a dict, for `app` (its rules give the paths)."""
    spec = APISpec(
        title=TITLE,
        version=VERSION,
        openapi_version=OPENAPI_VERSION,
        plugins=[MarshmallowPlugin()],
        info={"description": "The HTTP contract of the Videoflix backend (API.md)."},
    )
    for name, schema in SCHEMAS.items():
        spec.components.schema(name, schema=schema)
    for name, schema in PLAIN_SCHEMAS.items():
        spec.components.schema(name, schema)
    spec.components.security_scheme(
        "accessCookie",
        {"type": "apiKey", "in": "cookie", "name": app.config["JWT_ACCESS_COOKIE_NAME"],
         "description": "The access JWT that login sets (HttpOnly). Writes with it also need a trusted Origin."},
    )  # fmt: skip
    endpoints = {view: endpoint for endpoint, view in app.view_functions.items()}
    for group in (auth_paths(), video_paths(), other_paths()):
        for view, operations in group:
            # Every rule of the view: the segment answers with and without a trailing slash.
            rules = sorted(app.url_map.iter_rules(endpoints[view]), key=lambda rule: len(rule.rule))
            for number, rule in enumerate(rules):
                suffix = f"_{number + 1}" if number else ""
                named = {method: {**op, "operationId": view.__name__ + suffix} for method, op in operations.items()}
                spec.path(path=RULE_VARIABLE.sub(r"{\1}", rule.rule), operations=named)
    return spec.to_dict()
