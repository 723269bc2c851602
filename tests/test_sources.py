"""Whatever people upload looks right: each kind of file that came out wrong goes through the
pipeline, and the published HLS is measured frame by frame (PyAV + numpy), not just found."""

import re
import subprocess
from pathlib import Path

import av
import m3u8
import numpy as np
import pytest

from tests.conftest import FFMPEG
from tests.helpers import get_video, import_video, job_in_background, only_video, rendition_dir, segment_durations
from videoflix.media import conform
from videoflix.media.probe import probe
from videoflix.pipeline.steps import optimise
from videoflix.videos.models import Phase, Status

LIMITED_BLACK, LIMITED_WHITE = 16, 235
# Left half black, right half white: the levels a range conversion must land on.
BLACK_AND_WHITE = "color=c=black:s=320x180:r=25:d=2,drawbox=x=160:y=0:w=160:h=180:color=white:t=fill"
# An orange patch at 1,000 nits (PQ) on grey: where untouched HDR code values differ most from SDR.
HDR_PATCH = "color=c=0x808080:s=320x180:r=25:d=2,drawbox=x=100:y=50:w=120:h=80:color=0xFF8000:t=fill"


def ffmpeg(*arguments):
    subprocess.run([FFMPEG, "-v", "error", "-y", *map(str, arguments)], check=True)


def first_frame(path):
    with av.open(str(path)) as container:
        return next(container.decode(video=0))


def luma(frame):
    return frame.to_ndarray(format=frame.format.name)[: frame.height]  # the Y plane of a planar frame


def published(app, runner, source, title="Source"):
    result = import_video(runner, source, title)
    assert result.exit_code == 0, result.output
    video = only_video(app)
    assert video.status == Status.READY, video.error
    return video


def on_both_ladders(app, runner, source, check):
    """Publish `source` and check the fast ladder; then run the efficient pass, which replaces it,
    and check that too (both go through the same conversions)."""
    video = published(app, runner, source)
    check(video)
    app.config["TRANSCODE_OPTIMISE"] = True
    thread, outcome = job_in_background(app, optimise, video.id, lambda _video: True)
    thread.join(300)
    optimised = get_video(app, video.id)
    assert outcome["status"] == Status.READY and optimised.phase == Phase.OPTIMISED, optimised.error
    check(optimised)
    return optimised


def tagged_bt709_limited(frame):
    return (frame.color_range, frame.colorspace, frame.color_primaries, frame.color_trc) == (1, 1, 1, 1)


def test_a_full_range_source_publishes_limited_range_black_and_white(app, runner, tmp_path):
    source = tmp_path / "webcam.avi"  # MJPEG in AVI: JPEG range, as webcams and old cameras write
    ffmpeg("-f", "lavfi", "-i", BLACK_AND_WHITE, "-pix_fmt", "yuvj420p", "-c:v", "mjpeg", "-q:v", "2", source)
    assert luma(first_frame(source))[:, :150].mean() < 3  # full range: black is 0

    def check(video):
        frame = first_frame(rendition_dir(app, video, "480p") / "000.ts")
        y = luma(frame).astype(float)
        assert abs(np.median(y[:, 10:150]) - LIMITED_BLACK) <= 2
        assert abs(np.median(y[:, 170:310]) - LIMITED_WHITE) <= 2
        assert tagged_bt709_limited(frame)

    on_both_ladders(app, runner, source, check)


