"""HLS playlists: what a finished rendition measures, and the multivariant (master) playlist."""

from dataclasses import dataclass

import m3u8

from videoflix.media.ffmpeg import FFmpegFailed

AUDIO_CODEC = "mp4a.40.2"  # AAC-LC


@dataclass(frozen=True)
class RenditionStats:
    """Measured from a finished rendition: peak and average bits per second."""

    peak_bps: int
    average_bps: int


def rendition_stats(folder):
    """Peak and average bitrate of a rendition, from its segment sizes and EXTINF durations."""
    playlist = m3u8.load(str(folder / "index.m3u8"))
    if not playlist.segments:
        raise FFmpegFailed(f"ffmpeg wrote no segments for {folder.name}.")
    total_bytes = total_seconds = peak = 0
    for segment in playlist.segments:
        size = (folder / segment.uri).stat().st_size
        total_bytes += size
        total_seconds += segment.duration
        peak = max(peak, size * 8 / max(segment.duration, 0.001))
    return RenditionStats(peak_bps=int(peak), average_bps=int(total_bytes * 8 / max(total_seconds, 0.001)))


def build_master_playlist(rungs, stats, probe):
    """The multivariant playlist: one EXT-X-STREAM-INF per rung, from measured bitrates."""
    codecs = [AUDIO_CODEC] if probe.has_audio else []
    lines = ["#EXTM3U", "#EXT-X-VERSION:6", "#EXT-X-INDEPENDENT-SEGMENTS"]
    for rung in rungs:
        rendition = stats[rung.name]
        attributes = [
            f"BANDWIDTH={rendition.peak_bps}",
            f"AVERAGE-BANDWIDTH={rendition.average_bps}",
            f"RESOLUTION={rung.width}x{rung.height}",
            f'CODECS="{",".join([rung.codecs, *codecs])}"',
            f"FRAME-RATE={probe.fps or 25:.3f}",
        ]
        lines += [f"#EXT-X-STREAM-INF:{','.join(attributes)}", f"{rung.name}/index.m3u8"]
    return "\n".join(lines) + "\n"
