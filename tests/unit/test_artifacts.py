"""Tests of the content-addressed artifact store."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from charter.errors import ArtifactIntegrityError, InvalidArgument, NotFound
from charter.storage.artifacts import ArtifactStore, sha256_bytes


def _all_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def test_sha256_bytes_matches_hashlib() -> None:
    assert sha256_bytes(b"abc") == hashlib.sha256(b"abc").hexdigest()


def test_root_is_created_lazily(tmp_path: Path) -> None:
    root = tmp_path / "store"
    store = ArtifactStore(root)
    assert not root.exists()
    store.put_bytes(b"x")
    assert root.is_dir()


def test_put_get_round_trip(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path / "store")
    data = b"model bytes \x00\x01\x02"
    digest = store.put_bytes(data)
    assert digest == hashlib.sha256(data).hexdigest()
    assert store.exists(digest)
    assert store.get_bytes(digest) == data
    assert store.size(digest) == len(data)
    assert store.path_for(digest) == tmp_path / "store" / "sha256" / digest[:2] / digest


def test_same_bytes_stored_once(tmp_path: Path) -> None:
    store = ArtifactStore(str(tmp_path / "store"))
    first = store.put_bytes(b"same")
    second = store.put_bytes(bytearray(b"same"))
    assert first == second
    assert _all_files(tmp_path / "store") == [store.path_for(first)]


def test_flipped_byte_is_refused(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path / "store")
    digest = store.put_bytes(b"a model that will be tampered with")
    path = store.path_for(digest)
    os.chmod(path, 0o644)  # stored artifacts are read-only; the attacker changes that first
    raw = bytearray(path.read_bytes())
    raw[3] ^= 0x01
    path.write_bytes(bytes(raw))
    with pytest.raises(ArtifactIntegrityError) as info:
        store.get_bytes(digest)
    err = info.value
    actual = hashlib.sha256(bytes(raw)).hexdigest()
    assert digest in err.message
    assert actual in err.message
    assert str(path) in err.message
    assert err.remedy is not None and "backup" in err.remedy
    assert err.details == {"expected": digest, "actual": actual, "path": str(path)}


def test_stored_files_are_read_only(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path / "store")
    digest = store.put_bytes(b"immutable")
    assert store.path_for(digest).stat().st_mode & 0o222 == 0


@pytest.mark.parametrize(
    "bad",
    ["", "abc", "A" * 64, "g" * 64, "0" * 63, "0" * 65, "../" + "0" * 61, "0" * 63 + "\n"],
)
def test_malformed_hash_is_invalid(tmp_path: Path, bad: str) -> None:
    store = ArtifactStore(tmp_path / "store")
    for call in (store.get_bytes, store.exists, store.path_for, store.size):
        with pytest.raises(InvalidArgument) as info:
            call(bad)
        assert info.value.field == "sha256"


def test_missing_artifact_is_not_found(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path / "store")
    missing = "0" * 64
    assert not store.exists(missing)
    with pytest.raises(NotFound):
        store.get_bytes(missing)
    with pytest.raises(NotFound):
        store.size(missing)


def test_put_bytes_rejects_non_bytes(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path / "store")
    with pytest.raises(InvalidArgument):
        store.put_bytes("text")


def test_no_temporary_files_left(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path / "store")
    digests = {store.put_bytes(bytes([i]) * (i + 1)) for i in range(20)}
    store.put_bytes(b"\x00")  # a repeat
    source = tmp_path / "source.bin"
    source.write_bytes(b"from a file")
    digests.add(store.put_file(source)[0])
    digests.add(store.put_file(source)[0])  # a repeat through the streaming path
    files = _all_files(tmp_path / "store")
    assert not [p for p in files if p.name.startswith(".tmp-") or p.suffix == ".part"]
    assert sorted(files) == sorted(store.path_for(d) for d in digests)


def test_put_file_streams_large_file(tmp_path: Path) -> None:
    source = tmp_path / "big.bin"
    data = os.urandom(5 * 1024 * 1024 + 123)  # several chunks and a partial one
    source.write_bytes(data)
    store = ArtifactStore(tmp_path / "store")
    digest, size = store.put_file(source)
    assert digest == hashlib.sha256(data).hexdigest()
    assert size == len(data)
    assert store.get_bytes(digest) == data
    assert store.put_bytes(data) == digest
    assert len(_all_files(tmp_path / "store")) == 1


def test_put_file_missing_source(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path / "store")
    with pytest.raises(NotFound):
        store.put_file(tmp_path / "nope.bin")


def test_put_heals_a_truncated_copy(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path / "store")
    data = b"complete content"
    digest = store.put_bytes(data)
    path = store.path_for(digest)
    os.chmod(path, 0o644)
    path.write_bytes(data[:4])
    assert store.put_bytes(data) == digest
    assert store.get_bytes(digest) == data


def test_put_heals_a_same_size_corruption(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path / "store")
    data = b"complete content"
    digest = store.put_bytes(data)
    path = store.path_for(digest)
    os.chmod(path, 0o644)
    path.write_bytes(b"X" + data[1:])
    source = tmp_path / "source.bin"
    source.write_bytes(data)
    assert store.put_file(source) == (digest, len(data))
    assert store.get_bytes(digest) == data
