"""Resumable uploads: a 2 GiB file sent with the tus protocol in 8 MiB chunks (as the admin's
tus-js-client sends it) to the app under waitress, generated on the fly; the web process's memory
(resident set, before and at its peak) and the throughput. Goal: RSS growth under 50 MB.

    python -m bench.uploads [--gigabytes 2]
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

from bench.common import machine, table
from tests.servers import free_port, wait_for
from videoflix import create_app
from videoflix.auth.models import User
from videoflix.extensions import db

CHUNK = 8 * 2**20
GOAL_MB = 50
STAFF, PASSWORD = "bench-staff@example.com", "bench-Password-123"


def prepare(folder):
    database = f"sqlite:///{folder / 'bench.sqlite3'}"
    app = create_app({"SQLALCHEMY_DATABASE_URI": database, "MEDIA_ROOT": str(folder / "media")})
    with app.app_context():
        db.create_all()
        user = User(email=STAFF, is_active=True, is_staff=True)
        user.set_password(PASSWORD)
        db.session.add(user)
        db.session.commit()
    return database


def memory_kb(pid, field):
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(rf"{field}:\s+(\d+) kB", status).group(1))


def staff_session(base):
    session = requests.Session()
    page = session.get(f"{base}/admin/login/", timeout=10).text
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    session.post(f"{base}/admin/login/", data={"csrf_token": token, "email": STAFF, "password": PASSWORD}, timeout=10)
    return session


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gigabytes", type=float, default=2)
    args = parser.parse_args(argv)
    length = int(args.gigabytes * 2**30) // CHUNK * CHUNK
    block = os.urandom(CHUNK)  # the same random 8 MiB again and again: nothing to compress, nothing to hold
    print(f"## Resumable upload of {length / 2**30:.1f} GiB\n\n{machine()}; tus in {CHUNK >> 20} MiB chunks "
          f"to the app under waitress (8 threads) on 127.0.0.1\n")  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="videoflix-bench-") as tmp:
        folder = Path(tmp)
        database = prepare(folder)
        port = free_port()
        env = {**os.environ, "APP_ENV": "development", "DATABASE_URL": database, "MEDIA_ROOT": str(folder / "media"),
               "SECRET_KEY": "bench-secret-key-0123456789-abcdefghijklmnop", "RATELIMIT_ENABLED": "false",
               "MAX_UPLOAD_MB": str(length // 2**20 + 1)}  # fmt: skip
        root = Path(__file__).resolve().parent.parent
        server = subprocess.Popen(
            [sys.executable, "-m", "waitress", "--host=127.0.0.1", f"--port={port}", "--threads=8", "wsgi:app"],
            env=env, cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            base = f"http://127.0.0.1:{port}"
            wait_for(f"{base}/api/health/", timeout=30)
            session = staff_session(base)
            tus = {"Tus-Resumable": "1.0.0"}
            created = session.post(f"{base}/admin/uploads/", headers={**tus, "Upload-Length": str(length)}, timeout=10)
            if created.status_code != 201:
                raise SystemExit(f"creating the upload answered {created.status_code}: no figure reported")
            url = created.headers["Location"]
            rss_before = memory_kb(server.pid, "VmRSS")
            started = time.perf_counter()
            for offset in range(0, length, CHUNK):
                headers = {**tus, "Upload-Offset": str(offset), "Content-Type": "application/offset+octet-stream"}
                answer = session.patch(url, data=block, headers=headers, timeout=60)
                if answer.status_code != 204 or int(answer.headers["Upload-Offset"]) != offset + CHUNK:
                    raise SystemExit(f"chunk at {offset} answered {answer.status_code}: no figure reported")
            seconds = time.perf_counter() - started
            peak = memory_kb(server.pid, "VmHWM")  # the resident set's high-water mark
            stored = session.head(url, headers=tus, timeout=10)
            if int(stored.headers["Upload-Offset"]) != length:
                raise SystemExit("the server's offset is not the file's length: no figure reported")
            part = next((folder / "media" / ".incoming").glob("tus-*.part"))
            if part.stat().st_size != length:
                raise SystemExit(f"{part.stat().st_size} bytes on disk, not {length}: no figure reported")
            session.delete(url, headers=tus, timeout=30)
        finally:
            server.terminate()
            server.wait(10)
    growth_mb = (peak - rss_before) / 1024
    print(table(["upload", "MB/s", "web RSS before MB", "peak RSS MB", "growth MB"],
                [[f"{length / 2**30:.1f} GiB in {length // CHUNK} chunks", f"{length / 2**20 / seconds:.0f}",
                  f"{rss_before / 1024:.1f}", f"{peak / 1024:.1f}", f"{growth_mb:.1f}"]]))  # fmt: skip
    met = growth_mb < GOAL_MB
    print(f"\n- goal {'met' if met else 'MISSED'}: RSS growth {growth_mb:.1f} MB (goal < {GOAL_MB} MB)")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
