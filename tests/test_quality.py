"""Geometry for whatever people upload, and the second pass that replaces the fast ladder with the
efficient one while the video plays. Real ffmpeg on tiny generated clips."""

import json
import re
import subprocess
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from pathlib import Path

import av
import pytest

from tests.conftest import FFMPEG, create_user, install_video
from tests.helpers import (
    STAFF,
    admin_login,
    get_video,
    import_video,
    job_in_background,
    media_files,
    only_video,
    rendition_dir,
    segment_durations,
)
from videoflix.extensions import db
from videoflix.media import ratecontrol
from videoflix.media.ladder import EFFICIENT_RUNGS, build_ladder
from videoflix.media.probe import probe
from videoflix.pipeline.analysis import video_frames
from videoflix.pipeline.cleanup import delete_video_media
from videoflix.pipeline.steps import optimise
from videoflix.pipeline.tasks import enqueue_transcode, recover_stalled_jobs
from videoflix.videos.models import Phase, Status, Video


def make(path, size, seconds=2, video_filter=None, rotation=None):
    """A testsrc2 clip with audio; `video_filter` (e.g. setsar) and a display rotation as uploads carry."""
    command = [FFMPEG, "-v", "error", "-y", "-f", "lavfi", "-i", f"testsrc2=s={size}:r=25:d={seconds}"]
    command += ["-f", "lavfi", "-i", f"sine=duration={seconds}"]
    command += ["-vf", video_filter] if video_filter else []
    command += ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest"]
    target = path if rotation is None else path.with_name(f"plain-{path.name}")
    subprocess.run([*command, str(target)], check=True)
    if rotation is not None:  # a phone's way: the pixels as shot, and a rotation to apply on display
        subprocess.run([FFMPEG, "-v", "error", "-y", "-display_rotation", str(rotation), "-i", str(target),
                        "-c", "copy", str(path)], check=True)  # fmt: skip
    return path


def shown(path):
    """Width, height and sample aspect ratio of a file's first video frame as a player decodes it."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frame = next(container.decode(stream))
        return frame.width, frame.height, stream.sample_aspect_ratio


@pytest.mark.parametrize(
    ("size", "video_filter", "rotation", "expected_rungs", "display_aspect"),
    [
        ("720x480", "setsar=32/27", None, {"480p": (854, 480)}, 16 / 9),  # NTSC DVD, 16:9 anamorphic
        ("176x144", "setsar=128/117", None, {"480p": (192, 144)}, 176 * 128 / (144 * 117)),  # QCIF, 1.337
        ("640x360", None, 90, {"480p": (360, 640)}, 9 / 16),  # shot sideways, shown upright
        ("1280x544", None, None, {"480p": (1130, 480)}, 1280 / 544),  # cinema width, 2.35:1
    ],
)
def test_renditions_and_poster_keep_the_displayed_aspect_in_square_pixels(
    app, runner, tmp_path, size, video_filter, rotation, expected_rungs, display_aspect
):
    clip = make(tmp_path / "upload.mp4", size, video_filter=video_filter, rotation=rotation)
    assert import_video(runner, clip).exit_code == 0
    video = only_video(app)
    assert video.renditions == list(expected_rungs)
    for name, (width, height) in expected_rungs.items():
        out_width, out_height, sar = shown(rendition_dir(app, video, name) / "000.ts")
        assert (out_width, out_height) == (width, height)
        assert sar in (None, Fraction(1, 1))
        assert abs(out_width / out_height - display_aspect) / display_aspect < 0.01
    poster_width, poster_height, _sar = shown(Path(app.config["MEDIA_ROOT"]) / video.poster_path)
    assert abs(poster_width / poster_height - display_aspect) / display_aspect < 0.01


# --- the second pass ---


@pytest.fixture
def fast_video(app, transcoded):
    """A ready video whose fast ladder plays (13 s, so the second pass can be caught running)."""
    install_video(app, transcoded("long", "Sample", "Drama"))
    video = only_video(app)
    assert (video.status, video.phase) == (Status.READY, Phase.FAST)
    app.config["TRANSCODE_OPTIMISE"] = True
    return video


def optimising_in_background(app, video_id):
    """The video's second pass, running in the background and caught once it has started."""
    return job_in_background(app, optimise, video_id, lambda video: video.phase == Phase.OPTIMISING)


