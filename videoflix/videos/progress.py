"""Watch progress: where each viewer is in each video, for "continue watching". A player reports
every ~10 s, so recording it is one statement; per-user data never enters the shared catalogue."""

from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from videoflix.extensions import db
from videoflix.videos.catalogue import LIST_COLUMNS, playable
from videoflix.videos.models import Video, WatchProgress

# The end of a video counts as watched (its credits, say): the last 3% or the last 30 s, whichever
# is longer, but never more than a tenth of a short video.
FINISHED_SHARE, FINISHED_SECONDS, FINISHED_CAP_SHARE = 0.03, 30.0, 0.1
CONTINUE_LIMIT = 50


def _larger(a, b):
    return sa.case((a > b, a), else_=b)


def _smaller(a, b):
    return sa.case((a < b, a), else_=b)


def record(user_id, video_id, position):
    """Upsert the viewer's position (clamped to the video's end) in one statement; returns the stored
    (position, finished), or None when there is no such playable video."""
    duration = sa.func.coalesce(Video.duration, 0.0)
    clamped = _smaller(sa.literal(position, sa.Float), duration)
    tail = _smaller(_larger(FINISHED_SHARE * duration, FINISHED_SECONDS), FINISHED_CAP_SHARE * duration)
    now = sa.literal(datetime.now(UTC), sa.DateTime(timezone=True))
    source = sa.select(sa.literal(user_id, sa.Integer), Video.id, clamped, (duration - clamped) <= tail, now).where(
        Video.id == video_id, playable()
    )
    dialect = postgresql if db.session.get_bind().dialect.name == "postgresql" else sqlite
    insert = dialect.insert(WatchProgress).from_select(
        ["user_id", "video_id", "position", "finished", "updated_at"], source
    )
    upsert = insert.on_conflict_do_update(
        index_elements=["user_id", "video_id"],
        set_={name: getattr(insert.excluded, name) for name in ("position", "finished", "updated_at")},
    ).returning(WatchProgress.position, WatchProgress.finished)
    row = db.session.execute(upsert).first()
    db.session.commit()
    return None if row is None else (row.position, bool(row.finished))


def of_video(user_id, video_id):
    """(position, finished) of the viewer in the video; (0, False) before they start it."""
    row = db.session.execute(
        sa.select(WatchProgress.position, WatchProgress.finished).where(
            WatchProgress.user_id == user_id, WatchProgress.video_id == video_id
        )
    ).first()
    return (row.position, row.finished) if row else (0.0, False)


def continue_watching(user_id):
    """The viewer's started, unfinished playable videos, most recently watched first (list columns
    plus `position`)."""
    query = (
        sa.select(*LIST_COLUMNS, WatchProgress.position)
        .join(WatchProgress, WatchProgress.video_id == Video.id)
        .where(WatchProgress.user_id == user_id, WatchProgress.position > 0, ~WatchProgress.finished, playable())
        .order_by(WatchProgress.updated_at.desc(), Video.id.desc())
        .limit(CONTINUE_LIMIT)
    )
    return db.session.execute(query).all()
