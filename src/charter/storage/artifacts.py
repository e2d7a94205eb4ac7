"""Content-addressed artifact store on a local directory.

Conventions:

* An artifact is identified only by the sha256 of its bytes, written as 64 lowercase hex digits.
  It lives at ``<root>/sha256/<first two hex digits>/<all 64 hex digits>``. No caller-supplied name
  ever becomes part of a path, so there is nothing to traverse or collide on.
* Writes are atomic and durable: the bytes go to a temporary file in the destination's filesystem,
  are flushed and ``fsync``-ed, moved into place with ``os.replace`` and then the directory is
  ``fsync``-ed. A reader therefore sees either no file or the complete file, never a partial one.
* Storing the same bytes twice is a no-op that yields the same hash and the same single file;
  if the stored copy was damaged, storing the bytes again repairs it.
* Stored files are made read-only (mode 0444): artifacts are immutable once written.
* Every read re-hashes the bytes and compares them with the hash the caller asked for (which is
  the hash the registry holds). A mismatch raises :class:`ArtifactIntegrityError` and nothing is
  returned, so a tampered or corrupted artifact can never be loaded.
* The root directory is created lazily on the first write; reading from a store that was never
  written raises :class:`NotFound`.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
from pathlib import Path
from typing import BinaryIO

from charter.errors import ArtifactIntegrityError, InvalidArgument, NotFound

__all__ = ["ArtifactStore", "sha256_bytes"]

_HASH_RE = re.compile(r"[0-9a-f]{64}")
_CHUNK = 1024 * 1024
_TMP_PREFIX = ".tmp-"
_FILE_MODE = 0o444


def sha256_bytes(data: bytes | bytearray | memoryview) -> str:
    """Return the sha256 of ``data`` as 64 lowercase hex digits."""
    return hashlib.sha256(data).hexdigest()


def _validate_hash(sha256: object) -> str:
    if not isinstance(sha256, str) or _HASH_RE.fullmatch(sha256) is None:
        raise InvalidArgument(
            f"not a sha256 digest: {sha256!r}",
            field="sha256",
            remedy="pass the 64 lowercase hexadecimal digits of the artifact's sha256",
        )
    return sha256


def _fsync_dir(directory: Path) -> None:
    """Make a rename or file creation in ``directory`` durable (POSIX only)."""
    if os.name != "posix":  # pragma: no cover - directories cannot be opened on Windows
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class ArtifactStore:
    """A content-addressed store of immutable byte blobs under ``root``."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    # -- paths -----------------------------------------------------------------------------------

    @property
    def _objects(self) -> Path:
        return self.root / "sha256"

    def path_for(self, sha256: str) -> Path:
        """The path where the artifact with this hash is (or would be) stored."""
        digest = _validate_hash(sha256)
        return self._objects / digest[:2] / digest

    # -- writing ---------------------------------------------------------------------------------

    def _ensure_dir(self, directory: Path) -> None:
        """Create ``directory`` (and parents) and make each new entry durable."""
        missing: list[Path] = []
        current = directory
        while not current.exists():
            missing.append(current)
            if current.parent == current:  # pragma: no cover - filesystem root
                break
            current = current.parent
        directory.mkdir(parents=True, exist_ok=True)
        for created in reversed(missing):
            _fsync_dir(created.parent)

    def _commit(self, tmp: Path, digest: str) -> None:
        """Atomically move the finished temporary file ``tmp`` into place for ``digest``."""
        final = self.path_for(digest)
        os.chmod(tmp, _FILE_MODE)
        os.replace(tmp, final)
        _fsync_dir(final.parent)
        if tmp.parent != final.parent:
            _fsync_dir(tmp.parent)

    def _already_stored(self, digest: str, size: int) -> bool:
        """Whether an intact copy is stored; a damaged copy is overwritten by the caller."""
        final = self.path_for(digest)
        try:
            if not final.is_file() or final.stat().st_size != size:
                return False
            hasher = hashlib.sha256()
            with final.open("rb") as stored:
                while block := stored.read(_CHUNK):
                    hasher.update(block)
        except OSError:  # pragma: no cover - raced with a concurrent removal
            return False
        return hasher.hexdigest() == digest

    def _write_temp(self, directory: Path, source: bytes | BinaryIO) -> tuple[Path, str, int]:
        """Write ``source`` (bytes or a binary stream) to a new temporary file in ``directory``.

        Returns the temporary path, the sha256 and the size of what was written. The file is
        flushed and fsync-ed before this returns; on any error it is removed.
        """
        self._ensure_dir(directory)
        fd, name = tempfile.mkstemp(prefix=_TMP_PREFIX, suffix=".part", dir=directory)
        tmp = Path(name)
        hasher = hashlib.sha256()
        size = 0
        try:
            with os.fdopen(fd, "wb") as out:
                if isinstance(source, bytes):
                    hasher.update(source)
                    out.write(source)
                    size = len(source)
                else:
                    while block := source.read(_CHUNK):
                        hasher.update(block)
                        out.write(block)
                        size += len(block)
                out.flush()
                os.fsync(out.fileno())
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        return tmp, hasher.hexdigest(), size

    def put_bytes(self, data: bytes | bytearray | memoryview) -> str:
        """Store ``data`` and return its sha256. Idempotent: equal bytes are stored once."""
        if not isinstance(data, bytes | bytearray | memoryview):
            raise InvalidArgument(
                f"artifact data must be bytes, not {type(data).__name__}",
                field="data",
                remedy="serialise the object to bytes first",
            )
        payload = bytes(data)
        digest = sha256_bytes(payload)
        if self._already_stored(digest, len(payload)):
            return digest
        final = self.path_for(digest)
        tmp, written, _ = self._write_temp(final.parent, payload)
        try:
            if written != digest:  # pragma: no cover - would mean memory corruption
                raise ArtifactIntegrityError(
                    f"bytes changed while being written: expected {digest}, wrote {written}",
                    remedy="retry the write",
                )
            self._commit(tmp, digest)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        return digest

    def put_file(self, path: Path | str) -> tuple[str, int]:
        """Store the content of the file at ``path``, streamed in chunks; return (sha256, size).

        The file is read once: hashing and copying happen in the same pass, into a temporary
        file under the store's root, which is then renamed into place.
        """
        source = Path(path)
        if not source.is_file():
            raise NotFound(
                f"no such file: {source}",
                field="path",
                remedy="pass the path of an existing regular file",
            )
        with source.open("rb") as stream:
            tmp, digest, size = self._write_temp(self._objects, stream)
        try:
            if self._already_stored(digest, size):
                tmp.unlink()
            else:
                self._ensure_dir(self.path_for(digest).parent)
                self._commit(tmp, digest)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        return digest, size

    # -- reading ---------------------------------------------------------------------------------

    def exists(self, sha256: str) -> bool:
        """Whether an artifact with this hash is stored (its content is not verified here)."""
        return self.path_for(sha256).is_file()

    def _existing(self, sha256: str) -> Path:
        path = self.path_for(sha256)
        if not path.is_file():
            raise NotFound(
                f"no artifact with sha256 {sha256} in {self.root}",
                field="sha256",
                remedy="check the hash, the artifact store location (CHARTER_HOME), or restore "
                "the artifact from backup",
            )
        return path

    def size(self, sha256: str) -> int:
        """The size in bytes of the stored artifact."""
        return self._existing(sha256).stat().st_size

    def get_bytes(self, sha256: str) -> bytes:
        """Return the artifact's bytes after checking they hash to ``sha256``.

        ``sha256`` is the hash the registry holds for the artifact, so this is the check that
        the registry's hash is verified before every load.
        """
        path = self._existing(sha256)
        data = path.read_bytes()
        actual = sha256_bytes(data)
        if actual != sha256:
            raise ArtifactIntegrityError(
                f"artifact {path} does not match its registered hash: expected sha256 {sha256}, "
                f"actual sha256 {actual}; refusing to load it",
                field="sha256",
                remedy="restore the artifact from backup or re-register the model version",
                details={"expected": sha256, "actual": actual, "path": str(path)},
            )
        return data
