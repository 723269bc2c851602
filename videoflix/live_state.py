"""What the metrics of a web process read at each scrape (videoflix/metrics.py counts the rest): the
queue's depth, videos by status and phase, viewers active now, unfinished uploads. Exported by the
web processes only (every replica reads the same state: take max() across them)."""

import logging

import sqlalchemy as sa
from prometheus_client.core import GaugeMetricFamily

from videoflix.extensions import db
from videoflix.queue import huey
from videoflix.uploads.models import Upload
from videoflix.videos import audience
from videoflix.videos.models import Video

log = logging.getLogger(__name__)


class LiveState:
    """Read at each scrape: what the database and the queue hold now."""

    def __init__(self, app):
        self.app = app

    def collect(self):
        with self.app.app_context():
            try:
                queue = GaugeMetricFamily("videoflix_queue_tasks", "Tasks in the queue.", labels=["state"])
                queue.add_metric(["pending"], huey.pending_count())
                queue.add_metric(["scheduled"], huey.scheduled_count())
                videos = GaugeMetricFamily(
                    "videoflix_videos", "Videos by status and phase.", labels=["status", "phase"]
                )
                by_state = sa.select(Video.status, Video.phase, sa.func.count()).group_by(Video.status, Video.phase)
                rows = db.session.execute(by_state).all()
                for status, phase, count in rows:
                    videos.add_metric([status, phase or ""], count)
                viewers = GaugeMetricFamily(
                    "videoflix_active_viewers",
                    f"Viewers whose player reported in the last {audience.ACTIVE_VIEWER_MINUTES} min.",
                )
                viewers.add_metric([], audience.active_viewers() or 0)
                count, pending_bytes = db.session.execute(
                    sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(Upload.offset), 0))
                ).one()
                uploads = GaugeMetricFamily("videoflix_uploads_in_progress", "Resumable uploads not finished.")
                uploads.add_metric([], count)
                upload_bytes = GaugeMetricFamily("videoflix_upload_bytes_pending", "Bytes of unfinished uploads.")
                upload_bytes.add_metric([], pending_bytes)
            except Exception as error:  # a scrape during an outage says so in the process's own series
                log.warning("metrics: the live state could not be read: %s", error)
                db.session.rollback()
                return
            finally:
                db.session.remove()
        yield from (queue, videos, viewers, uploads, upload_bytes)
