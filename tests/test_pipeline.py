"""The transcoding pipeline with real ffmpeg on tiny generated clips."""

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import m3u8
import pytest

from tests.helpers import (
    get_video,
    import_video,
    job_in_background,
    media_files,
    only_video,
    queued_video,
    rendition_dir,
    segment_durations,
    starts_with_keyframe,
)
from videoflix.extensions import db
from videoflix.media.ffmpeg import FFmpegFailed, run_ffmpeg
from videoflix.pipeline.cleanup import delete_video_media
from videoflix.pipeline.tasks import enqueue_transcode, recover_at_startup, recover_stalled_jobs
from videoflix.pipeline.tasks import transcode_in_process as transcode
from videoflix.videos.models import Phase, Status, Video

ONE_FRAME = 1 / 25


def assert_aligned_ladder(app, video, expected_names, duration):
    durations = {}
    for name in expected_names:
        folder = rendition_dir(app, video, name)
        durations[name], uris = segment_durations(folder)
        assert uris == [f"{i:03d}.ts" for i in range(len(uris))]
        assert abs(sum(durations[name]) - duration) <= ONE_FRAME
        for uri in uris:
            assert starts_with_keyframe(folder / uri), f"{name}/{uri} does not start with a keyframe"
    first = durations[expected_names[0]]
    assert all(durations[name] == first for name in expected_names)


def test_1080p_source_gets_three_aligned_rungs_a_master_and_a_poster(app, runner, clips):
    result = import_video(runner, clips["hd1080"], "Big", "Action")
    assert result.exit_code == 0, result.output
    video = only_video(app)
    assert video.status == Status.READY and video.progress == 100 and video.error is None
    assert video.renditions == ["480p", "720p", "1080p"]
    assert (video.width, video.height, video.has_audio) == (1920, 1080, True)
    assert abs(video.duration - 2.0) < 0.05
    assert_aligned_ladder(app, video, video.renditions, video.duration)

    master = m3u8.load(str(Path(app.config["MEDIA_ROOT"]) / video.hls_path / "master.m3u8"))
    assert master.is_variant
    streams = [(p.uri, p.stream_info) for p in master.playlists]
    assert [uri for uri, _ in streams] == ["480p/index.m3u8", "720p/index.m3u8", "1080p/index.m3u8"]
    assert [info.resolution for _, info in streams] == [(854, 480), (1280, 720), (1920, 1080)]
    for _uri, info in streams:
        assert info.bandwidth >= info.average_bandwidth > 0
        assert info.codecs.endswith(",mp4a.40.2") and info.codecs.startswith("avc1.")
        assert info.frame_rate == 25.0

    poster = Path(app.config["MEDIA_ROOT"]) / video.poster_path
    assert poster.read_bytes()[:3] == b"\xff\xd8\xff"  # a JPEG
    assert not any(path.startswith(".work/") for path in media_files(app))


def test_720p_source_has_no_1080p_rung(app, runner, clips):
    assert import_video(runner, clips["hd720"]).exit_code == 0
    video = only_video(app)
    assert video.renditions == ["480p", "720p"]
    assert_aligned_ladder(app, video, video.renditions, video.duration)


def test_small_source_gets_one_rung_at_its_own_size(app, runner, clips):
    assert import_video(runner, clips["small"]).exit_code == 0
    video = only_video(app)
    assert video.renditions == ["480p"]
    master = m3u8.load(str(Path(app.config["MEDIA_ROOT"]) / video.hls_path / "master.m3u8"))
    assert master.playlists[0].stream_info.resolution == (320, 180)


def test_portrait_source_is_scaled_by_its_short_side(app, runner, clips):
    assert import_video(runner, clips["portrait"]).exit_code == 0
    video = only_video(app)
    assert video.renditions == ["480p", "720p"]
    master = m3u8.load(str(Path(app.config["MEDIA_ROOT"]) / video.hls_path / "master.m3u8"))
    assert [p.stream_info.resolution for p in master.playlists] == [(480, 854), (720, 1280)]


