"""What `flask media migrate-to-s3` copies: every object the videos refer to, from a local media
folder (the source, the poster, every file of the published rendition version)."""

import os
from dataclasses import dataclass, field
from itertools import chain
from typing import NamedTuple

from videoflix.storage import keys


class LocalObject(NamedTuple):
    key: str
    size: int


@dataclass
class Plan:
    videos: list
    objects: list = field(default_factory=list)  # LocalObject, in video order
    missing: list = field(default_factory=list)  # (video id, key) referred to but not on disk


def plan(videos, local):
    """The objects to copy for `videos` from the LocalStorage `local`."""
    result = Plan(videos=videos)
    for video in videos:
        for key in (video.source_path, video.poster_path):
            if not key:
                continue
            if os.path.isfile(local.path(key)):
                result.objects.append(LocalObject(key, os.path.getsize(local.path(key))))
            else:
                result.missing.append((video.id, key))
        if video.hls_path:
            files = [LocalObject(stored.key, stored.size) for stored in local.list(video.hls_path)]
            if not files:
                result.missing.append((video.id, video.hls_path))
            result.objects.extend(files)
    return result


def stored_sizes(store):
    """key -> size of what the bucket holds already."""
    return {stored.key: stored.size for stored in chain(*(store.list(folder) for folder in keys.FOLDERS))}
