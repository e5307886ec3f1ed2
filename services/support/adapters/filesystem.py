"""Attachments in a directory (``SUPPORT_BLOB_DIR``): ``<dir>/<first two hex>/<key>``.

Writes go to a temporary file in the same directory and are renamed into place, so a
reader never sees half a file. Several replicas may share the directory (NFS or a shared
volume); for several machines without one, use S3."""

import os
import tempfile
from pathlib import Path

from services.support.adapters import BlobNotFound, BlobStore, BlobStoreError, check_key


class FilesystemBlobStore(BlobStore):
    name = "filesystem"

    def __init__(self, root):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key):
        return self.root / check_key(key)[:2] / key

    def put(self, key, data, content_type=None):
        path = self._path(key)
        try:
            path.parent.mkdir(exist_ok=True)
            handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".upload-")
            try:
                with os.fdopen(handle, "wb") as out:
                    out.write(data)
                os.chmod(temporary, 0o640)
                os.replace(temporary, path)
            except BaseException:
                os.unlink(temporary)
                raise
        except OSError as error:
            raise BlobStoreError(f"could not write a blob: {error.strerror}")

    def get(self, key):
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            raise BlobNotFound(f"no blob {key}")
        except OSError as error:
            raise BlobStoreError(f"could not read a blob: {error.strerror}")

    def size(self, key):
        try:
            return self._path(key).stat().st_size
        except FileNotFoundError:
            return None

    def delete(self, key):
        try:
            self._path(key).unlink()
        except FileNotFoundError:
            pass  # already gone: deleting is idempotent

    def keys_older_than(self, cutoff):
        limit = cutoff.timestamp()
        for shard in sorted(self.root.iterdir()):
            if not shard.is_dir() or len(shard.name) != 2:
                continue
            for entry in os.scandir(shard):
                if entry.name.startswith(".upload-"):
                    # a write that died half way; its file is junk once old
                    if entry.stat().st_mtime < limit:
                        os.unlink(entry.path)
                    continue
                if entry.stat().st_mtime < limit:
                    yield entry.name