def test_source_without_audio_works(app, runner, clips):
    assert import_video(runner, clips["silent"]).exit_code == 0
    video = only_video(app)
    assert video.status == Status.READY and video.has_audio is False
    master = m3u8.load(str(Path(app.config["MEDIA_ROOT"]) / video.hls_path / "master.m3u8"))
    assert master.playlists[0].stream_info.codecs == "avc1.64001f"


def test_longer_source_is_cut_into_six_second_segments_on_every_rung(app, runner, clips):
    assert import_video(runner, clips["long"]).exit_code == 0
    video = only_video(app)
    durations, _ = segment_durations(rendition_dir(app, video, "480p"))
    assert [round(d, 3) for d in durations] == [6.0, 6.0, 1.0]
    assert_aligned_ladder(app, video, video.renditions, 13.0)


@pytest.mark.parametrize(
    ("clip", "message"),
    [
        ("text", "not a decodable video"),
        ("empty", "The file is empty."),
        ("truncated", "not a decodable video"),
    ],
)
def test_cli_import_refuses_what_is_not_a_video(app, runner, clips, clip, message):
    result = import_video(runner, clips[clip])
    assert result.exit_code == 1
    assert message in result.output
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count(Video.id))) == 0
    assert media_files(app) == []


def test_cli_import_refuses_a_missing_file_and_a_wrong_extension(app, runner, tmp_path):
    result = import_video(runner, tmp_path / "missing.mp4")
    assert result.exit_code == 1 and "does not exist" in result.output
    other = tmp_path / "notes.txt"
    other.write_text("hello")
    result = import_video(runner, other)
    assert result.exit_code == 1 and "does not have a video extension" in result.output


def _queued_video(app, clip):
    return queued_video(app, clip)


@pytest.mark.parametrize("clip", ["text", "empty", "truncated"])
def test_job_on_a_file_that_is_not_a_video_fails_at_once_with_a_readable_error(app, clips, clip):
    video_id = _queued_video(app, clips[clip])
    with app.app_context():
        enqueue_transcode(db.session.get(Video, video_id))
    video = get_video(app, video_id)
    assert video.status == Status.FAILED
    assert video.error.startswith(("The file is not a decodable video", "The file is empty."))
    assert video.hls_path is None
    assert not (Path(app.config["MEDIA_ROOT"]) / "hls" / str(video_id)).exists()


def test_cli_wait_follows_the_job_to_ready(app, runner, clips):
    result = import_video(runner, clips["small"], "Waited", "Comedy", "--wait")
    assert result.exit_code == 0, result.output
    assert "is ready: 480p" in result.output


def test_cli_list_and_retranscode(app, runner, clips):
    import_video(runner, clips["small"], "Listed", "Comedy")
    video = only_video(app)
    listing = runner.invoke(args=["videos", "list"])
    assert f"{video.id:>5}  ready" in listing.output and "Listed" in listing.output
    result = runner.invoke(args=["videos", "retranscode", str(video.id)])
    assert result.exit_code == 0
    again = only_video(app)
    assert again.status == Status.READY and again.hls_path != video.hls_path
    assert not (Path(app.config["MEDIA_ROOT"]) / video.hls_path).exists()  # the old version is gone
    assert runner.invoke(args=["videos", "retranscode", "999"]).exit_code == 1


def _job_caught_running(app, video_id):
    """The video's first pass, running in the background and caught while it transcodes."""
    return job_in_background(
        app, transcode, video_id, lambda video: video.phase == Phase.ENCODING and video.progress > 0
    )


@pytest.fixture
def slow_app(app):
    """Slow enough that a running job can be caught in the middle."""
    app.config["TRANSCODE_PRESET"] = "veryslow"
    return app


def test_deleting_a_video_during_its_transcode_leaves_nothing(slow_app, clips):
    app = slow_app
    video_id = _queued_video(app, clips["long"])
    thread, outcome = _job_caught_running(app, video_id)
    with app.app_context():
        video = db.session.get(Video, video_id)
        db.session.delete(video)
        db.session.commit()
        delete_video_media(video)
    thread.join(60)
    assert outcome["status"] == "cancelled"
    assert media_files(app) == []
    assert not (Path(app.config["MEDIA_ROOT"]) / "hls" / str(video_id)).exists()


