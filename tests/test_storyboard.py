"""Scrub previews (trickplay): the plan and WebVTT text, and what the pipeline publishes, read back
through the API with the viewer's cookie (and refused without it)."""

import re

import av
import pytest

from tests.conftest import FFMPEG
from tests.helpers import import_video, only_video
from videoflix.media import storyboard

CUE = re.compile(r"(\d\d):(\d\d):(\d\d)\.(\d{3}) --> (\d\d):(\d\d):(\d\d)\.(\d{3})\n(\S+)#xywh=(\d+),(\d+),(\d+),(\d+)")


def seconds(hours, minutes, secs, millis):
    return int(hours) * 3600 + int(minutes) * 60 + int(secs) + int(millis) / 1000


def parse(track):
    """(start, end, sheet, x, y, w, h) of every cue of a thumbnails track."""
    assert track.startswith("WEBVTT\n\n")
    cues = []
    for match in CUE.finditer(track):
        parts = match.groups()
        cues.append((seconds(*parts[0:4]), seconds(*parts[4:8]), parts[8], *map(int, parts[9:13])))
    assert len(cues) == track.count("-->")
    return cues


@pytest.mark.parametrize(
    ("duration", "interval", "count", "sheets"),
    [(2.0, 2, 1, 1), (13.0, 2, 7, 1), (600.0, 3, 200, 2), (7200.0, 10, 720, 8)],
)
def test_the_interval_grows_with_the_duration(duration, interval, count, sheets):
    board = storyboard.plan(duration, 854, 480)
    assert (board.interval, board.count, board.sheets) == (interval, count, sheets)
    assert (board.width, board.height) == (160, 90)


def test_cues_tile_the_sheets_and_cover_the_duration():
    board = storyboard.plan(601.0, 640, 272)  # 2.35:1
    cues = parse(storyboard.webvtt(board, 601.0))
    assert (board.width, board.height) == (160, 68)
    assert cues[0] == (0.0, 4.0, "storyboard/sprite-000.jpg", 0, 0, 160, 68)
    assert cues[10][3:5] == (0, 68) and cues[99][3:5] == (1440, 612)
    assert cues[100][2:5] == ("storyboard/sprite-001.jpg", 0, 0)
    assert cues[-1][1] == 601.0
    assert all(previous[1] == cue[0] for previous, cue in zip(cues, cues[1:], strict=False))  # no gap


def test_a_transcoded_video_has_scrub_previews_for_its_viewers_only(app, runner, client, auth, clips, tmp_path):
    assert import_video(runner, clips["long"], "Scrubbed").exit_code == 0
    video = only_video(app)
    assert video.has_storyboard
    anonymous = app.test_client()
    assert anonymous.get(f"/api/video/{video.id}/storyboard.vtt").status_code == 401
    assert anonymous.get(f"/api/video/{video.id}/storyboard/sprite-000.jpg").status_code == 401

    auth.signed_in()
    detail = client.get(f"/api/video/{video.id}/").get_json()
    assert detail["storyboard_url"] == f"http://localhost/api/video/{video.id}/storyboard.vtt"
    track = client.get(f"/api/video/{video.id}/storyboard.vtt")
    assert track.status_code == 200 and track.mimetype == "text/vtt"
    cues = parse(track.get_data(as_text=True))
    assert cues[0][0] == 0.0 and abs(cues[-1][1] - video.duration) < 0.01
    sizes = {}
    for _start, _end, sheet, x, y, width, height in cues:
        if sheet not in sizes:
            # Relative to the track's URL, as a player resolves it.
            response = client.get(f"/api/video/{video.id}/{sheet}")
            assert response.status_code == 200 and response.mimetype == "image/jpeg"
            (tmp_path / "sheet.jpg").write_bytes(response.data)
            with av.open(str(tmp_path / "sheet.jpg")) as image:
                stream = image.streams.video[0]
                sizes[sheet] = (stream.width, stream.height)
        sheet_width, sheet_height = sizes[sheet]
        assert 0 <= x and x + width <= sheet_width and 0 <= y and y + height <= sheet_height
    assert sizes == {"storyboard/sprite-000.jpg": (1600, 900)}  # 640x360: 160x90 thumbnails, 10x10
    assert client.get(f"/api/video/{video.id}/storyboard/sprite-999.jpg").status_code == 404
    assert client.get(f"/api/video/{video.id}/storyboard/..%2fmaster.m3u8").status_code == 404


def test_a_failed_storyboard_never_stops_a_video_from_playing(app, runner, client, auth, clips, tmp_path):
    wrapper = tmp_path / "ffmpeg"
    wrapper.write_text(
        f'#!/bin/sh\ncase "$*" in *tile=*) echo "simulated failure" >&2; exit 1;; esac\nexec {FFMPEG} "$@"\n'
    )
    wrapper.chmod(0o755)
    app.config["FFMPEG_BINARY"] = str(wrapper)
    assert import_video(runner, clips["small"], "No previews").exit_code == 0
    video = only_video(app)
    assert video.status == "ready" and not video.has_storyboard
    auth.signed_in()
    assert client.get(f"/api/video/{video.id}/").get_json()["storyboard_url"] is None
    assert client.get(f"/api/video/{video.id}/storyboard.vtt").status_code == 404
    assert client.get(f"/api/video/{video.id}/480p/000.ts").status_code == 200