def reference_tone_map(source, target):
    """The source's first frame through the tone map of DESIGN.md, run by hand: the reference."""
    colour = probe(source).colour
    chain = ",".join([*conform.colour_filters(colour), "format=yuv420p"])
    ffmpeg("-i", source, "-vf", chain, "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "yuv420p", target)
    return planes_420(np.fromfile(target, dtype=np.uint8).reshape(270, 320))


@pytest.mark.parametrize(("transfer", "x265_transfer"), [("smpte2084", "smpte2084"), ("arib-std-b67", "arib-std-b67")])
def test_an_hdr_source_is_tone_mapped_to_sdr_bt709(app, runner, tmp_path, transfer, x265_transfer):
    source = tmp_path / "phone.mp4"  # 10-bit HEVC, BT.2020, PQ or HLG: what newer phones record
    to_hdr = f"zscale=tin=bt709:min=bt709:pin=bt709:t={transfer}:m=2020_ncl:p=2020:npl=1000,format=yuv420p10le"
    tags = f"log-level=error:colorprim=bt2020:transfer={x265_transfer}:colormatrix=bt2020nc"
    ffmpeg("-f", "lavfi", "-i", HDR_PATCH, "-vf", to_hdr, "-c:v", "libx265", "-pix_fmt", "yuv420p10le",
           "-x265-params", tags, source)  # fmt: skip
    assert probe(source).colour.is_hdr
    y_ref, u_ref, v_ref = reference_tone_map(source, tmp_path / "reference.yuv")

    patch, half_patch = (slice(60, 120), slice(110, 210)), (slice(30, 60), slice(55, 105))

    def check(video):
        frame = first_frame(rendition_dir(app, video, "480p") / "000.ts")
        y, u, v = planes_420(frame.to_ndarray(format="yuv420p"))
        for plane, reference, where in ((y, y_ref, patch), (u, u_ref, half_patch), (v, v_ref, half_patch)):
            assert abs(float(plane[where].mean()) - float(reference[where].mean())) <= 3
        assert tagged_bt709_limited(frame)

    on_both_ladders(app, runner, source, check)
    # Passed through untouched (the bug), the orange's chroma would be the source's own code values.
    _y, u_source, _v = planes_420(first_frame(source).to_ndarray(format="yuv420p10le"))
    assert abs(float(u_source[half_patch].mean()) / 4 - float(u_ref[half_patch].mean())) > 10


def planes_420(array):
    """Y, U and V of a planar 4:2:0 frame as PyAV's to_ndarray stacks them (H * 3/2 rows)."""
    height, width = array.shape[0] * 2 // 3, array.shape[1]
    chroma = array[height:].reshape(2, height // 2, width // 2)
    return array[:height], chroma[0], chroma[1]


def combed_frames(path):
    """idet's multi-frame count of interlaced frames in a rendition."""
    result = subprocess.run([FFMPEG, "-hide_banner", "-i", str(path), "-vf", "idet", "-f", "null", "-"],
                            capture_output=True, text=True, check=True)  # fmt: skip
    counts = re.findall(r"Multi frame detection: TFF:\s*(\d+) BFF:\s*(\d+) Progressive:\s*(\d+)", result.stderr)
    tff, bff, progressive = max((tuple(map(int, found)) for found in counts), key=sum)  # ffmpeg may log two
    return tff + bff, progressive


def test_an_interlaced_source_is_deinterlaced(app, runner, tmp_path):
    source = tmp_path / "camcorder.mts"  # 25i in MPEG-TS with the camcorders' extension
    ffmpeg("-f", "lavfi", "-i", "testsrc2=s=320x180:r=50:d=3", "-vf", "tinterlace=interleave_top,setfield=tff",
           "-c:v", "libx264", "-flags", "+ildct+ilme", "-x264-params", "tff=1", "-pix_fmt", "yuv420p",
           "-f", "mpegts", source)  # fmt: skip
    combed, progressive = combed_frames(source)
    assert combed > 0.95 * (combed + progressive)

    def check(video):
        combed, progressive = combed_frames(rendition_dir(app, video, "480p") / "index.m3u8")
        assert progressive > 70 and combed < 0.1 * (combed + progressive)  # idet's first frames settle
        assert not first_frame(rendition_dir(app, video, "480p") / "000.ts").interlaced_frame

    on_both_ladders(app, runner, source, check)


def playlist_seconds(folder):
    durations, _uris = segment_durations(folder)
    return sum(durations)


def test_audio_longer_than_the_picture_is_heard_to_its_end(app, runner, tmp_path):
    source = tmp_path / "talk.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=s=320x180:r=25:d=3", "-f", "lavfi", "-i", "sine=frequency=440:duration=8",
           "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", source)  # fmt: skip

    def check(video):
        assert abs(video.duration - 8) < 0.1
        assert abs(playlist_seconds(rendition_dir(app, video, "480p")) - 8) < 0.2
        with av.open(str(rendition_dir(app, video, "480p") / "index.m3u8")) as container:
            audio_seconds = sum(frame.samples for frame in container.decode(audio=0)) / 48_000
        assert abs(audio_seconds - 8) < 0.2

    on_both_ladders(app, runner, source, check)


def test_a_variable_frame_rate_source_keeps_one_grid_across_both_ladders(app, runner, tmp_path):
    source = tmp_path / "phone-vfr.mp4"  # 30 fps base, every seventh frame dropped, jittered timestamps
    ffmpeg("-f", "lavfi", "-i", "testsrc2=s=320x180:r=30:d=14",
           "-vf", "select='not(eq(mod(n\\,7)\\,3))',setpts='PTS+0.003*sin(N)/TB'", "-fps_mode", "vfr",
           "-c:v", "libx264", "-pix_fmt", "yuv420p", source)  # fmt: skip
    info = probe(source)
    assert info.variable_frame_rate and info.fps == 30
    grids = []

    def check(video):
        grid, _uris = segment_durations(rendition_dir(app, video, "480p"))
        assert grid[:-1] == [6.0] * (len(grid) - 1)
        grids.append(grid)

    on_both_ladders(app, runner, source, check)
    assert grids[0] == grids[1]  # a player keeps going across the swap


@pytest.mark.parametrize("kind", ["short-ts", "one-frame"])
def test_short_clips_and_single_frames_publish_with_a_poster(app, runner, tmp_path, kind):
    if kind == "short-ts":  # 4 s, one keyframe (x264's default GOP), in MPEG-TS; one rung keeps it quick
        source = tmp_path / "short.ts"
        ffmpeg("-f", "lavfi", "-i", "testsrc2=s=640x360:r=25:d=4", "-f", "lavfi", "-i", "sine=duration=4",
               "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac",
               "-f", "mpegts", source)  # fmt: skip
    else:
        source = tmp_path / "one.mp4"
        ffmpeg("-f", "lavfi", "-i", "testsrc2=s=320x180:r=25:d=1", "-frames:v", "1", "-c:v", "libx264",
               "-pix_fmt", "yuv420p", source)  # fmt: skip

    def check(video):
        assert video.poster_path and segment_durations(rendition_dir(app, video, "480p"))[0]
        assert first_frame(Path(app.config["MEDIA_ROOT"]) / video.poster_path).width > 0

    on_both_ladders(app, runner, source, check)


def stream_codecs(segment):
    """avc1.PPCCLL from the first SPS of a segment, as RFC 6381 spells it."""
    with av.open(str(segment)) as container:
        data = bytes(next(container.demux(video=0)))
    sps = re.search(rb"\x00\x00\x01\x67(...)", data, re.S).group(1)
    return "avc1." + sps.hex()


def test_the_master_names_the_codecs_the_streams_really_are(app, runner, clips):
    def check(video):
        master = m3u8.load(str(Path(app.config["MEDIA_ROOT"]) / video.hls_path / "master.m3u8"))
        for variant in master.playlists:
            folder = rendition_dir(app, video, variant.uri.split("/")[0])
            assert variant.stream_info.codecs.split(",")[0] == stream_codecs(folder / "000.ts")

    on_both_ladders(app, runner, clips["hd720"], check)


def dominant_frequency(path):
    """The loudest frequency of a rendition's decoded audio (its first audio stream)."""
    with av.open(str(path)) as container:
        samples = np.concatenate([frame.to_ndarray()[0] for frame in container.decode(audio=0)])
    spectrum = np.abs(np.fft.rfft(samples))
    return np.fft.rfftfreq(len(samples), 1 / 48_000)[int(spectrum.argmax())]


def test_every_audio_language_is_kept_and_selectable(app, runner, tmp_path, client, auth):
    source = tmp_path / "two-languages.mkv"  # English at 440 Hz, German at 880 Hz
    ffmpeg("-f", "lavfi", "-i", "testsrc2=s=320x180:r=25:d=8", "-f", "lavfi", "-i", "sine=frequency=440:duration=8",
           "-f", "lavfi", "-i", "sine=frequency=880:duration=8", "-map", "0", "-map", "1", "-map", "2",
           "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", "-metadata:s:a:0", "language=eng",
           "-metadata:s:a:0", "title=English", "-metadata:s:a:1", "language=deu", source)  # fmt: skip
    auth.signed_in()

    def check(video):
        master = m3u8.loads(client.get(f"/api/video/{video.id}/master.m3u8").get_data(as_text=True))
        assert [(m.type, m.group_id, m.language, m.name, m.default, m.uri) for m in master.media] == [
            ("AUDIO", "aud", "eng", "English", "YES", None),  # muxed into every variant
            ("AUDIO", "aud", "deu", "deu", "NO", "audio/1/index.m3u8"),
        ]
        assert all(variant.stream_info.audio == "aud" for variant in master.playlists)
        german = client.get(f"/api/video/{video.id}/audio/1/index.m3u8")
        assert german.status_code == 200 and german.mimetype == "application/vnd.apple.mpegurl"
        first = m3u8.loads(german.get_data(as_text=True)).segments[0].uri
        assert client.get(f"/api/video/{video.id}/audio/1/{first}").status_code == 200
        assert app.test_client().get(f"/api/video/{video.id}/audio/1/index.m3u8").status_code == 401
        version = Path(app.config["MEDIA_ROOT"]) / video.hls_path
        assert abs(dominant_frequency(version / "audio/1/index.m3u8") - 880) < 5
        assert abs(dominant_frequency(version / "480p/index.m3u8") - 440) < 5  # what the SPA plays: the first

    on_both_ladders(app, runner, source, check)
