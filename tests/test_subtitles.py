"""Subtitles: conversion, HLS subtitle renditions on the video's segment grid, the admin that adds
and removes tracks without re-encoding, and what the API serves."""

from pathlib import Path

import m3u8
import pytest
import sqlalchemy as sa

from tests.helpers import add_subtitle, csrf_token, import_video, only_video
from videoflix.extensions import db
from videoflix.media import playlists, subtitles
from videoflix.videos.models import Subtitle

SRT = (
    "1\r\n00:00:01,000 --> 00:00:02,500\r\nBonjour, café !\r\n\r\n"
    "2\r\n00:00:05,000 --> 00:00:07,000\r\nÀ travers deux segments\r\n\r\n"
    "3\r\n00:00:08,000 --> 00:00:09,000\r\nLa fin\r\n"
)
BOM_AND_LATIN1 = b"\xef\xbb\xbf" + SRT.encode("latin-1")


def test_an_srt_with_a_bom_and_latin1_text_becomes_webvtt():
    webvtt = subtitles.to_webvtt(BOM_AND_LATIN1)
    assert webvtt.startswith("WEBVTT")
    assert "00:00:01.000 --> 00:00:02.500\nBonjour, café !" in webvtt
    assert "À travers deux segments" in webvtt
    assert subtitles.to_webvtt(SRT.encode("utf-16")) == webvtt
    assert subtitles.to_webvtt(webvtt.encode()) == webvtt  # WebVTT in, the same WebVTT out


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"", "The subtitle file is empty."),
        (b"just some words\n", "could not be read as SRT or WebVTT"),
        (b"1\n00:00:01,000 --> 00:00:02,000\n\n", "has no cues"),
    ],  # fmt: skip
)
def test_files_that_are_not_subtitles_are_refused_with_a_reason(raw, reason):
    with pytest.raises(subtitles.SubtitleProblem, match=reason):
        subtitles.to_webvtt(raw)


def test_a_track_is_cut_to_the_segment_grid_on_the_video_clock():
    playlist, files = subtitles.segment(subtitles.to_webvtt(SRT.encode()), [6.0, 6.0, 1.0], start_pts=126000)
    parsed = m3u8.loads(playlist)
    assert [segment.uri for segment in parsed.segments] == ["000.vtt", "001.vtt", "002.vtt"]
    assert [segment.duration for segment in parsed.segments] == [6.0, 6.0, 1.0]
    assert parsed.is_endlist and parsed.target_duration == 6
    for text in files.values():
        assert text.startswith("WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:126000,LOCAL:00:00:00.000\n")
    assert "Bonjour" in files["000.vtt"] and "Bonjour" not in files["001.vtt"]
    assert "deux segments" in files["000.vtt"] and "deux segments" in files["001.vtt"]  # 5-7 s spans both
    assert "La fin" in files["001.vtt"] and "-->" not in files["002.vtt"]


VARIANT = playlists.Variant("480p/index.m3u8", 1, 1, 2, 2, "avc1.64001f", 25.0)


def test_the_master_playlist_gains_and_loses_subtitle_renditions():
    master = playlists.master_playlist([VARIANT])
    tracks = [subtitles.Track(3, "fr", "Français", True), subtitles.Track(4, "en", "English", False)]
    with_tracks = playlists.master_playlist([VARIANT], tracks)
    parsed = m3u8.loads(with_tracks)
    assert [(m.type, m.language, m.name, m.default, m.uri) for m in parsed.media] == [
        ("SUBTITLES", "fr", "Français", "YES", "subs/3/index.m3u8"),
        ("SUBTITLES", "en", "English", "NO", "subs/4/index.m3u8"),
    ]
    assert [playlist.stream_info.subtitles for playlist in parsed.playlists] == ["subs"]
    assert "SUBTITLES" not in master and len(master.split("\n")) == 6


