"""Catalogue: `GET /api/video/` with 10, 1,000 and 10,000 ready videos: SQL queries per request and
latency with a cold cache (invalidated before every request) and a warm one, and the bytes on the
wire with gzip and brotli (and the first request that makes each). In-process WSGI (the Flask test
client), SQLite by default; `--database-url` / `--redis-url` measure PostgreSQL and Redis.

    python -m bench.catalogue [--database-url URL] [--redis-url URL]
"""

import argparse
import gzip
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import brotli
import sqlalchemy as sa

from bench.common import machine, percentile, table
from config import database_url
from videoflix import create_app
from videoflix.auth.models import User
from videoflix.auth.tokens import new_access_token
from videoflix.extensions import db
from videoflix.videos import catalogue
from videoflix.videos.models import CATEGORIES, Status, Video

SIZES = (10, 1_000, 10_000)
COLD_REQUESTS = 20
WARM_REQUESTS = 200
WARM_P50_GOAL_MS = 5.0
COLD_P50_GOAL_MS = 50.0  # a rebuild after a change, at 10,000 videos (issue 12)
WIRE_GOAL = 0.2  # compressed list bytes ÷ the JSON body (issue 12)


def fill(count):
    start = datetime.now(UTC) - timedelta(days=30)
    rows = [
        {
            "title": f"Film {index}",
            "description": f"A generated film, number {index}, for the catalogue benchmark.",
            "category": CATEGORIES[index % len(CATEGORIES)],
            "status": Status.READY,
            "progress": 100,
            "poster_path": f"thumbnails/{index:032x}.jpg",
            "hls_path": f"hls/{index}/v1",
            "renditions": ["480p", "720p"],
            "poster_uploaded": False,
            "created_at": start + timedelta(minutes=index),
            "updated_at": start,
        }
        for index in range(count)
    ]
    db.session.execute(sa.insert(Video), rows)
    db.session.commit()


def timed_requests(client, count, before_each=None):
    timings = []
    for _ in range(count):
        if before_each:
            before_each()
        started = time.perf_counter()
        response = client.get("/api/video/")
        timings.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            raise SystemExit(f"GET /api/video/ answered {response.status_code}: no figure reported")
    return timings, response


def measure(config, count):
    app = create_app(config)
    with app.app_context():
        db.drop_all()
        db.create_all()
        user = User(email="bench@example.com", is_active=True, password_hash="x")
        db.session.add(user)
        db.session.commit()
        fill(count)
        token = new_access_token(user.id, user.token_version)
        engine = db.engine
    client = app.test_client()
    client.set_cookie("access_token", token)
    statements = []
    sa.event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2]))

    def invalidate():
        with app.app_context():
            catalogue.invalidate()

    invalidate()
    client.get("/api/video/")
    queries_cold = len(statements)
    statements.clear()
    cold, response = timed_requests(client, COLD_REQUESTS, invalidate)
    if len(response.get_json()) != count:
        raise SystemExit(f"the list holds {len(response.get_json())} videos, not {count}: no figure reported")
    statements.clear()
    client.get("/api/video/")
    queries_warm = len(statements)
    warm, _ = timed_requests(client, WARM_REQUESTS)
    plain = response.get_data()
    wire = {}
    for encoding, decompress in (("gzip", gzip.decompress), ("br", brotli.decompress)):
        invalidate()  # the first request for an encoding after a change makes it: time that
        client.get("/api/video/")
        started = time.perf_counter()
        encoded = client.get("/api/video/", headers={"Accept-Encoding": encoding})
        first = (time.perf_counter() - started) * 1000
        again = client.get("/api/video/", headers={"Accept-Encoding": encoding})
        if encoded.headers.get("Content-Encoding") != encoding or decompress(again.get_data()) != plain:
            raise SystemExit(f"the {encoding} body does not decode to the list: no figure reported")
        wire[encoding] = (len(again.get_data()) / len(plain), first)
    with app.app_context():
        db.session.remove()
        db.drop_all()
    return {
        "count": count,
        "bytes": len(response.get_data()),
        "queries_cold": queries_cold,
        "queries_warm": queries_warm,
        "cold": (percentile(cold, 0.5), percentile(cold, 0.99)),
        "warm": (percentile(warm, 0.5), percentile(warm, 0.99)),
        "wire": wire,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url")
    parser.add_argument("--redis-url")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="videoflix-bench-") as tmp:
        folder = Path(tmp)
        config = {
            "SQLALCHEMY_DATABASE_URI": database_url(args.database_url) or f"sqlite:///{folder / 'bench.sqlite3'}",
            "REDIS_URL": args.redis_url,
            "CACHE_DIR": str(folder / "cache"),
            "MEDIA_ROOT": str(folder / "media"),
            "SECRET_KEY": "bench-secret-key-0123456789-abcdefghijklmnop",
        }
        backend = "Redis" if args.redis_url else "on-disk"
        print(f"## Catalogue: GET /api/video/ ({config['SQLALCHEMY_DATABASE_URI'].split(':')[0]}, {backend} cache)\n")
        print(f"{machine()}; {COLD_REQUESTS} cold and {WARM_REQUESTS} warm requests per size\n")
        results = [measure(config, count) for count in SIZES]
    rows = [
        [f"{r['count']:,}", f"{r['bytes'] / 1024:.0f} KiB", r["queries_cold"], r["queries_warm"],
         f"{r['cold'][0]:.2f} / {r['cold'][1]:.2f}", f"{r['warm'][0]:.2f} / {r['warm'][1]:.2f}"]
        for r in results
    ]  # fmt: skip
    print(table(["videos", "body", "SQL cold", "SQL warm", "cold p50 / p99 ms", "warm p50 / p99 ms"], rows))
    print()
    print(table(["videos", "gzip ÷ body", "first gzip request ms", "br ÷ body", "first br request ms"],
                [[f"{r['count']:,}", f"{r['wire']['gzip'][0]:.3f}", f"{r['wire']['gzip'][1]:.1f}",
                  f"{r['wire']['br'][0]:.3f}", f"{r['wire']['br'][1]:.1f}"] for r in results]))  # fmt: skip
    same_queries = len({(r["queries_cold"], r["queries_warm"]) for r in results}) == 1
    warm_p50, cold_p50 = results[-1]["warm"][0], results[-1]["cold"][0]
    print()
    print(f"- goal {'met' if same_queries else 'MISSED'}: the same number of SQL queries at every size")
    print(f"- goal {'met' if warm_p50 <= WARM_P50_GOAL_MS else 'MISSED'}: warm p50 {warm_p50:.2f} ms at 10,000 (≤ 5)")
    print(f"- goal {'met' if cold_p50 <= COLD_P50_GOAL_MS else 'MISSED'}: cold p50 {cold_p50:.1f} ms at 10,000 "
          f"(≤ {COLD_P50_GOAL_MS:.0f})")  # fmt: skip
    smallest = max(results[-1]["wire"]["gzip"][0], results[-1]["wire"]["br"][0])
    print(f"- goal {'met' if smallest <= WIRE_GOAL else 'MISSED'}: on the wire ≤ {smallest:.3f}× the body at 10,000 "
          f"(≤ {WIRE_GOAL})")  # fmt: skip
    met = same_queries and warm_p50 <= WARM_P50_GOAL_MS and cold_p50 <= COLD_P50_GOAL_MS and smallest <= WIRE_GOAL
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
