"""How much the store holds, per video and in total, read from the store itself: one listing of each
top folder (keys.FOLDERS), each object counted for the video that owns it. The admin caches it for
a few minutes, since listing the bucket of a large catalogue takes a while."""

from dataclasses import dataclass, field
from datetime import UTC, datetime

from videoflix.media import storyboard
from videoflix.storage import keys, media_store


@dataclass
class VideoUsage:
    renditions: int = 0  # bytes of every published version's playlists and segments
    storyboards: int = 0
    source: int = 0
    poster: int = 0
    subtitles: int = 0

    @property
    def total(self):
        return self.renditions + self.storyboards + self.source + self.poster + self.subtitles


@dataclass
class StoreUsage:
    read_at: datetime
    videos: dict = field(default_factory=dict)  # video id -> VideoUsage
    unattributed: int = 0  # objects no video names (left by a crash, or mid-upload)
    total: int = 0

    def of(self, video_id):
        return self.videos.get(video_id, VideoUsage())

    def largest(self, limit=10):
        """[(video id, VideoUsage)], the largest first."""
        return sorted(self.videos.items(), key=lambda item: -item[1].total)[:limit]


def _id_in(key):
    """The video id of a key under a per-video folder (`hls/<id>/...`, `subtitles/<id>/...`)."""
    parts = key.split("/")
    return int(parts[1]) if len(parts) > 2 and parts[1].isdigit() else None


def _add(usage, kind, size):
    setattr(usage, kind, getattr(usage, kind) + size)


def _kind_in_version(key):
    in_storyboard = f"/{storyboard.FOLDER}/" in key or key.endswith(storyboard.TRACK)
    return "storyboards" if in_storyboard else "renditions"


def read_video(video):
    """What the store holds for one video (a few listings, for its edit page)."""
    store, usage = media_store(), VideoUsage()
    for stored in store.list(keys.renditions(video.id)):
        _add(usage, _kind_in_version(stored.key), stored.size)
    usage.subtitles = sum(stored.size for stored in store.list(keys.subtitles(video.id)))
    usage.source = (store.size(video.source_path) or 0) if video.source_path else 0
    usage.poster = (store.size(video.poster_path) or 0) if video.poster_path else 0
    return usage


def read(videos):
    """What the store holds for `videos` (their rows: the source and poster keys are theirs)."""
    owners, known = {}, {video.id for video in videos}
    for video in videos:
        owners.update({video.source_path: (video.id, "source"), video.poster_path: (video.id, "poster")})
    usage = StoreUsage(read_at=datetime.now(UTC))
    store = media_store()
    for folder in keys.FOLDERS:
        for stored in store.list(folder):
            usage.total += stored.size
            if folder in (keys.RENDITIONS, keys.SUBTITLES):
                video_id = _id_in(stored.key)
                kind = "subtitles" if folder == keys.SUBTITLES else _kind_in_version(stored.key)
            else:
                video_id, kind = owners.get(stored.key, (None, None))
            if video_id not in known:
                usage.unattributed += stored.size
                continue
            _add(usage.videos.setdefault(video_id, VideoUsage()), kind, stored.size)
    return usage