# Every character that some parser or player takes as the end of a line, and the quote.
SEPARATORS = ["\n", "\r", "\v", "\f", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029", "\x00", '"']


@pytest.mark.parametrize("separator", SEPARATORS, ids=[f"U+{ord(c):04X}" for c in SEPARATORS])
def test_a_label_that_could_break_a_playlist_line_is_refused_and_never_written(separator):
    label = f"English{separator}#EXT-X-STREAM-INF:BANDWIDTH=9{separator}https://evil.example/x.m3u8"
    assert subtitles.label_problem(label) == (
        "A label may not contain quotes, control characters or line breaks of any kind."
    )
    with pytest.raises(ValueError, match="not a track"):
        subtitles.media_line(subtitles.Track(1, "en", label, True))
    cleaned = subtitles.clean_label(label)  # what a track stored before the check becomes
    master = playlists.master_playlist([VARIANT], [subtitles.Track(1, "en", cleaned, True)])
    assert master.splitlines() == master.split("\n")[:-1]  # no line break of any kind inside a line
    assert [line for line in master.splitlines() if line.startswith("#EXT-X-STREAM-INF")] == [
        '#EXT-X-STREAM-INF:BANDWIDTH=1,AVERAGE-BANDWIDTH=1,RESOLUTION=2x2,CODECS="avc1.64001f",FRAME-RATE=25.000,'
        'SUBTITLES="subs"'
    ]
    assert [playlist.uri for playlist in m3u8.loads(master).playlists] == ["480p/index.m3u8"]


def test_a_legacy_master_keeps_only_the_variants_of_the_video_s_own_renditions():
    forged = (
        '#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=100,RESOLUTION=854x480,CODECS="avc1.64001f"\n480p/index.m3u8\n'
        "#EXT-X-STREAM-INF:BANDWIDTH=9,RESOLUTION=2x2\nhttps://evil.example/x.m3u8\n"
    )
    found = playlists.variants_of_legacy_master(forged, ["480p"])
    assert found == [playlists.Variant("480p/index.m3u8", 100, 100, 854, 480, "avc1.64001f", 25.0)]


# --- through the admin and the API ---


@pytest.fixture
def staff(admin_client):
    return admin_client


def test_republishing_writes_the_master_from_data_never_from_the_stored_text(app, runner, staff, client, auth, clips):
    """A master that an earlier label had forged (a stream on another site), published before the
    variants were kept as data: the next republish keeps only the video's own renditions."""
    assert import_video(runner, clips["small"], "Forged").exit_code == 0
    video = only_video(app)
    version = Path(app.config["MEDIA_ROOT"]) / video.hls_path
    (version / playlists.VARIANTS_FILE).unlink()
    master = version / "master.m3u8"
    master.write_text(
        master.read_text() + "#EXT-X-STREAM-INF:BANDWIDTH=9,RESOLUTION=2x2\nhttps://evil.example/x.m3u8\n"
    )
    assert add_subtitle(staff, video.id, BOM_AND_LATIN1).status_code == 302
    with app.app_context():  # as if stored before labels were checked: a line separator in it
        db.session.execute(sa.update(Subtitle).values(label="Fran\u2028çais"))
        db.session.commit()
    english = add_subtitle(staff, video.id, BOM_AND_LATIN1, language="en", label="English", default=False)
    assert english.status_code == 302

    auth.signed_in()
    text = client.get(f"/api/video/{video.id}/master.m3u8").get_data(as_text=True)
    assert "evil.example" not in text and "\u2028" not in text
    assert [p.uri for p in m3u8.loads(text).playlists] == ["480p/index.m3u8"]
    assert [m.name for m in m3u8.loads(text).media] == ["Français", "English"]
    assert (version / playlists.VARIANTS_FILE).is_file() is False  # the legacy version is read, not rewritten


def test_staff_add_and_remove_tracks_and_viewers_get_them_in_hls(app, runner, staff, client, auth, clips):
    assert import_video(runner, clips["long"], "Subtitled").exit_code == 0
    video = only_video(app)
    version = Path(app.config["MEDIA_ROOT"]) / video.hls_path
    segments_before = sorted(path.stat().st_mtime_ns for path in version.rglob("*.ts"))
    assert add_subtitle(staff, video.id, BOM_AND_LATIN1).status_code == 302
    refused = add_subtitle(staff, video.id, b"just some words\n", language="en", label="English", default=False)
    assert refused.status_code == 200 and "could not be read as SRT or WebVTT" in refused.get_data(as_text=True)
    assert "Use a language code" in add_subtitle(staff, video.id, BOM_AND_LATIN1, language="French").get_data(True)
    forged_label = add_subtitle(staff, video.id, BOM_AND_LATIN1, label="Fr\u2028#EXT-X-STREAM-INF:BANDWIDTH=9")
    assert "A label may not contain quotes, control characters" in forged_label.get_data(as_text=True)

    auth.signed_in()
    master = m3u8.loads(client.get(f"/api/video/{video.id}/master.m3u8").get_data(as_text=True))
    (track,) = master.media
    assert (track.type, track.group_id, track.language, track.name, track.default, track.autoselect) == (
        "SUBTITLES", "subs", "fr", "Français", "YES", "YES")  # fmt: skip
    assert all(playlist.stream_info.subtitles == "subs" for playlist in master.playlists)
    track_playlist = client.get(f"/api/video/{video.id}/{track.uri}")
    assert track_playlist.status_code == 200 and track_playlist.mimetype == "application/vnd.apple.mpegurl"
    grid = m3u8.loads(client.get(f"/api/video/{video.id}/480p/index.m3u8").get_data(as_text=True))
    cues = m3u8.loads(track_playlist.get_data(as_text=True))
    assert [s.duration for s in cues.segments] == [s.duration for s in grid.segments]  # the video's grid
    first = client.get(f"/api/video/{video.id}/{track.uri.rsplit('/', 1)[0]}/000.vtt")
    assert first.status_code == 200 and first.mimetype == "text/vtt"
    assert "X-TIMESTAMP-MAP=MPEGTS:" in first.get_data(as_text=True) and "café" in first.get_data(as_text=True)
    assert sorted(path.stat().st_mtime_ns for path in version.rglob("*.ts")) == segments_before  # no re-encode

    detail = client.get(f"/api/video/{video.id}/").get_json()
    (listed,) = detail["subtitles"]
    assert listed["language"] == "fr" and listed["label"] == "Français" and listed["default"] is True
    whole = client.get(listed["url"].removeprefix("http://localhost"))
    assert whole.status_code == 200 and whole.mimetype == "text/vtt" and "Bonjour, café !" in whole.get_data(True)
    assert app.test_client().get(listed["url"].removeprefix("http://localhost")).status_code == 401

    # A new transcode keeps the track; removing it republishes the master without it.
    assert runner.invoke(args=["videos", "retranscode", str(video.id)]).exit_code == 0
    master = m3u8.loads(client.get(f"/api/video/{video.id}/master.m3u8").get_data(as_text=True))
    assert [media.language for media in master.media] == ["fr"]
    track_id = int(track.uri.split("/")[1])
    token = csrf_token(staff, "/admin/subtitle/")
    assert staff.post("/admin/subtitle/delete/", data={"id": track_id, "csrf_token": token}).status_code == 302
    master_text = client.get(f"/api/video/{video.id}/master.m3u8").get_data(as_text=True)
    assert "SUBTITLES" not in master_text and m3u8.loads(master_text).playlists
    assert client.get(f"/api/video/{video.id}/{track.uri}").status_code == 404
    assert client.get(f"/api/video/{video.id}/").get_json()["subtitles"] == []


def test_a_track_whose_file_went_missing_is_left_out_of_a_new_transcode(app, runner, staff, clips):
    assert import_video(runner, clips["small"], "Missing track").exit_code == 0
    video = only_video(app)
    assert add_subtitle(staff, video.id, SRT.encode()).status_code == 302
    with app.app_context():
        track = db.session.scalars(sa.select(Subtitle)).one()
        (Path(app.config["MEDIA_ROOT"]) / track.source_key).unlink()
    assert runner.invoke(args=["videos", "retranscode", str(video.id)]).exit_code == 0
    after = only_video(app)
    assert after.status == "ready" and after.hls_path != video.hls_path
    master = (Path(app.config["MEDIA_ROOT"]) / after.hls_path / "master.m3u8").read_text()
    assert "SUBTITLES" not in master
