"""A film cut into chunks of whole segments, so that it is playable as soon as it is probed and any
number of workers encode it: pure planning and ffmpeg arguments, no Flask and no subprocess.

- The grid is known from the duration alone: segments of SEGMENT_SECONDS, the last one shorter.
  So every media playlist is complete (EXT-X-ENDLIST) before a single segment exists: hls.js, which
  treats a playlist without ENDLIST as live and starts at its live edge, starts at 0.
- A chunk is a run of whole segments, encoded by one ffmpeg (every rung, one decode) from an exact
  seek, its timestamps offset to where the chunk sits in the film, its segments numbered globally.
- The sound is encoded once for the whole film, into audio-only segments on the same grid, and
  each video segment is joined with its audio segment by stream copy: AAC encoded per chunk leaves
  20-40 ms gaps at every join (DESIGN.md); one encode has none.
- The first chunks are short, so the first segment exists within seconds; later ones are longer,
  so a long film is not thousands of tasks. A chunk a viewer waits for (a seek ahead) is split so
  that the segment asked for is made alone, first.
- A chunk is named by its first segment: unique, in the film's order, and still so after a split."""

import math
from dataclasses import dataclass

from videoflix.media import ladder
from videoflix.media.ffmpeg import OUTPUT_PROTOCOLS, source_input

SEGMENT_SECONDS = ladder.SEGMENT_SECONDS
CHUNK_SEGMENTS = (1, 2)  # the first chunks' lengths in segments; every later one is STEADY_SEGMENTS
STEADY_SEGMENTS = 5  # 30 s: a few seconds of ffmpeg start-up and seek per chunk stay under 5%
AUDIO_FOLDER = "mux-audio"  # in a version while it is made: the film's sound, cut on the grid
MIN_LAST_SEGMENT = 0.001  # seconds


def segment_durations(duration, fps=None):
    """The EXTINF of every segment of a film of `duration` seconds. A remainder shorter than a
    frame holds no frame to start a segment with: it stays in the segment before."""
    frame = 1 / fps if fps else MIN_LAST_SEGMENT
    count = max(1, math.ceil((duration - frame) / SEGMENT_SECONDS))
    last = duration - SEGMENT_SECONDS * (count - 1)
    return [float(SEGMENT_SECONDS)] * (count - 1) + [round(max(last, MIN_LAST_SEGMENT), 6)]


@dataclass(frozen=True)
class Chunk:
    first_segment: int
    segment_count: int
    start: float  # seconds into the film
    seconds: float
    last: bool = False  # the film's end: its last frame is held to the planned end, whatever the source

    @property
    def number(self):
        return self.first_segment

    @property
    def segments(self):
        return range(self.first_segment, self.first_segment + self.segment_count)

    @property
    def end(self):
        return self.start + self.seconds


def plan_chunks(durations, picture_duration=None):
    """Chunks covering `durations` (segment_durations). A chunk must hold some of the picture: the
    ones that would start after the last frame (sound longer than the picture, held on its last
    frame) are merged into the chunk before them."""
    chunks, first = [], 0
    while first < len(durations):
        index = len(chunks)
        count = CHUNK_SEGMENTS[index] if index < len(CHUNK_SEGMENTS) else STEADY_SEGMENTS
        count = min(count, len(durations) - first)
        if chunks and not holds_picture(first, picture_duration):
            earlier = chunks.pop()
            count, first = earlier.segment_count + len(durations) - first, earlier.first_segment
        chunks.append(chunk_at(durations, first, count))
        first += count
    return chunks


def holds_picture(first_segment, picture_duration):
    """Whether a chunk starting at `first_segment` has a frame of its own to start with."""
    return picture_duration is None or SEGMENT_SECONDS * first_segment < picture_duration - 0.5


def chunk_at(durations, first, count):
    """The chunk of `count` segments of the grid `durations` from segment `first`."""
    end = first + count
    return Chunk(first, count, SEGMENT_SECONDS * first, sum(durations[first:end]), end == len(durations))