def test_the_efficient_ladder_replaces_the_fast_one_without_a_moment_unplayable(app, auth, client, fast_video):
    auth.signed_in()
    before_durations, _ = segment_durations(rendition_dir(app, fast_video, "480p"))
    thread, outcome = optimising_in_background(app, fast_video.id)
    answers, seen_optimising = [], False
    while thread.is_alive():
        seen_optimising |= get_video(app, fast_video.id).phase == Phase.OPTIMISING
        for path in ("master.m3u8", "480p/index.m3u8", "480p/001.ts"):
            answers.append(client.get(f"/api/video/{fast_video.id}/{path}").status_code)
    thread.join()
    assert outcome["status"] == Status.READY and seen_optimising
    assert set(answers) == {200}
    video = get_video(app, fast_video.id)
    assert (video.status, video.phase, video.progress) == (Status.READY, Phase.OPTIMISED, 100)
    assert video.hls_path.endswith("-optimised")
    assert not (Path(app.config["MEDIA_ROOT"]) / fast_video.hls_path).exists()  # the fast ladder is gone
    after_durations, uris = segment_durations(rendition_dir(app, video, "480p"))
    assert after_durations == before_durations  # the same 6 s grid: players switch seamlessly
    for uri in uris:
        with av.open(str(rendition_dir(app, video, "480p") / uri)) as segment:
            assert next(segment.demux(video=0)).is_keyframe
    assert client.get(f"/api/video/{video.id}/480p/000.ts").status_code == 200


def test_a_delete_during_the_second_pass_leaves_nothing(app, fast_video):
    thread, outcome = optimising_in_background(app, fast_video.id)
    with app.app_context():
        video = db.session.get(Video, fast_video.id)
        db.session.delete(video)
        db.session.commit()
        delete_video_media(video)
    thread.join(60)
    assert outcome["status"] == "cancelled"
    assert media_files(app) == []


def test_a_retranscode_during_the_second_pass_stops_it(app, fast_video):
    app.config["TRANSCODE_OPTIMISE"] = False  # the new job's own second pass is not the point here
    thread, outcome = optimising_in_background(app, fast_video.id)
    with app.app_context():
        enqueue_transcode(db.session.get(Video, fast_video.id))
    thread.join(60)
    assert outcome["status"] == "cancelled"
    video = get_video(app, fast_video.id)
    assert video.status == Status.READY and not video.hls_path.endswith("-optimised")
    assert not any(path.startswith(".work/") for path in media_files(app))


@pytest.fixture
def short_fast_video(app, transcoded):
    """The same, 2 s long: for a second pass that only has to finish."""
    install_video(app, transcoded("small", "Short", "Drama"))
    app.config["TRANSCODE_OPTIMISE"] = True
    return only_video(app)


def test_a_second_pass_whose_worker_died_runs_again_while_the_fast_ladder_plays(app, short_fast_video):
    fast_video = short_fast_video
    with app.app_context():
        video = db.session.get(Video, fast_video.id)
        video.phase, video.progress = Phase.OPTIMISING, 40
        video.heartbeat_at = datetime.now(UTC) - timedelta(minutes=5)
        db.session.commit()
        assert recover_stalled_jobs() == [fast_video.id]  # queued, and in the test config run at once
    video = get_video(app, fast_video.id)
    assert (video.status, video.phase, video.job_id) == (Status.READY, Phase.OPTIMISED, fast_video.job_id)