def test_retranscode_keeps_the_old_renditions_until_the_new_ones_are_ready(slow_app, runner, clips):
    app = slow_app
    app.config["TRANSCODE_PRESET"] = None
    assert import_video(runner, clips["long"]).exit_code == 0
    old = only_video(app)
    old_playlist = rendition_dir(app, old, "480p") / "index.m3u8"
    app.config["TRANSCODE_PRESET"] = "veryslow"
    with app.app_context():
        video = db.session.get(Video, old.id)
        video.job_id, video.status = "b" * 32, Status.PENDING
        db.session.commit()
    thread, outcome = _job_caught_running(app, old.id)
    assert old_playlist.is_file()  # still playable mid-job
    assert get_video(app, old.id).hls_path == old.hls_path
    thread.join(120)
    assert outcome["status"] == Status.READY
    new = get_video(app, old.id)
    assert new.hls_path != old.hls_path and not old_playlist.exists()
    assert_aligned_ladder(app, new, new.renditions, 13.0)


def test_requeueing_stops_the_running_job(slow_app, clips):
    app = slow_app
    video_id = _queued_video(app, clips["long"])
    thread, outcome = _job_caught_running(app, video_id)
    with app.app_context():
        db.session.get(Video, video_id).job_id = "c" * 32
        db.session.commit()
    thread.join(60)
    assert outcome["status"] == "cancelled"
    assert not any(path.startswith(".work/") for path in media_files(app))


def test_a_job_whose_worker_died_is_run_again(app, clips):
    video_id = _queued_video(app, clips["small"])
    dead_workspace = Path(app.config["MEDIA_ROOT"]) / ".work" / str(video_id) / "deadjob"
    half_written = dead_workspace / "hls" / "480p" / "000.ts"
    half_written.parent.mkdir(parents=True)
    half_written.write_bytes(b"partial")
    with app.app_context():
        video = db.session.get(Video, video_id)
        video.status, video.progress = Status.PROCESSING, 40
        video.heartbeat_at = datetime.now(UTC) - timedelta(minutes=10)
        db.session.commit()
        assert recover_stalled_jobs() == [video_id]
    video = get_video(app, video_id)
    assert video.status == Status.READY and video.renditions == ["480p"]
    assert not dead_workspace.exists()  # the dead worker's leftovers are gone


def test_a_running_job_with_a_recent_heartbeat_is_left_alone(app, clips):
    video_id = _queued_video(app, clips["small"])
    with app.app_context():
        video = db.session.get(Video, video_id)
        video.status, video.heartbeat_at = Status.PROCESSING, datetime.now(UTC)
        db.session.commit()
        assert recover_stalled_jobs() == []


def test_a_job_three_heartbeats_quiet_is_run_again_by_a_worker_that_starts(app, clips):
    """Not after minutes: a worker that starts re-queues a job whose heartbeat missed three beats."""
    video_id = _queued_video(app, clips["small"])
    quiet_for = 3 * app.config["JOB_HEARTBEAT_SECONDS"] + 1
    with app.app_context():
        video = db.session.get(Video, video_id)
        video.status, video.progress = Status.PROCESSING, 38
        video.heartbeat_at = datetime.now(UTC) - timedelta(seconds=quiet_for)
        db.session.commit()
        assert recover_at_startup() == [video_id]
    assert get_video(app, video_id).status == Status.READY


