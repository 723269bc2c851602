"""The ladder, the ffmpeg command and the master playlist are pure functions: checked here without
running ffmpeg."""

import subprocess
from dataclasses import replace

import pytest

from tests.conftest import FFMPEG
from videoflix.media import chunks, conform, ladder
from videoflix.media.ladder import (
    STANDARD_RUNGS,
    build_hls_command,
    build_ladder,
    keyframe_interval,
    poster_seek,
    transcode_timeout,
)
from videoflix.media.playlists import RenditionStats, master_playlist, variants
from videoflix.media.probe import BT709, BT2020, HLG, PQ, SNIFF_BYTES, Colour, Probe, frame_rate, looks_like_video


def probe(width, height, fps=25.0, audio=True, duration=10.0):
    return Probe(duration=duration, width=width, height=height, fps=fps, has_audio=audio)


def sizes(rungs):
    return [(rung.name, rung.width, rung.height) for rung in rungs]


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (probe(1920, 1080), [("480p", 854, 480), ("720p", 1280, 720), ("1080p", 1920, 1080)]),
        (probe(3840, 2160), [("480p", 854, 480), ("720p", 1280, 720), ("1080p", 1920, 1080)]),
        (probe(1280, 720), [("480p", 854, 480), ("720p", 1280, 720)]),
        (probe(854, 480), [("480p", 854, 480)]),
        (probe(640, 360), [("480p", 640, 360)]),  # below 480 lines: one rung at its own size
        (probe(321, 181), [("480p", 320, 180)]),  # odd sizes made even, never upscaled
        (probe(1080, 1920), [("480p", 480, 854), ("720p", 720, 1280), ("1080p", 1080, 1920)]),  # portrait
        (probe(1440, 1080), [("480p", 640, 480), ("720p", 960, 720), ("1080p", 1440, 1080)]),  # 4:3
    ],
)
def test_ladder_never_upscales(source, expected):
    assert sizes(build_ladder(source)) == expected


def test_codecs_string_follows_profile_and_level():
    rungs = {rung.name: rung for rung in build_ladder(probe(1920, 1080))}
    assert rungs["480p"].codecs == "avc1.64001f"  # High, level 3.1
    assert rungs["720p"].codecs == "avc1.640028"  # High, level 4.0
    assert rungs["1080p"].codecs == "avc1.640029"  # High, level 4.1


def _option_values(command, option):
    return [command[i + 1] for i, part in enumerate(command) if part == option]


def test_one_command_encodes_every_rung_with_aligned_keyframes():
    source = probe(1920, 1080, fps=30)
    rungs = build_ladder(source)
    command = build_hls_command("ffmpeg", "in.mp4", "/out", source, rungs)
    assert command.count("-i") == 1
    graph = _option_values(command, "-filter_complex")[0]
    held = "tpad=stop_mode=clone:stop_duration=6"  # to the planned end; -t cuts what is past it
    assert graph.startswith(f"[0:v]fps=30/1,format=yuv420p,{conform.TAGGED_BT709},{held},scale=1920:1080")
    assert _option_values(command, "-t") == [f"{source.duration:.6f}"]
    assert "scale=1280:720" in graph and "scale=854:480" in graph
    assert _option_values(command, "-map") == ["[v0]", "0:a:0", "[v1]", "0:a:0", "[v2]", "0:a:0"]
    # A keyframe at the first frame of every 2 s of time (x264's own interval is only a backstop)
    assert _option_values(command, "-force_key_frames") == ["expr:gte(t,n_forced*2)"]
    assert _option_values(command, "-g") == ["120"]
    assert _option_values(command, "-output_ts_offset") == ["10.000000"]
    assert _option_values(command, "-sc_threshold") == ["0"]
    assert _option_values(command, "-hls_time") == ["6"]
    assert _option_values(command, "-hls_playlist_type") == ["vod"]
    assert _option_values(command, "-hls_segment_filename") == ["/out/%v/%03d.ts"]
    assert _option_values(command, "-var_stream_map") == ["v:0,a:0,name:480p v:1,a:1,name:720p v:2,a:2,name:1080p"]
    assert _option_values(command, "-c:a") == ["aac"] and _option_values(command, "-ac") == ["2"]
    assert _option_values(command, "-progress") == ["pipe:1"]
    for index, spec in enumerate(STANDARD_RUNGS):
        assert _option_values(command, f"-preset:v:{index}") == [spec.preset]
        assert _option_values(command, f"-x264-params:v:{index}") == ([spec.x264_params] if spec.x264_params else [])
        assert _option_values(command, f"-maxrate:v:{index}") == [f"{spec.maxrate_kbps}k"]


