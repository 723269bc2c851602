"""Real servers that tests and benchmarks start on 127.0.0.1: a free port, and nginx with the
shipped server block (deploy/nginx.conf.template)."""

import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from string import Template

TEMPLATE = Path(__file__).resolve().parent.parent / "deploy" / "nginx.conf.template"


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def nginx_binary():
    return shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)


def render_conf(folder, listen_port, upstream, media_root, extra_servers=""):
    """The shipped server block, filled in as the nginx image's envsubst does, in a minimal main config."""
    folder = Path(folder)
    server = Template(TEMPLATE.read_text()).safe_substitute(
        LISTEN_PORT=f"127.0.0.1:{listen_port}", UPSTREAM=upstream, MEDIA_ROOT=media_root, MAX_UPLOAD="64m"
    )
    temp_paths = {name: folder / name for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi")}
    for path in temp_paths.values():
        path.mkdir(parents=True, exist_ok=True)
    temp = "\n".join(f"    {name}_temp_path {path};" for name, path in temp_paths.items()).replace(
        "body_temp_path", "client_body_temp_path"
    )
    user = "user root;" if os.geteuid() == 0 else ""  # workers must read the media of a root-owned tmp dir
    conf = folder / "nginx.conf"
    conf.write_text(
        f"""{user}
worker_processes auto;
daemon off;
pid {folder}/nginx.pid;
error_log {folder}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log off;
    sendfile on;
{temp}
{server}
{extra_servers}
}}
"""
    )
    return conf


def wait_for(url, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1).close()
            return
        except urllib.error.HTTPError as error:
            if error.code not in (502, 503, 504):
                return  # it answers (a 401 too); 502-504 is nginx while the app is not up yet
        except (urllib.error.URLError, ConnectionError):
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout} s")


class Nginx:
    """`with Nginx(conf, folder): ...` runs nginx in the foreground of a child process."""

    def __init__(self, conf, folder):
        self.command = [nginx_binary(), "-c", str(conf), "-p", str(folder)]
        self.process = None

    def __enter__(self):
        self.process = subprocess.Popen(self.command, stderr=subprocess.DEVNULL)
        return self

    def __exit__(self, *_exc):
        self.process.send_signal(signal.SIGQUIT)
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
