"""Media on the local disk under MEDIA_ROOT: the embedded default's store.

Every write lands under a temporary name first and is renamed into place, so a reader (or a crash)
never meets half a file. Uploads stream into `incoming_dir()`, inside the root, so that keeping
one is a hard link (no copy of gigabytes), and a finished rendition folder is published with a
single rename."""

import contextlib
import os
import shutil
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

from videoflix.storage.errors import StorageUnavailable

INCOMING = ".incoming"  # uploads while they arrive
WORK = ".work"  # transcode jobs' scratch folders


class StoredObject(NamedTuple):
    key: str
    modified: datetime
    size: int


class ScratchFolders:
    """This machine's folders under MEDIA_ROOT for uploads while they arrive and for jobs' work;
    every store has them (with object storage, MEDIA_ROOT holds nothing else)."""

    def __init__(self, root):
        self.root = str(root)

    def incoming_dir(self):
        return self._folder(INCOMING)

    def work_root(self):
        """Where jobs build their output (for the disk store: on its filesystem, so publishing is a rename)."""
        return self._folder(WORK)

    def _folder(self, name):
        folder = Path(self.root) / name
        folder.mkdir(parents=True, exist_ok=True)
        return folder


class LocalStorage(ScratchFolders):
    name = "local"

    def describe(self):
        return f"local disk at {self.root}"

    def check(self):
        """Raise StorageUnavailable unless the store can be written."""
        if not os.access(self.root, os.W_OK | os.X_OK):
            raise StorageUnavailable(f"MEDIA_ROOT {self.root} is not a writable folder.")

    def path(self, key):
        """The file that holds `key` (a plain string: on the per-segment path pathlib measured 9%)."""
        return os.path.join(self.root, key)

    # --- writing ---

    def put_file(self, key, source):
        """Store a copy of the local file `source` under `key`. A file that arrived in this store's
        incoming folder is linked instead of copied: it is ours, and it never changes again."""
        target = Path(self.path(key))
        target.parent.mkdir(parents=True, exist_ok=True)
        if Path(source).parent == Path(self.root) / INCOMING:
            with contextlib.suppress(OSError):  # a filesystem without hard links copies instead
                os.link(source, target)
                return
        partial = target.with_name(f"{target.name}.{uuid.uuid4().hex[:8]}.part")
        try:
            shutil.copyfile(source, partial)
            os.replace(partial, target)
        finally:
            partial.unlink(missing_ok=True)

    def put_tree(self, folder, prefix):
        """Publish a finished local folder as `prefix`, whole or not at all."""
        target = Path(self.path(prefix))
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(target, ignore_errors=True)
        try:
            os.replace(folder, target)
        except OSError:  # another filesystem: copy beside the target, then rename into place
            partial = target.with_name(f"{target.name}.part")
            shutil.copytree(folder, partial)
            os.replace(partial, target)

    # --- reading ---

    def exists(self, key):
        return os.path.exists(self.path(key))

    def size(self, key):
        """The file's size in bytes; None when there is no such file."""
        try:
            return os.path.getsize(self.path(key))
        except FileNotFoundError:
            return None

    @contextlib.contextmanager
    def local_file(self, key, folder=None):
        """A local path of `key` for ffmpeg to read: the stored file itself (`folder` is not needed)."""
        yield Path(self.path(key))

    def redirect_target(self, key, cors):
        """The path under the proxy's internal location (X-Accel-Redirect), None when there is no such
        object. nginx copies the app's CORS headers itself here, so `cors` changes nothing."""
        return key if self.exists(key) else None

    def list(self, prefix):
        """A StoredObject for every file under the folder `prefix`, the scratch folders left out."""
        base = Path(self.root)
        for folder, dirs, files in os.walk(base / prefix):
            dirs[:] = [name for name in dirs if not name.startswith(".")]
            for name in files:
                path = Path(folder) / name
                with contextlib.suppress(FileNotFoundError):  # removed while we walk
                    stat = path.stat()
                    modified = datetime.fromtimestamp(stat.st_mtime, UTC)
                    yield StoredObject(path.relative_to(base).as_posix(), modified, stat.st_size)

    # --- removing ---

    def delete(self, key):
        if key:
            Path(self.path(key)).unlink(missing_ok=True)

    def delete_prefix(self, prefix):
        shutil.rmtree(self.path(prefix), ignore_errors=True)
