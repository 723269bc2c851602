"""A film playable as soon as it is probed, made in chunks (media/chunks.py, pipeline/chunked.py):
complete VOD playlists before any segment, segments made on request, joins without a gap."""

import contextlib
import os
from datetime import UTC, datetime
from pathlib import Path

import av
import m3u8
import pytest
import sqlalchemy as sa

from tests.conftest import make_clip
from tests.helpers import get_video, import_video, only_video, run_part, started, starts_with_keyframe
from videoflix.extensions import db
from videoflix.media import chunks, ladder
from videoflix.media.ffmpeg import BACKGROUND_NICENESS, in_foreground, run_ffmpeg
from videoflix.pipeline import chunked, tasks
from videoflix.queue import task as queue_task
from videoflix.videos.models import PartKind, PartState, Phase, Status, TranscodePart

# --- planning (pure) ---


def test_the_grid_is_whole_segments_and_a_shorter_last_one():
    assert chunks.segment_durations(13.0) == [6.0, 6.0, 1.0]
    assert chunks.segment_durations(12.0) == [6.0, 6.0]
    assert chunks.segment_durations(2.5) == [2.5]
    # less than a frame past the grid holds no frame to start a segment with: it stays in the last
    assert chunks.segment_durations(12.02, fps=25) == [6.0, 6.02]
    assert chunks.segment_durations(12.05, fps=25) == [6.0, 6.0, 0.05]


def test_chunks_start_short_then_cover_five_segments_each():
    plan = chunks.plan_chunks(chunks.segment_durations(100.0))
    assert [(c.first_segment, c.segment_count) for c in plan] == [(0, 1), (1, 2), (3, 5), (8, 5), (13, 4)]
    assert [c.start for c in plan] == [0, 6, 18, 48, 78]
    assert plan[-1].seconds == pytest.approx(22.0) and plan[-1].last and not any(c.last for c in plan[:-1])
    assert [c.number for c in plan] == [0, 1, 3, 8, 13]  # named by their first segment


def test_a_chunk_is_cut_so_that_the_segment_asked_for_is_made_alone():
    assert chunks.split(3, 5, 5) == [(3, 2), (5, 1), (6, 2)]
    assert chunks.split(3, 5, 3) == [(3, 1), (4, 4)]
    assert chunks.split(3, 5, 7) == [(3, 4), (7, 1)]
    assert chunks.split(8, 1, 8) == [(8, 1)]


def test_no_chunk_starts_after_the_last_frame():
    """Sound far longer than the picture: the tail is one chunk holding the last frame."""
    plan = chunks.plan_chunks(chunks.segment_durations(60.0), picture_duration=10.0)
    assert [(c.first_segment, c.segment_count) for c in plan] == [(0, 1), (1, 9)]


def test_a_playlist_of_the_grid_is_complete_vod():
    text = chunks.media_playlist([6.0, 6.0, 1.5])
    playlist = m3u8.loads(text)
    assert playlist.is_endlist and playlist.playlist_type == "vod" and playlist.target_duration == 6
    assert [(s.uri, s.duration) for s in playlist.segments] == [("000.ts", 6.0), ("001.ts", 6.0), ("002.ts", 1.5)]


def test_the_last_segment_takes_the_sound_the_grid_rounding_left():
    assert chunks.audio_for(0, 3, 1) == [0]
    assert chunks.audio_for(1, 3, 1) == [1, 2]
    assert chunks.audio_for(2, 2, 3) == []  # the sound ended before this stretch


# --- through the API ---


@pytest.fixture(scope="module")
def film(tmp_path_factory):
    """25 s at 29.97 fps with a steady tone: four chunks, joins off the frame grid."""
    return make_clip(tmp_path_factory.mktemp("film") / "film.mp4", 320, 180, seconds=25, fps="30000/1001")


def test_a_film_is_listed_and_its_playlists_are_complete_before_any_segment(app, client, auth, film):
    video_id = started(app, film)
    auth.signed_in()
    assert [v["id"] for v in client.get("/api/video/").get_json()] == [video_id]
    video = get_video(app, video_id)
    assert (video.status, video.phase, video.progress) == (Status.READY, Phase.ENCODING, 0)
    for name in ("480p", "720p", "1080p"):  # 1080p answers with the best rendition there is
        response = client.get(f"/api/video/{video_id}/{name}/index.m3u8")
        assert response.status_code == 200
        playlist = m3u8.loads(response.get_data(as_text=True))
        assert playlist.is_endlist
        assert [s.duration for s in playlist.segments] == pytest.approx([6.0, 6.0, 6.0, 6.0, 1.0], abs=0.01)
    master = client.get(f"/api/video/{video_id}/master.m3u8").get_data(as_text=True)
    assert "480p/index.m3u8" in master and "BANDWIDTH=" in master
    assert list((Path(app.config["MEDIA_ROOT"]) / video.hls_path / "480p").glob("*.ts")) == []


