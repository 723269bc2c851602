"""Prometheus metrics, with the maintained client (prometheus-client): one small dependency that writes the
exposition format itself, where OpenTelemetry would add an SDK and an exporter for the same text.

Each process (the web, each worker) serves its metrics on its own port, METRICS_PORT, never through
the public nginx server: `flask serve` and `flask worker` start it when it is set. Counted as they
happen: requests by route template, method and status, with their latency; segments and playlists
authorised and their bytes; every transcode part and pass by outcome, their durations, encode speed
(source seconds per wall second) and time to playable. Read at each scrape, from the database and
the queue: queue depth, videos by status and phase, viewers active in the last minutes, uploads in
progress and their bytes."""

import logging
import time

from flask import g, request
from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server

log = logging.getLogger(__name__)
COUNTED = CollectorRegistry()  # this process's counters; the scrape's registry adds live readings

HTTP_REQUESTS = Counter(
    "videoflix_http_requests_total", "HTTP requests answered.", ["route", "method", "status"], registry=COUNTED
)
HTTP_LATENCY = Histogram(
    "videoflix_http_request_duration_seconds", "Time to answer a request (not to stream its body).",
    ["route", "method"], buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30), registry=COUNTED,
)  # fmt: skip
MEDIA_REQUESTS = Counter("videoflix_media_requests_total", "Playlists and segments authorised.", ["kind"],
                         registry=COUNTED)  # fmt: skip
MEDIA_BYTES = Counter("videoflix_media_bytes_total", "Bytes sent by the app (not by nginx).", ["kind"],
                      registry=COUNTED)  # fmt: skip
PARTS = Counter(
    "videoflix_transcode_parts_total", "Transcode parts and passes ended, by kind and outcome "
    "(done, failed, retried, cancelled, skipped).", ["kind", "outcome"], registry=COUNTED,
)  # fmt: skip
PART_SECONDS = Histogram(
    "videoflix_transcode_part_duration_seconds", "Wall time of a transcode part or pass.", ["kind"],
    buckets=(0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600), registry=COUNTED,
)  # fmt: skip
ENCODE_SPEED = Histogram(
    "videoflix_encode_speed_ratio", "Seconds of film encoded per wall second (x realtime), per chunk or pass.",
    ["kind"], buckets=(0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32, 64), registry=COUNTED,
)  # fmt: skip
TIME_TO_PLAYABLE = Histogram(
    "videoflix_time_to_playable_seconds", "From a transcode's start to its first segment stored.",
    buckets=(1, 2.5, 5, 10, 15, 30, 60, 120, 300, 600), registry=COUNTED,
)  # fmt: skip


def part_ended(kind, outcome, seconds=None, film_seconds=None):
    PARTS.labels(kind, outcome).inc()
    if seconds is not None:
        PART_SECONDS.labels(kind).observe(seconds)
        if film_seconds:
            ENCODE_SPEED.labels(kind).observe(film_seconds / max(seconds, 1e-3))


def playable_after(seconds):
    TIME_TO_PLAYABLE.observe(seconds)


# --- the web side ---


MEDIA_KINDS = {"video/MP2T": "segment", "application/vnd.apple.mpegurl": "playlist"}


def init_app(app):
    """Count every request, when this process exports its metrics (nobody reads them otherwise)."""
    if not app.config["METRICS_PORT"]:
        return

    @app.before_request
    def _start_timer():
        g.metrics_started = time.perf_counter()

    @app.after_request
    def _count(response):
        started = g.pop("metrics_started", None)
        route = request.url_rule.rule if request.url_rule is not None else "(unmatched)"
        HTTP_REQUESTS.labels(route, request.method, str(response.status_code)).inc()
        if started is not None:
            HTTP_LATENCY.labels(route, request.method).observe(time.perf_counter() - started)
        if response.status_code in (200, 206) and response.mimetype in MEDIA_KINDS:
            kind = MEDIA_KINDS[response.mimetype]
            MEDIA_REQUESTS.labels(kind).inc()
            if response.content_length:
                MEDIA_BYTES.labels(kind).inc(response.content_length)
        return response


class _Counted:
    def collect(self):
        yield from COUNTED.collect()


def serve(port, collectors=()):
    """Serve this process's counters, and what `collectors` read at each scrape, on `port` (every
    interface: keep it off the public network). Each process exports its own: Prometheus adds the
    instance label and sums across web replicas and workers."""
    found = CollectorRegistry()
    for collector in (_Counted(), *collectors):
        found.register(collector)
    server, _thread = start_http_server(port, registry=found)
    log.info("metrics on port %s", port)
    return server
