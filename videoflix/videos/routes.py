"""The video endpoints of API.md: catalogue, detail, and authorised HLS playlists and segments."""

import sqlalchemy as sa
from flask import Blueprint, Response, abort, request

from videoflix.auth.tokens import login_required
from videoflix.extensions import db
from videoflix.videos import catalogue, playback
from videoflix.videos.models import Video
from videoflix.videos.schemas import CatalogueQuerySchema, VideoDetailSchema

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
    body = catalogue.catalogue_json(args.get("category"), args.get("q"))
    return Response(body, mimetype="application/json")


@bp.get("/<id:video_id>/")
@login_required
def video_detail(video_id):
    return VideoDetailSchema().dump(ready_video(video_id))


@bp.get("/<id:video_id>/master.m3u8")
@login_required
def master_playlist(video_id):
    return playback.master(video_id)


@bp.get("/<id:video_id>/<resolution>/index.m3u8")
@login_required
def media_playlist(video_id, resolution):
    return playback.media_playlist(video_id, resolution)


@bp.get("/<id:video_id>/<resolution>/<segment>")
@bp.get("/<id:video_id>/<resolution>/<segment>/")
@login_required
def media_segment(video_id, resolution, segment):
    return playback.segment(video_id, resolution, segment)