def chunk_rows(app):
    """{chunk number: (first segment, segment count, state)}."""
    with app.app_context():
        rows = db.session.execute(
            sa.select(TranscodePart.number, TranscodePart.first_segment, TranscodePart.segment_count,
                      TranscodePart.state).where(TranscodePart.kind == PartKind.CHUNK)
        ).all()  # fmt: skip
    return {number: (first, count, state) for number, first, count, state in rows}


def test_a_far_segment_asked_for_early_is_made_for_it_alone(app, client, auth, film):
    video_id = started(app, film)
    run_part(app, video_id, PartKind.SOUND)
    assert chunk_rows(app) == {0: (0, 1, PartState.QUEUED), 1: (1, 2, PartState.QUEUED), 3: (3, 2, PartState.QUEUED)}
    auth.signed_in()
    response = client.get(f"/api/video/{video_id}/480p/002.ts")  # in chunk 1 (segments 1-2): cut, made first
    assert response.status_code == 200 and response.mimetype == "video/MP2T"
    assert chunk_rows(app) == {0: (0, 1, PartState.QUEUED), 1: (1, 1, PartState.QUEUED), 2: (2, 1, PartState.DONE),
                               3: (3, 2, PartState.QUEUED)}  # fmt: skip
    version = Path(app.config["MEDIA_ROOT"]) / get_video(app, video_id).hls_path
    assert sorted(path.name for path in (version / "480p").glob("*.ts")) == ["002.ts"]
    # The film's last chunk is never cut (it may hold a stretch with no frame of its own): made whole.
    assert client.get(f"/api/video/{video_id}/480p/003.ts").status_code == 200
    assert chunk_rows(app)[3] == (3, 2, PartState.DONE)
    assert client.get(f"/api/video/{video_id}/480p/005.ts").status_code == 404  # beyond the film
    with app.app_context():  # the other chunks made as workers make them: the last one queues the finish
        for number in (0, 1):
            tasks.transcode_chunk(video_id, "f" * 32, number)
    video = get_video(app, video_id)
    assert (video.status, video.phase, video.progress) == (Status.READY, Phase.FAST, 100)
    playlist = Path(app.config["MEDIA_ROOT"]) / video.hls_path / "480p" / "index.m3u8"
    durations = [segment.duration for segment in m3u8.load(str(playlist)).segments]
    assert len(durations) == 5 and sum(durations) == pytest.approx(video.duration, abs=0.05)
    assert all(starts_with_keyframe(playlist.parent / f"{number:03d}.ts") for number in range(5))


def test_a_segment_still_in_the_making_past_the_wait_is_a_503_with_retry_after(app, client, auth, film):
    app.config["SEGMENT_WAIT_SECONDS"] = 0.3
    video_id = started(app, film)
    with app.app_context():  # another worker has chunk 1 and beats for it
        db.session.execute(
            sa.update(TranscodePart)
            .where(TranscodePart.kind == PartKind.CHUNK, TranscodePart.number == 1)
            .values(state=PartState.RUNNING, heartbeat_at=datetime.now(UTC))
        )
        db.session.commit()
    auth.signed_in()
    response = client.get(f"/api/video/{video_id}/480p/002.ts")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "2"
    assert response.get_json() == {"detail": "This part of the video is still being prepared. Try again in a moment."}


def packets(paths, kind):
    found = []
    for path in paths:
        with av.open(str(path)) as container:
            stream = next(s for s in container.streams if s.type == kind)
            found += [(packet.pts * packet.time_base, packet.duration * packet.time_base, packet.is_keyframe)
                      for packet in container.demux(stream) if packet.pts is not None]  # fmt: skip
    return found


def test_a_finished_chunked_ladder_has_whole_segments_and_seamless_joins(app, runner, film):
    assert import_video(runner, film).exit_code == 0
    video = only_video(app)
    assert (video.status, video.phase, video.progress, video.error) == (Status.READY, Phase.FAST, 100, None)
    version = Path(app.config["MEDIA_ROOT"]) / video.hls_path
    counts = set()
    for name in video.renditions:
        folder = version / name
        segments = [folder / s.uri for s in m3u8.load(str(folder / "index.m3u8")).segments]
        counts.add(len(segments))
        assert all(starts_with_keyframe(path) for path in segments)
        frames = sorted(packets(segments, "video"))
        gaps = [float(b[0] - a[0]) for a, b in zip(frames, frames[1:], strict=False)]
        assert max(gaps) < 1.5 / video.fps and min(gaps) > 0.5 / video.fps  # no jump or repeat at any join
    assert counts == {5}
    sound = packets([version / "480p" / chunks.segment_name(n) for n in range(5)], "audio")
    for before, after in zip(sound, sound[1:], strict=False):  # one encode: each packet follows the last exactly
        assert after[0] == before[0] + before[1]
    assert float(sound[-1][0] + sound[-1][1] - sound[0][0]) == pytest.approx(25.0, abs=0.05)
    assert not (version / chunks.AUDIO_FOLDER).exists()
    assert video.has_storyboard and video.poster_path
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(TranscodePart)) == 0
    assert float(sorted(packets([version / "480p" / "000.ts"], "video"))[0][0]) == pytest.approx(
        ladder.TS_OFFSET + 1.4, abs=0.01
    )


