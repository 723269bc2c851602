"""HLS playlists: what a finished rendition measures, and the multivariant (master) playlist."""

import json
import re
from dataclasses import asdict, dataclass

import av
import m3u8

from videoflix.media import subtitles
from videoflix.media.ffmpeg import OUTPUT_PROTOCOLS, FFmpegFailed
from videoflix.media.ladder import REFERENCE_AUDIO_KBPS, alternative_audio_folder

AUDIO_CODEC = "mp4a.40.2"  # AAC-LC


@dataclass(frozen=True)
class RenditionStats:
    """Measured from a finished rendition: peak and average bits per second, and the RFC 6381
    name of its video stream as encoded (x264 writes Main where no High tool was used)."""

    peak_bps: int
    average_bps: int
    video_codec: str = ""


# An H.264 sequence parameter set: the start code, NAL type 7, then profile, constraints, level.
SPS = re.compile(rb"\x00\x00\x01[\x27\x47\x67](...)", re.S)


def video_codec_of(segment):
    """`avc1.PPCCLL` from the first SPS in a segment's first video packet."""
    with av.open(str(segment), options={"protocol_whitelist": OUTPUT_PROTOCOLS}) as container:
        packet = next(container.demux(video=0), None)
        found = SPS.search(bytes(packet)) if packet is not None else None
    if found is None:
        raise FFmpegFailed(f"{segment.parent.name} has no H.264 parameter set in its first segment.")
    return "avc1." + found.group(1).hex()


def rendition_stats(folder):
    """Peak and average bitrate of a rendition, from its segment sizes and EXTINF durations."""
    playlist = m3u8.load(str(folder / "index.m3u8"))
    if not playlist.segments:
        raise FFmpegFailed(f"ffmpeg wrote no segments for {folder.name}.")
    sizes = [[segment.duration, (folder / segment.uri).stat().st_size] for segment in playlist.segments]
    return stats_of(sizes, video_codec_of(folder / playlist.segments[0].uri))


def stats_of(segments, video_codec=""):
    """RenditionStats of a rendition whose segments are [[seconds, bytes], ...]."""
    total_bytes = sum(size for _seconds, size in segments)
    total_seconds = sum(seconds for seconds, _size in segments)
    peak = max(size * 8 / max(seconds, 0.001) for seconds, size in segments)
    return RenditionStats(int(peak), int(total_bytes * 8 / max(total_seconds, 0.001)), video_codec)


@dataclass(frozen=True)
class Variant:
    """One EXT-X-STREAM-INF of the master playlist, as data: the master is always written from
    these (kept beside it as VARIANTS_FILE), never by editing an earlier playlist's text."""

    uri: str
    bandwidth: int
    average_bandwidth: int
    width: int
    height: int
    codecs: str
    frame_rate: float

    @classmethod
    def from_dict(cls, data):
        return cls(
            uri=str(data["uri"]),
            bandwidth=int(data["bandwidth"]),
            average_bandwidth=int(data["average_bandwidth"]),
            width=int(data["width"]),
            height=int(data["height"]),
            codecs=str(data["codecs"]),
            frame_rate=float(data["frame_rate"]),
        )


@dataclass(frozen=True)
class AudioRendition:
    """One audio track in the master playlist: number 0 is the source's first track, muxed into
    every variant (so it has no URI of its own); the others are audio-only renditions."""

    number: int
    language: str | None
    name: str

    @property
    def uri(self):
        return f"{alternative_audio_folder(self.number)}/index.m3u8" if self.number else None

    @classmethod
    def from_dict(cls, data):
        return cls(number=int(data["number"]), language=data.get("language"), name=str(data["name"]))


AUDIO_GROUP = "aud"


def audio_renditions(probe):
    """The source's audio tracks as HLS alternative audio: none unless it has more than one."""
    if len(probe.audio_tracks) < 2:
        return []
    return [
        AudioRendition(
            number=number,
            language=track.language if track.language and subtitles.LANGUAGE.fullmatch(track.language) else None,
            name=subtitles.clean_label(track.title or track.language or f"Audio {number + 1}")[:64]
            or f"Audio {number + 1}",
        )
        for number, track in enumerate(probe.audio_tracks)
    ]