def test_a_chunk_starts_with_its_rate_cap_buffer_as_a_film_in_progress_has_it():
    source = probe(1920, 1080, fps=30)
    chunk = chunks.plan_chunks(chunks.segment_durations(source.duration))[1]
    command = build_hls_command("ffmpeg", "in.mp4", "/out", source, build_ladder(source), chunk=chunk)
    for index, spec in enumerate(STANDARD_RUNGS):
        expected = ":".join([*filter(None, [spec.x264_params]), f"vbv-init={ladder.CHUNK_VBV_INIT}"])
        assert _option_values(command, f"-x264-params:v:{index}") == [expected]


def test_source_without_audio_maps_video_only():
    source = probe(854, 480, audio=False)
    command = build_hls_command("ffmpeg", "in.mp4", "/out", source, build_ladder(source))
    assert "0:a:0" not in command
    assert "-c:a" not in command
    assert _option_values(command, "-var_stream_map") == ["v:0,name:480p"]


def test_preset_override_applies_to_every_rung():
    source = probe(1280, 720)
    command = build_hls_command("ffmpeg", "in.mp4", "/out", source, build_ladder(source), preset="ultrafast")
    assert _option_values(command, "-preset:v:0") == ["ultrafast"]
    assert _option_values(command, "-preset:v:1") == ["ultrafast"]


@pytest.mark.parametrize(("fps", "frames"), [(25, 50), (29.97, 60), (60, 120), (0, 50)])
def test_keyframe_every_two_seconds(fps, frames):
    assert keyframe_interval(fps) == frames


def test_timeout_scales_with_duration():
    assert transcode_timeout(probe(640, 360, duration=5), 10) == 120
    assert transcode_timeout(probe(640, 360, duration=600), 10) == 6000


def test_master_playlist_lists_every_rung_with_its_attributes():
    source = probe(1280, 720, fps=30)
    rungs = build_ladder(source)
    stats = {"480p": RenditionStats(900_000, 700_000), "720p": RenditionStats(2_500_000, 2_000_000)}
    assert master_playlist(variants(rungs, stats, source)).splitlines() == [
        "#EXTM3U",
        "#EXT-X-VERSION:6",
        "#EXT-X-INDEPENDENT-SEGMENTS",
        '#EXT-X-STREAM-INF:BANDWIDTH=900000,AVERAGE-BANDWIDTH=700000,RESOLUTION=854x480,CODECS="avc1.64001f,mp4a.40.2",FRAME-RATE=30.000',
        "480p/index.m3u8",
        '#EXT-X-STREAM-INF:BANDWIDTH=2500000,AVERAGE-BANDWIDTH=2000000,RESOLUTION=1280x720,CODECS="avc1.640028,mp4a.40.2",FRAME-RATE=30.000',
        "720p/index.m3u8",
    ]


def test_master_playlist_without_audio_names_only_the_video_codec():
    source = probe(854, 480, audio=False)
    playlist = master_playlist(variants(build_ladder(source), {"480p": RenditionStats(1, 1)}, source))
    assert 'CODECS="avc1.64001f"' in playlist


# --- conforming whatever was uploaded (media/conform.py) ---

SDR_709 = Colour()


def conformed(**changes):
    return ",".join(conform.video_filters(replace(probe(1280, 720), **changes)))


def test_a_bt709_limited_progressive_source_is_only_made_constant_rate_and_tagged():
    assert conformed() == "fps=25/1,format=yuv420p," + conform.TAGGED_BT709


