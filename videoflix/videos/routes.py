"""The video endpoints of API.md: catalogue, detail, and authorised HLS playlists and segments."""

import sqlalchemy as sa
from flask import Blueprint, Response, abort, current_app, g, jsonify, request

from videoflix.auth.tokens import login_required
from videoflix.extensions import db, limiter
from videoflix.validation import load_body
from videoflix.videos import catalogue, playback, progress
from videoflix.videos.models import Subtitle, Video
from videoflix.videos.schemas import (
    CatalogueQuerySchema,
    ContinueItemSchema,
    ProgressReplySchema,
    ProgressSchema,
    SubtitleSchema,
    VideoDetailSchema,
)

bp = Blueprint("videos", __name__, url_prefix="/api/video")


def ready_video(video_id):
    video = db.session.scalar(sa.select(Video).where(Video.id == video_id, catalogue.playable()))
    if video is None:
        abort(404, "Video not found.")
    return video


@bp.get("/")
@login_required
def list_videos():
    args = CatalogueQuerySchema().load(request.args)
    encoding = request.accept_encodings.best_match(["br", "gzip"])  # None: neither is acceptable
    body, encoding = catalogue.catalogue_body(args.get("category"), args.get("q"), encoding)
    response = Response(body, mimetype="application/json")
    response.vary.add("Accept-Encoding")
    if encoding:
        response.headers["Content-Encoding"] = encoding
    return response


def viewer_id():
    return int(g.access_claims["sub"])


def progress_limit():
    return current_app.config["RATELIMIT_PROGRESS"]


@bp.get("/<id:video_id>/")
@login_required
def video_detail(video_id):
    video = ready_video(video_id)
    position, finished = progress.of_video(viewer_id(), video.id)
    tracks = db.session.scalars(sa.select(Subtitle).where(Subtitle.video_id == video.id).order_by(Subtitle.id))
    return {
        **VideoDetailSchema().dump(video),
        "position": position,
        "finished": finished,
        "subtitles": SubtitleSchema(many=True).dump(tracks),
    }


@bp.get("/continue/")
@login_required
def continue_watching():
    return jsonify(ContinueItemSchema(many=True).dump(progress.continue_watching(viewer_id())))


@bp.put("/<id:video_id>/progress/")
@login_required
@limiter.limit(progress_limit, key_func=lambda: f"progress:{viewer_id()}")
def record_progress(video_id):
    position = load_body(ProgressSchema())["position"]
    stored = progress.record(viewer_id(), video_id, position)
    if stored is None:
        abort(404, "Video not found.")
    return ProgressReplySchema().dump({"position": stored[0], "finished": stored[1]})


@bp.get("/<id:video_id>/master.m3u8")
@login_required
def master_playlist(video_id):
    return playback.master(video_id)


@bp.get("/<id:video_id>/audio/<id:track>/index.m3u8")
@login_required
def audio_playlist(video_id, track):
    return playback.audio_playlist(video_id, track)


@bp.get("/<id:video_id>/audio/<id:track>/<segment>")
@login_required
def audio_segment(video_id, track, segment):
    return playback.audio_segment(video_id, track, segment)


@bp.get("/<id:video_id>/storyboard.vtt")
@login_required
def storyboard_track(video_id):
    return playback.storyboard_track(video_id)


@bp.get("/<id:video_id>/storyboard/<name>")
@login_required
def storyboard_sheet(video_id, name):
    return playback.storyboard_sheet(video_id, name)


@bp.get("/<id:video_id>/subs/<id:track_id>/index.m3u8")
@login_required
def subtitle_playlist(video_id, track_id):
    return playback.subtitle_playlist(video_id, track_id)


@bp.get("/<id:video_id>/subs/<id:track_id>/<name>")
@login_required
def subtitle_segment(video_id, track_id, name):
    return playback.subtitle_segment(video_id, track_id, name)


@bp.get("/<id:video_id>/subtitles/<id:track_id>.vtt")
@login_required
def subtitle_file(video_id, track_id):
    return playback.subtitle_file(video_id, track_id)


@bp.get("/<id:video_id>/<resolution>/index.m3u8")
@login_required
def media_playlist(video_id, resolution):
    return playback.media_playlist(video_id, resolution)


@bp.get("/<id:video_id>/<resolution>/<segment>")
@bp.get("/<id:video_id>/<resolution>/<segment>/")
@login_required
def media_segment(video_id, resolution, segment):
    return playback.segment(video_id, resolution, segment)
