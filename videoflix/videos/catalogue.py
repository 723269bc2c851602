"""The catalogue of ready videos: one query, cached as finished JSON, invalidated on change.

Invalidation is a new version key, so every cached variant (hosts, categories) goes at once."""

import json
import uuid

import sqlalchemy as sa
from flask import request
from sqlalchemy import event
from sqlalchemy.orm import Session

from videoflix.extensions import cache, db
from videoflix.videos.models import Status, Video
from videoflix.videos.schemas import VideoSchema

VERSION_KEY = "catalogue:version"
# A change to any of these (or an insert or delete) can change what the catalogue shows.
LISTED_FIELDS = ("title", "description", "category", "poster_path", "status", "created_at")


def ready_videos(category=None, search=None):
    query = sa.select(Video).where(Video.status == Status.READY)
    if category:
        query = query.where(sa.func.lower(Video.category) == category.lower())
    if search:
        pattern = f"%{search.lower()}%"
        query = query.where(
            sa.or_(sa.func.lower(Video.title).like(pattern), sa.func.lower(Video.description).like(pattern))
        )
    return db.session.scalars(query.order_by(Video.created_at.desc(), Video.id.desc())).all()


def catalogue_json(category=None, search=None):
    """The list body as JSON text; searches are not cached, everything else is."""
    if search:
        return _render(category, search)
    version = cache.get(VERSION_KEY) or "0"
    key = f"catalogue:{version}:{request.host_url}:{(category or '').lower()}"
    body = cache.get(key)
    if body is None:
        body = _render(category, None)
        cache.set(key, body, timeout=3600)
    return body


def _render(category, search):
    return json.dumps(VideoSchema(many=True).dump(ready_videos(category, search)), separators=(",", ":"))


def invalidate():
    cache.set(VERSION_KEY, uuid.uuid4().hex, timeout=0)


def _changes_catalogue(session):
    if any(isinstance(obj, Video) for obj in (*session.new, *session.deleted)):
        return True
    for obj in session.dirty:
        if isinstance(obj, Video):
            state = sa.inspect(obj)
            if any(state.attrs[name].history.has_changes() for name in LISTED_FIELDS):
                return True
    return False


@event.listens_for(Session, "before_flush")
def _note_catalogue_change(session, _context, _instances):
    if _changes_catalogue(session):
        session.info["catalogue_changed"] = True


@event.listens_for(Session, "after_commit")
def _invalidate_after_commit(session):
    if session.info.pop("catalogue_changed", False):
        invalidate()


@event.listens_for(Session, "after_rollback")
def _forget_on_rollback(session):
    session.info.pop("catalogue_changed", None)
