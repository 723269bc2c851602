"""Media on the local disk under MEDIA_ROOT: the embedded default's store.

Every write lands under a temporary name first and is renamed into place, so a reader (or a crash)
never meets half a file. Uploads stream into `incoming_dir()`, inside the root, so that keeping
one is a hard link (no copy of gigabytes), and a finished rendition folder is published with a
single rename."""

import contextlib
import os
import shutil
import uuid
from pathlib import Path

INCOMING = ".incoming"  # uploads while they arrive
WORK = ".work"  # transcode jobs' scratch folders


class LocalStorage:
    name = "local"

    def __init__(self, root):
        self.root = str(root)

    def path(self, key):
        """The file that holds `key` (a plain string: on the per-segment path pathlib measured 9%)."""
        return os.path.join(self.root, key)

    def incoming_dir(self):
        return self._folder(INCOMING)

    def work_root(self):
        """Where jobs build their output: on the same filesystem, so publishing is a rename."""
        return self._folder(WORK)

    def _folder(self, name):
        folder = Path(self.root) / name
        folder.mkdir(parents=True, exist_ok=True)
        return folder

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

    @contextlib.contextmanager
    def local_file(self, key):
        """A local path of `key` for ffmpeg to read: the stored file itself."""
        yield Path(self.path(key))

    # --- removing ---

    def delete(self, key):
        if key:
            Path(self.path(key)).unlink(missing_ok=True)

    def delete_prefix(self, prefix):
        shutil.rmtree(self.path(prefix), ignore_errors=True)
