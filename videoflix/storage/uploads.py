"""Uploaded files stream straight to disk, into the store's incoming folder, never into memory;
an interrupted upload leaves nothing (its temporary file goes when the request ends)."""

import tempfile

from flask import Request

from videoflix.storage import media_store


class UploadRequest(Request):
    def _get_file_stream(self, total_content_length, content_type, filename=None, content_length=None):
        # Deleted when closed (end of request), whether or not the upload was kept.
        return tempfile.NamedTemporaryFile(dir=media_store().incoming_dir(), prefix="upload-", suffix=".part")