def audio_media_line(rendition):
    """The EXT-X-MEDIA entry of an audio track (values checked again here)."""
    if subtitles.label_problem(rendition.name) or (
        rendition.language is not None and not subtitles.LANGUAGE.fullmatch(rendition.language)
    ):
        raise ValueError(f"not an audio track that can be written into a playlist: {rendition!r}")
    attributes = [f'TYPE=AUDIO,GROUP-ID="{AUDIO_GROUP}"']
    if rendition.language:
        attributes.append(f'LANGUAGE="{rendition.language}"')
    attributes.append(f'NAME="{rendition.name}"')
    attributes.append(f"DEFAULT={'YES' if rendition.number == 0 else 'NO'},AUTOSELECT=YES")
    if rendition.uri:
        attributes.append(f'URI="{rendition.uri}"')
    return "#EXT-X-MEDIA:" + ",".join(attributes)


VARIANTS_FILE = "variants.json"
VARIANT_URI = re.compile(r"[0-9]{3,4}p/index\.m3u8")
CODECS = re.compile(r"[A-Za-z0-9.]+(,[A-Za-z0-9.]+)*")


def variants(rungs, stats, probe):
    """The master's variants: one per rung, from the bitrates the finished renditions measure."""
    audio = [AUDIO_CODEC] if probe.has_audio else []
    return [
        Variant(
            uri=f"{rung.name}/index.m3u8",
            bandwidth=stats[rung.name].peak_bps,
            average_bandwidth=stats[rung.name].average_bps,
            width=rung.width,
            height=rung.height,
            codecs=",".join([stats[rung.name].video_codec or rung.codecs, *audio]),
            frame_rate=probe.fps or 25,
        )
        for rung in rungs
    ]


def planned_variants(rungs, probe):
    """The variants before any segment exists (a chunked transcode's first master): each rung's
    rate cap and the sound's rate as its bandwidth, which no segment exceeds by much; the finish
    writes the measured ones."""
    stats = {}
    for rung in rungs:
        cap = (rung.spec.maxrate_kbps + REFERENCE_AUDIO_KBPS) * 1000
        stats[rung.name] = RenditionStats(peak_bps=cap, average_bps=cap // 2)
    return variants(rungs, stats, probe)


def variants_json(variant_list, audio=()):
    return json.dumps({"variants": [asdict(v) for v in variant_list], "audio": [asdict(a) for a in audio]}, indent=1)


def variants_from_json(text):
    """(variants, audio renditions) as variants_json wrote them (a bare list: variants only)."""
    data = json.loads(text)
    if isinstance(data, list):
        return [Variant.from_dict(item) for item in data], []
    return [Variant.from_dict(item) for item in data["variants"]], [AudioRendition.from_dict(a) for a in data["audio"]]


def master_playlist(variant_list, tracks=(), audio=()):
    """The multivariant playlist from its variants, subtitle tracks and audio tracks; every value
    written is checked against an allow-list, so no input can add a line."""
    lines = ["#EXTM3U", "#EXT-X-VERSION:6", "#EXT-X-INDEPENDENT-SEGMENTS"]
    lines += [audio_media_line(rendition) for rendition in audio]
    lines += [subtitles.media_line(track) for track in tracks]
    for variant in variant_list:
        if not VARIANT_URI.fullmatch(variant.uri) or not CODECS.fullmatch(variant.codecs):
            raise ValueError(f"not a variant of ours: {variant}")
        attributes = [
            f"BANDWIDTH={variant.bandwidth:d}",
            f"AVERAGE-BANDWIDTH={variant.average_bandwidth:d}",
            f"RESOLUTION={variant.width:d}x{variant.height:d}",
            f'CODECS="{variant.codecs}"',
            f"FRAME-RATE={variant.frame_rate:.3f}",
        ]
        if audio:
            attributes.append(f'AUDIO="{AUDIO_GROUP}"')
        if tracks:
            attributes.append(f'SUBTITLES="{subtitles.GROUP}"')
        lines += [f"#EXT-X-STREAM-INF:{','.join(attributes)}", variant.uri]
    return "\n".join(lines) + "\n"


def variants_of_legacy_master(text, renditions):
    """Variants read back from a master written before VARIANTS_FILE existed, keeping only the
    entries that name one of the video's own renditions (what a forged line added is dropped)."""
    allowed = {f"{name}/index.m3u8" for name in renditions}
    found = []
    for entry in m3u8.loads(text).playlists:
        info = entry.stream_info
        if entry.uri not in allowed or not info.resolution or not info.bandwidth:
            continue
        found.append(
            Variant(
                uri=entry.uri,
                bandwidth=int(info.bandwidth),
                average_bandwidth=int(info.average_bandwidth or info.bandwidth),
                width=int(info.resolution[0]),
                height=int(info.resolution[1]),
                codecs=info.codecs or "",
                frame_rate=float(info.frame_rate or 25),
            )
        )
    return list({variant.uri: variant for variant in found}.values())