def test_the_heartbeat_goes_on_while_ffmpeg_reports_nothing(app, clips, tmp_path):
    """Between progress reports (probing, storing, a silent ffmpeg) the job still shows it is alive."""
    silent = tmp_path / "ffmpeg"
    silent.write_text("#!/bin/sh\nsleep 2\nexit 1\n")
    silent.chmod(0o755)
    app.config.update(FFMPEG_BINARY=str(silent), JOB_HEARTBEAT_SECONDS=0.2)
    video_id = _queued_video(app, clips["small"])
    thread, _outcome = job_in_background(app, transcode, video_id, lambda video: video.phase == Phase.ENCODING)
    beats = set()
    deadline = time.monotonic() + 1.8
    while time.monotonic() < deadline:
        beats.add(get_video(app, video_id).heartbeat_at)
        time.sleep(0.05)
    thread.join(30)
    assert len(beats - {None}) >= 4
    assert get_video(app, video_id).status == Status.FAILED  # the fake ffmpeg exits 1 in the end


def fake_ffmpeg(tmp_path, script):
    broken = tmp_path / "ffmpeg"
    broken.write_text(f"#!/bin/sh\n{script}\n")
    broken.chmod(0o755)
    return str(broken)


def test_transient_failures_are_retried_then_marked_failed(app, clips, tmp_path):
    app.config["FFMPEG_BINARY"] = fake_ffmpeg(tmp_path, "echo 'simulated encoder crash' >&2\nkill -SEGV $$")
    video_id = _queued_video(app, clips["small"])
    with app.app_context():
        with pytest.raises(FFmpegFailed):
            transcode(video_id, "a" * 32, retries_left=1)
        waiting = db.session.get(Video, video_id)  # playable while the failed part waits for its retry
        assert (waiting.status, waiting.phase) == (Status.READY, Phase.ENCODING)
        assert transcode(video_id, "a" * 32, retries_left=0) == Status.FAILED
    video = get_video(app, video_id)
    assert video.status == Status.FAILED
    assert video.error == "ffmpeg exited with status -11.\nsimulated encoder crash"
    assert not any(path.startswith(".work/") for path in media_files(app))


def test_a_file_ffmpeg_cannot_process_fails_once_with_what_to_do_and_ffmpeg_s_last_lines(app, clips, tmp_path):
    """Deterministic: the same file would fail again, so no retry burns the queue."""
    script = "echo 'Error while decoding stream #0:0: Invalid data found when processing input' >&2\nexit 183"
    app.config["FFMPEG_BINARY"] = fake_ffmpeg(tmp_path, script)
    video_id = _queued_video(app, clips["small"])
    with app.app_context():
        assert transcode(video_id, "a" * 32, retries_left=2) == Status.FAILED  # not raised: no retry
    assert get_video(app, video_id).error == (
        "ffmpeg could not process this file (exit status 183); the same file would fail again. Re-export it "
        "(for example as H.264 in MP4) and upload it again.\n"
        "Error while decoding stream #0:0: Invalid data found when processing input"
    )


def test_an_ffmpeg_that_reports_progress_is_judged_by_it_not_by_the_clock(tmp_path):
    """Progressing past the timeout is fine; no progress for stall_seconds is not."""
    script = tmp_path / "ffmpeg"
    script.write_text(
        "#!/bin/sh\nfor t in 1 2 3 4 5 6; do echo out_time_us=${t}000000; sleep 0.5; done\n"
        "echo out_time_us=6000000\nexec sleep 30\n"
    )
    script.chmod(0o755)
    seen = []
    started = time.monotonic()
    with pytest.raises(FFmpegFailed, match="no progress for 1 s"):
        run_ffmpeg([str(script), "-progress", "pipe:1"], timeout=1, on_progress=seen.append, stall_seconds=1)
    assert seen[:6] == [1, 2, 3, 4, 5, 6]  # ran three times its timeout while it progressed
    assert 3 < time.monotonic() - started < 10


def test_ffmpeg_is_stopped_at_its_timeout(app, tmp_path):
    sleeper = tmp_path / "ffmpeg"
    sleeper.write_text("#!/bin/sh\nexec sleep 30\n")
    sleeper.chmod(0o755)
    started = time.monotonic()
    with app.app_context(), pytest.raises(FFmpegFailed, match="timed out after 1 s"):
        run_ffmpeg([str(sleeper)], timeout=1)
    assert time.monotonic() - started < 10