def own_sound_rows(app):
    with app.app_context():
        return set(db.session.scalars(sa.select(TranscodePart.number).where(TranscodePart.own_sound.is_(True))))


def test_a_seek_ahead_of_the_films_sound_is_made_with_its_own_and_made_again_with_the_films(app, client, auth, film):
    """A viewer does not wait for the film's sound to get there (on a long film, a minute of reading
    the whole source): the segment carries its own stretch of sound at once; before the finish its
    chunk is made again with the film's sound, so the published film has one sound without a join."""
    video_id = started(app, film)  # the sound is queued, not running
    auth.signed_in()
    response = client.get(f"/api/video/{video_id}/480p/002.ts")  # hurried: made alone, with its own sound
    assert response.status_code == 200
    assert own_sound_rows(app) == {2}
    version = Path(app.config["MEDIA_ROOT"]) / get_video(app, video_id).hls_path
    sound, pictures = (packets([version / "480p" / "002.ts"], kind) for kind in ("audio", "video"))
    aac_priming = 1024 / 48000  # the encoder's first frame starts this much before the stretch
    assert float(min(pictures)[0] - sound[0][0]) == pytest.approx(aac_priming, abs=0.002)  # where it sits
    assert float(sound[-1][0] + sound[-1][1] - sound[0][0]) == pytest.approx(6.0 + aac_priming, abs=0.03)
    with app.app_context():  # the rest as workers make them: the last part done queues chunk 2 again
        tasks.transcode_sound(video_id, "f" * 32)
        for number in (0, 1, 3):
            tasks.transcode_chunk(video_id, "f" * 32, number)
    video = get_video(app, video_id)
    assert (video.status, video.phase, video.progress) == (Status.READY, Phase.FAST, 100)
    version = Path(app.config["MEDIA_ROOT"]) / video.hls_path
    sound = packets([version / "480p" / chunks.segment_name(n) for n in range(5)], "audio")
    for before, after in zip(sound, sound[1:], strict=False):  # the film's one sound throughout
        assert after[0] == before[0] + before[1]


def test_a_chunk_whose_sound_is_not_under_way_goes_back_to_the_queue_without_holding_a_thread(app, film):
    video_id = started(app, film)  # the sound is queued, not running: nobody makes it right now
    with app.app_context():
        result = chunked.run_part(video_id, "f" * 32, PartKind.CHUNK, 0, chunked.make_chunk)
        state = db.session.scalar(
            sa.select(TranscodePart.state).where(TranscodePart.kind == PartKind.CHUNK, TranscodePart.number == 0)
        )
    assert (result, state) == (chunked.WAITING, PartState.QUEUED)
    run_part(app, video_id, PartKind.SOUND)
    run_part(app, video_id, PartKind.CHUNK, 0)  # once the sound is there, the chunk is made


def test_the_hurry_lane_makes_a_segment_a_viewer_waits_for_and_nothing_else(app, film):
    video_id = started(app, film)
    run_part(app, video_id, PartKind.SOUND)
    with app.app_context():
        assert tasks.run_hurried_once() == (False, False)  # nothing hurried: the lane waits
        assert chunked.hurry(video_id, "f" * 32, 2) == (2, [])  # as a seek does, without queueing
        assert tasks.run_hurried_once() == (True, True)
        assert tasks.run_hurried_once() == (False, False)
    rows = chunk_rows(app)
    assert rows[2] == (2, 1, PartState.DONE) and rows[1] == (1, 1, PartState.QUEUED)
    with app.app_context():  # the queued copy of the hurried task finds it made
        assert chunked.run_part(video_id, "f" * 32, PartKind.CHUNK, 2, chunked.make_chunk) == chunked.SKIPPED


@queue_task()
def report_niceness(path, foreground=False):
    with in_foreground() if foreground else contextlib.nullcontext():
        run_ffmpeg(["sh", "-c", f"nice > {path}"], timeout=10)


def test_the_queues_encodes_yield_the_cpu_to_the_hurry_lane(app, tmp_path):
    """Every ffmpeg a queued task starts runs nicer than the rest of the machine; the lane's does
    not, nor a film's sound, which every chunk waits for (chunked.make_sound)."""
    base = os.nice(0)
    run_ffmpeg(["sh", "-c", f"nice > {tmp_path / 'lane.txt'}"], timeout=10)  # as the lane runs it
    report_niceness(str(tmp_path / "queued.txt"))  # as a worker thread runs it (here, at once)
    report_niceness(str(tmp_path / "sound.txt"), foreground=True)
    assert int((tmp_path / "lane.txt").read_text()) == base
    assert int((tmp_path / "queued.txt").read_text()) == min(19, base + BACKGROUND_NICENESS)
    assert int((tmp_path / "sound.txt").read_text()) == base
