"""What staff see of the audience, read from watch progress (one row per viewer and video, upserted
by the player): views, completion and average position per video, who is watching now, and what
was watched most in the last week. Plain aggregates over an index on (video_id, updated_at)."""

from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa

from videoflix.extensions import db, utcnow
from videoflix.videos.models import Video, WatchProgress

ACTIVE_VIEWER_MINUTES = 5  # a player reports every few seconds while it plays
TOP_WEEK_DAYS = 7


@dataclass(frozen=True)
class Audience:
    views: int  # distinct viewers who started the video
    finished: int
    average_position: float  # seconds

    @property
    def completion(self):
        """Share of the viewers who watched to the end."""
        return self.finished / self.views if self.views else 0.0


NO_AUDIENCE = Audience(0, 0, 0.0)


def per_video(video_ids):
    """{video id: Audience} for the ids given (videos nobody watched are left out)."""
    if not video_ids:
        return {}
    rows = db.session.execute(
        sa.select(
            WatchProgress.video_id,
            sa.func.count(),
            sa.func.sum(sa.case((WatchProgress.finished, 1), else_=0)),
            sa.func.avg(WatchProgress.position),
        )
        .where(WatchProgress.video_id.in_(video_ids))
        .group_by(WatchProgress.video_id)
    ).all()
    return {
        video_id: Audience(views, finished or 0, float(position or 0)) for video_id, views, finished, position in rows
    }


def active_since():
    return utcnow() - timedelta(minutes=ACTIVE_VIEWER_MINUTES)


def active_viewers():
    """Viewers whose player reported in the last ACTIVE_VIEWER_MINUTES."""
    return db.session.scalar(
        sa.select(sa.func.count(sa.distinct(WatchProgress.user_id))).where(WatchProgress.updated_at >= active_since())
    )


def _ranked(since, limit):
    """[(video, viewers)] of the videos watched since `since`, most viewers first."""
    viewers = sa.func.count().label("viewers")
    rows = db.session.execute(
        sa.select(Video, viewers)
        .join(WatchProgress, WatchProgress.video_id == Video.id)
        .where(WatchProgress.updated_at >= since)
        .group_by(Video.id)
        .order_by(viewers.desc(), Video.id)
        .limit(limit)
    ).all()
    return [(video, count) for video, count in rows]


def watching_now(limit=10):
    """What is being watched now: videos whose players reported in the last few minutes."""
    return _ranked(active_since(), limit)


def most_watched_this_week(limit=10):
    """The videos with the most viewers in the last TOP_WEEK_DAYS days."""
    return _ranked(utcnow() - timedelta(days=TOP_WEEK_DAYS), limit)