def test_a_failed_second_pass_leaves_the_fast_ladder_playing(app, auth, client, fast_video, tmp_path):
    broken = tmp_path / "ffmpeg"
    broken.write_text("#!/bin/sh\necho 'simulated encoder crash' >&2\nexit 1\n")
    broken.chmod(0o755)
    app.config["FFMPEG_BINARY"] = str(broken)
    with app.app_context():
        assert optimise(fast_video.id, fast_video.job_id) == Status.FAILED
    video = get_video(app, fast_video.id)
    assert (video.status, video.phase, video.hls_path) == (Status.READY, Phase.FAST, fast_video.hls_path)
    assert video.error.startswith("Optimisation failed; the fast ladder plays. ffmpeg could not process this file")
    auth.signed_in()
    assert client.get(f"/api/video/{video.id}/480p/000.ts").status_code == 200


def test_staff_see_the_phase_in_the_video_list(app, fast_video):

    create_user(app, email=STAFF, staff=True)
    staff = app.test_client()
    assert admin_login(staff).status_code == 302
    assert "fast ladder" in staff.get("/admin/video/").get_data(as_text=True)
    with app.app_context():
        video = db.session.get(Video, fast_video.id)
        video.phase, video.progress = Phase.OPTIMISING, 40
        db.session.commit()
    assert "playable, optimising 40%" in staff.get("/admin/video/").get_data(as_text=True)


def test_the_reference_is_measured_after_its_rate_control_settled(tmp_path, clips):
    """The fixed-bitrate reference plays the samples twice; VMAF pairs only the second play's frames
    with the samples, frame for frame, also when the samples end between two frames (1.7 s at 25 fps)."""
    info = probe(clips["small"])
    samples, encoded, log = tmp_path / "samples.mp4", tmp_path / "reference.mp4", tmp_path / "vmaf.json"
    subprocess.run(ratecontrol.build_sample_command(FFMPEG, clips["small"], samples, [(0.0, 1.7)], info), check=True)
    frames, seconds = video_frames(samples)
    assert frames in (42, 43) and seconds == pytest.approx(frames / 25)
    rung = build_ladder(info, EFFICIENT_RUNGS)[0]
    plays = ratecontrol.reference_plays([(0.0, 1.7)], info.duration)  # an excerpt: settled
    assert plays == ratecontrol.REFERENCE_PLAYS == 2 and ratecontrol.reference_plays([(0.0, 2.0)], 2.0) == 1
    subprocess.run(ratecontrol.build_probe_command(FFMPEG, samples, encoded, rung, 50, plays=plays), check=True)
    skip = ratecontrol.reference_skip(frames, plays)
    command = ratecontrol.build_vmaf_command(FFMPEG, encoded, samples, rung.width, rung.height, log, skip_frames=skip)
    subprocess.run(command, check=True)
    assert video_frames(encoded)[0] == 2 * frames  # both plays encoded
    scores = [frame["metrics"]["vmaf"] for frame in json.loads(log.read_text())["frames"]]
    assert len(scores) == frames  # only the second measured
    assert min(scores) > 90  # each paired with its own source frame


def x264_subme(segment):
    """The subpixel-refinement level x264 wrote into the stream's settings (one per preset)."""
    with av.open(str(segment)) as container:
        first = bytes(next(container.demux(video=0)))
    return int(re.search(rb"subme=(\d+)", first).group(1))


@pytest.mark.parametrize(("preset", "subme"), [(None, 9), ("veryfast", 2)])
def test_operators_choose_the_efficient_ladders_preset(app, short_fast_video, preset, subme):
    """EFFICIENT_PRESET trades the bill against the bits; unset, the ladder's own (slower: subme 9)."""
    app.config["EFFICIENT_PRESET"] = preset
    with app.app_context():
        assert optimise(short_fast_video.id, short_fast_video.job_id) == Status.READY
    video = get_video(app, short_fast_video.id)
    assert video.phase == Phase.OPTIMISED
    assert x264_subme(rendition_dir(app, video, "480p") / "000.ts") == subme