def split(first_segment, segment_count, segment):
    """The runs (first segment, count) that a chunk is cut into so that `segment` is a chunk of its
    own, made first when a viewer waits for it: before it, it, after it, none empty. The film's last
    chunk is never cut: it may hold a stretch with no frame of its own (plan_chunks)."""
    end = first_segment + segment_count
    starts = sorted({first_segment, segment, segment + 1} & set(range(first_segment, end)))
    return [(first, following - first) for first, following in zip(starts, [*starts[1:], end], strict=True)]


def segment_name(number):
    return f"{number:03d}.ts"


def media_playlist(durations):
    """A complete VOD media playlist of the grid: segment URIs relative, as the SPA expects."""
    target = math.ceil(max(durations))
    lines = ["#EXTM3U", "#EXT-X-VERSION:3", f"#EXT-X-TARGETDURATION:{target}", "#EXT-X-MEDIA-SEQUENCE:0",
             "#EXT-X-PLAYLIST-TYPE:VOD", "#EXT-X-INDEPENDENT-SEGMENTS"]  # fmt: skip
    for number, seconds in enumerate(durations):
        lines += [f"#EXTINF:{seconds:.6f},", segment_name(number)]
    return "\n".join([*lines, "#EXT-X-ENDLIST", ""])


def build_audio_command(ffmpeg, source, out_dir, probe):
    """One ffmpeg for the film's sound: the first track as audio-only segments on the grid in
    out_dir/AUDIO_FOLDER/ (joined into every rendition), each further track as an alternative audio
    rendition out_dir/audio/<n>/. The timestamps carry the same offset as the chunks' pictures."""
    command = [ffmpeg, "-hide_banner", "-nostdin", "-y", "-loglevel", "error", *source_input(source)]
    stream_map = []
    for number in range(len(probe.audio_tracks) or 1):
        kbps = ladder.REFERENCE_AUDIO_KBPS if number == 0 else ladder.ALTERNATIVE_AUDIO_KBPS
        command += ["-map", f"0:a:{number}", f"-b:a:{number}", f"{kbps}k"]
        folder = AUDIO_FOLDER if number == 0 else ladder.alternative_audio_folder(number)
        stream_map.append(f"a:{number},name:{folder}")
    command += ["-vn", "-c:a", "aac", "-ac", "2", "-ar", "48000", "-output_ts_offset", str(ladder.TS_OFFSET)]
    command += [
        "-f", "hls", "-hls_time", str(SEGMENT_SECONDS), "-hls_playlist_type", "vod",
        "-hls_segment_type", "mpegts", "-hls_segment_filename", f"{out_dir}/%v/%03d.ts",
        "-var_stream_map", " ".join(stream_map), f"{out_dir}/%v/index.m3u8",
        "-progress", "pipe:1", "-nostats",
    ]  # fmt: skip
    return command


def build_join_command(ffmpeg, joins):
    """One ffmpeg that writes every segment of a chunk (each rung's): `joins` is a list of
    (video segment, its audio segments, target). Pictures and sound of the same stretch are put
    together by stream copy, their timestamps kept as they are (no second muxing delay)."""
    command = [ffmpeg, "-hide_banner", "-nostdin", "-y", "-loglevel", "error",
               "-protocol_whitelist", f"{OUTPUT_PROTOCOLS},concat", "-copyts"]  # fmt: skip
    inputs, outputs = {}, []

    def index_of(path):
        if path not in inputs:
            inputs[path] = len(inputs)
        return inputs[path]

    for video, audio, target in joins:
        sound = audio[0] if len(audio) == 1 else "concat:" + "|".join(map(str, audio))
        outputs += ["-map", f"{index_of(str(video))}:v", "-map", f"{index_of(str(sound))}:a", "-c", "copy",
                    "-muxdelay", "0", "-muxpreload", "0", "-f", "mpegts", str(target)]  # fmt: skip
    for path in inputs:
        command += ["-i", path]
    return command + outputs


def audio_for(segment, audio_count, last_segment):
    """The audio segments joined with video segment `segment`: its own, and for the film's last
    segment whatever sound the grid's rounding left after it."""
    if segment >= audio_count:
        return []
    if segment == last_segment:
        return list(range(segment, audio_count))
    return [segment]