def test_hdr_is_tone_mapped_from_the_source_s_own_tags():
    pq = conformed(colour=Colour(primaries=BT2020, transfer=PQ, matrix=BT2020))
    assert "zscale=tin=16:min=9:pin=9:rin=0:t=linear:npl=100,format=gbrpf32le,zscale=p=bt709," in pq
    assert "tonemap=mobius:desat=0,zscale=t=bt709:m=bt709:r=tv,format=yuv420p" in pq
    assert "tin=18:" in conformed(colour=Colour(primaries=BT2020, transfer=HLG, matrix=BT2020))


def test_full_range_and_bt601_are_converted_to_bt709_limited():
    assert "zscale=min=5:rin=1:m=bt709:r=tv" in conformed(colour=Colour(BT709, BT709, 5, full_range=True))
    assert "zscale=min=6:rin=0:m=bt709:r=tv" in conformed(colour=Colour(6, 6, 6))


def test_interlaced_sources_are_deinterlaced_first_and_vfr_made_constant_at_the_nominal_rate():
    steps = conformed(interlaced=True, fps=29.97, variable_frame_rate=True).split(",")
    assert steps[:2] == ["bwdif=mode=send_frame:parity=auto:deint=all", "fps=30000/1001"]


def test_sound_longer_than_the_picture_holds_the_last_frame():
    assert "tpad=stop_mode=clone:stop_duration=5.000" in conformed(duration=8.0, video_duration=3.0)
    assert "tpad" not in conformed(duration=3.02, video_duration=3.0)


@pytest.mark.parametrize(("average", "nominal", "expected"), [
    (25, 25, (25.0, False)), (2310 / 89, 30, (30.0, True)), (29.97, 30000 / 1001, (29.97, False)),
    (None, 25, (25.0, False)), (24, None, (24.0, False)),
])  # fmt: skip
def test_the_encoding_rate_is_the_nominal_one_when_frames_were_dropped(average, nominal, expected):
    assert frame_rate(average, nominal) == expected


def test_posters_of_short_clips_start_at_their_first_frame():
    assert poster_seek(probe(320, 180, duration=0.04)) == 0.0  # a single frame
    assert poster_seek(probe(320, 180, duration=3.9)) == 0.0  # under two batches of candidates
    assert poster_seek(probe(320, 180, duration=60)) == 6.0
    assert poster_seek(probe(320, 180, duration=7200)) == 30.0


RATES = [(25, "25/1"), (23.976, "24000/1001"), (30000 / 1001, "30000/1001"), (59.94, "60000/1001"), (50, "50/1"),
         (12.5, "25/2"), (0, "25/1")]  # fmt: skip


@pytest.mark.parametrize(("fps", "expected"), RATES)
def test_frame_rates_are_given_to_the_fps_filter_exactly(fps, expected):
    assert conform.rate(fps) == expected


@pytest.mark.parametrize("extension", ["mp4", "mov", "mkv", "avi", "ts", "mpg", "wmv", "flv", "m2ts"])
def test_the_first_bytes_of_every_accepted_container_look_like_a_video(tmp_path, extension):
    """(WebM is Matroska: the same first bytes as MKV.)"""
    target = tmp_path / f"clip.{extension}"
    codec = ["-c:v", "flv"] if extension == "flv" else []
    subprocess.run([FFMPEG, "-v", "error", "-f", "lavfi", "-i", "testsrc2=s=64x64:d=0.2", *codec, str(target)],
                   check=True)  # fmt: skip
    assert looks_like_video(target.read_bytes()[:SNIFF_BYTES])


@pytest.mark.parametrize(
    "head",
    [b"#EXTM3U\n#EXT-X-VERSION:3\n", b"\x89PNG\r\n\x1a\n" + bytes(100), b"\xff\xd8\xff\xe0" + bytes(100),
     b"PK\x03\x04" + bytes(100), b"hello, this is a text file " * 20,
     b"ffconcat version 1.0\nfile '/etc/passwd'\n", b""],
)  # fmt: skip
def test_text_images_playlists_and_archives_do_not(head):
    assert not looks_like_video(head)
