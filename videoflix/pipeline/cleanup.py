"""What deleting a video removes from the store. A job still running for it notices that the
video is gone on its next progress report and removes its own workspace."""

from videoflix.storage import keys, media_store


def delete_video_media(video):
    """The upload, every published version of the renditions, and the poster."""
    store = media_store()
    store.delete(video.source_path)
    store.delete(video.poster_path)
    store.delete_prefix(keys.renditions(video.id))
