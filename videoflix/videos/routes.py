"""The video endpoints of API.md: catalogue, detail, and authorised HLS playlists and segments."""

import re

import sqlalchemy as sa
from flask import Blueprint, Response, abort, request
from werkzeug.exceptions import NotFound

from videoflix.auth.tokens import login_required
from videoflix.extensions import db
from videoflix.media.ladder import RESOLUTIONS
from videoflix.storage import delivery
from videoflix.storage.keys import PLAYLIST_TYPE, SEGMENT_TYPE
from videoflix.videos import catalogue
from videoflix.videos.models import Video
from videoflix.videos.schemas import CatalogueQuerySchema, VideoDetailSchema

bp = Blueprint("videos", __name__, url_prefix="/api/video")

SEGMENT_NAME = re.compile(r"[0-9]{3,5}\.ts")  # matched whole (fullmatch); ASCII digits only
PLAYLIST_MAX_AGE = 0  # revalidate: cheap 304s, and a re-transcode shows at once
SEGMENT_MAX_AGE = 3600


def ready_video(video_id):
    video = db.session.scalar(sa.select(Video).where(Video.id == video_id, catalogue.playable()))
    if video is None:
        abort(404, "Video not found.")
    return video


def published(video_id):
    """(hls_path, renditions) of a playable video; 404 otherwise."""
    found = catalogue.published_renditions(video_id)
    if found is None:
        abort(404, "Video not found.")
    return found


def send_published(video_id, resolution, filename, mimetype, max_age):
    """A file of the video's published version (of the rendition answering `resolution`, or the
    master playlist). A publish that lands between the lookup and the send removes the version just
    looked up: then the video is looked up once more and the file sent from its new version."""
    for last_try in (False, True):
        hls_path, renditions = published(video_id)
        folder = hls_path if resolution is None else f"{hls_path}/{rendition_for(renditions, resolution)}"
        try:
            return delivery.send(f"{folder}/{filename}", mimetype, max_age)
        except NotFound:
            catalogue.forget_published(video_id)
            if last_try or catalogue.published_renditions(video_id) in (None, (hls_path, renditions)):
                raise


def rendition_for(renditions, resolution):
    """The rendition that answers `resolution`: itself, or the best one below it (no upscaling
    happened), or the smallest one when nothing is below."""
    if resolution not in RESOLUTIONS:
        abort(404, "Unknown resolution.")
    wanted = RESOLUTIONS.index(resolution)
    existing = [name for name in RESOLUTIONS if name in renditions]
    if not existing:
        abort(404, "Video not found.")
    at_most = [name for name in existing if RESOLUTIONS.index(name) <= wanted]
    return at_most[-1] if at_most else existing[0]


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
    return send_published(video_id, None, "master.m3u8", PLAYLIST_TYPE, PLAYLIST_MAX_AGE)


@bp.get("/<id:video_id>/<resolution>/index.m3u8")
@login_required
def media_playlist(video_id, resolution):
    return send_published(video_id, resolution, "index.m3u8", PLAYLIST_TYPE, PLAYLIST_MAX_AGE)


@bp.get("/<id:video_id>/<resolution>/<segment>")
@bp.get("/<id:video_id>/<resolution>/<segment>/")
@login_required
def media_segment(video_id, resolution, segment):
    if not SEGMENT_NAME.fullmatch(segment):
        abort(404, "Segment not found.")
    return send_published(video_id, resolution, segment, SEGMENT_TYPE, SEGMENT_MAX_AGE)
