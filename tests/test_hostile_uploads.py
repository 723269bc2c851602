"""Uploads made to look like videos: each is refused with a reason, leaves nothing under MEDIA_ROOT,
and none makes FFmpeg open a URL or another local file (a listener counts any request)."""

import subprocess
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.conftest import FFMPEG
from tests.helpers import admin_upload, import_video, media_files
from videoflix.media.ffmpeg import source_input


class Counting(BaseHTTPRequestHandler):
    hits = 0

    def do_GET(self):
        Counting.hits += 1
        self.send_response(404)
        self.end_headers()

    def log_message(self, *_args):
        pass


@pytest.fixture
def listener():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Counting)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    Counting.hits = 0
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def hostile(tmp_path, clips, listener):
    """name -> a file with a video extension that is not a video of its own."""
    files = {
        "hls-playlist": "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2,\n" + listener + "/segment.ts\n#EXT-X-ENDLIST\n",
        # A real video beside it: FFmpeg's concat demuxer reads relative names even in its safe mode.
        "concat-script": "ffconcat version 1.0\nfile 'neighbour.mp4'\n",
        "url-list": f"ffconcat version 1.0\nfile '{listener}/remote.mp4'\n",
    }
    (tmp_path / "neighbour.mp4").write_bytes(clips["small"].read_bytes())
    made = {}
    for name, text in files.items():
        (tmp_path / f"{name}.mp4").write_text(text)
        made[name] = tmp_path / f"{name}.mp4"
    image = tmp_path / "image.mp4"
    subprocess.run([FFMPEG, "-v", "error", "-f", "lavfi", "-i", "testsrc2=s=64x64", "-frames:v", "1", "-f", "image2",
                    "-c:v", "mjpeg", str(image)], check=True)  # fmt: skip
    made["image"] = image
    with zipfile.ZipFile(tmp_path / "archive.mp4", "w") as archive:
        archive.write(clips["small"], "small.mp4")
    made["zip"] = tmp_path / "archive.mp4"
    return made


NAMES = ("hls-playlist", "concat-script", "url-list", "image", "zip")


@pytest.mark.parametrize("name", NAMES)
def test_the_cli_refuses_files_disguised_as_videos(app, runner, hostile, name):
    result = import_video(runner, hostile[name], "Disguised")
    assert result.exit_code == 1
    assert f"Error: {hostile[name].name}: The file is not a decodable video" in result.output
    assert media_files(app) == []
    assert Counting.hits == 0


@pytest.mark.parametrize("name", NAMES)
def test_the_admin_refuses_files_disguised_as_videos(app, admin_client, hostile, name):
    page = admin_upload(admin_client, hostile[name])
    assert page.status_code == 200 and "The file is not a decodable video" in page.get_data(as_text=True)
    assert [path for path in media_files(app) if not path.startswith(".incoming/")] == []
    assert Counting.hits == 0


@pytest.mark.parametrize("name", ("hls-playlist", "concat-script", "url-list"))
def test_ffmpeg_itself_refuses_to_follow_them(hostile, name):
    """The transcode's own ffmpeg opens sources the same way: a file that slipped past the probe
    still could not reach the network or another file."""
    command = [FFMPEG, "-v", "error", *source_input(hostile[name]), "-f", "null", "-"]
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode != 0
    assert "Format not on whitelist" in result.stderr or "Invalid data found when processing input" in result.stderr
    assert Counting.hits == 0
