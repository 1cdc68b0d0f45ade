"""Damaged, truncated and forged backup archives are refused cleanly, leave nothing behind, and a retry works."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import tarfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from workloads.rag.stores.base import (
    BackupVerificationError,
    Point,
    RestoreMismatchError,
    StoreError,
    VectorStore,
)
from workloads.rag.stores.qdrant_edge import QdrantEdgeStore

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

DIM = 16
N = 120

Members = list[tuple[tarfile.TarInfo, bytes]]


def points(seed: int = 0) -> list[Point]:
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((N, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return [
        Point(str(uuid.UUID(int=i + 1)), vectors[i], {"source": f"d{i % 3}.md", "text": f"t{i}"})
        for i in range(N)
    ]


@pytest.fixture(scope="module")
def archives(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, Path]]]:
    root = tmp_path_factory.mktemp("backups")
    store = QdrantEdgeStore(root / "src")
    store.create_collection("docs_v1", DIM)
    store.upsert("docs_v1", points())
    store.finalize("docs_v1")
    out = {kind: root / f"{kind}.tar.gz" for kind in ("native", "logical")}
    for kind, path in out.items():
        store.backup("docs_v1", path, kind=kind)  # type: ignore[arg-type]
    store.close()
    yield root, out


@pytest.fixture()
def target(tmp_path: Path) -> Iterator[VectorStore]:
    store = QdrantEdgeStore(tmp_path / "target")
    yield store
    store.close()


def read(archive: Path) -> Members:
    with tarfile.open(archive, "r:gz") as tar:
        return [(m, tar.extractfile(m).read() if m.isfile() else b"") for m in tar.getmembers()]  # type: ignore[union-attr]


def write(members: Members, out: Path) -> Path:
    with tarfile.open(out, "w:gz") as tar:
        for info, data in members:
            info.size = len(data) if info.isfile() else 0
            tar.addfile(info, io.BytesIO(data) if info.isfile() else None)
    return out


def manifest_of(members: Members) -> dict:
    return json.loads(members[0][1])


def with_manifest(members: Members, manifest: dict) -> Members:
    info = members[0][0]
    return [(info, json.dumps(manifest).encode()), *members[1:]]


def biggest(members: Members) -> int:
    return max(range(1, len(members)), key=lambda i: len(members[i][1]))


def flip(data: bytes, at: int, length: int = 4096) -> bytes:
    at = max(0, min(at, len(data) - length))
    return data[:at] + bytes(b ^ 0xFF for b in data[at : at + length]) + data[at + length :]


def member(
    name: str, data: bytes = b"x", kind: bytes = tarfile.REGTYPE, link: str = ""
) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    return info, data


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# Each case: (archive kind, how to damage it) -> the archive bytes or members to write.
def flip_compressed(src: Path, out: Path) -> Path:
    data = src.read_bytes()
    out.write_bytes(flip(data, len(data) // 2))
    return out


def flip_member(src: Path, out: Path) -> Path:
    members = read(src)
    i = biggest(members)
    members[i] = (members[i][0], flip(members[i][1], len(members[i][1]) // 3))
    return write(members, out)


def truncate_half(src: Path, out: Path) -> Path:
    data = src.read_bytes()
    out.write_bytes(data[: len(data) // 2])
    return out


def truncate_tiny(src: Path, out: Path) -> Path:
    out.write_bytes(src.read_bytes()[:100])
    return out


def empty(src: Path, out: Path) -> Path:
    out.write_bytes(b"")
    return out


def not_an_archive(src: Path, out: Path) -> Path:
    out.write_bytes(np.random.default_rng(0).bytes(10_000))
    return out


def drop_member(src: Path, out: Path) -> Path:
    members = read(src)
    del members[biggest(members)]
    return write(members, out)


def extra_member(src: Path, out: Path) -> Path:
    return write([*read(src), member("native/extra.bin", b"surprise")], out)


def duplicate_member(src: Path, out: Path) -> Path:
    members = read(src)
    return write([*members, members[1]], out)


def traversal(src: Path, out: Path) -> Path:
    members = read(src)
    manifest = manifest_of(members)
    manifest["files"].append({"path": "../../evil.txt", "size": 4, "sha256": sha(b"evil")})
    return write([*with_manifest(members, manifest), member("../../evil.txt", b"evil")], out)


def absolute(src: Path, out: Path) -> Path:
    return write([*read(src), member("/tmp/mlp-evil.txt", b"evil")], out)


def symlink(src: Path, out: Path) -> Path:
    return write([*read(src), member("native/link", b"", tarfile.SYMTYPE, "/etc/passwd")], out)


def hardlink(src: Path, out: Path) -> Path:
    return write([*read(src), member("native/hard", b"", tarfile.LNKTYPE, "/etc/passwd")], out)


def no_manifest(src: Path, out: Path) -> Path:
    return write(read(src)[1:], out)


def manifest_not_json(src: Path, out: Path) -> Path:
    members = read(src)
    return write([(members[0][0], b"{not json"), *members[1:]], out)


def manifest_old_version(src: Path, out: Path) -> Path:
    members = read(src)
    return write(with_manifest(members, {**manifest_of(members), "version": 1}), out)


def manifest_wrong_format(src: Path, out: Path) -> Path:
    members = read(src)
    return write(with_manifest(members, {**manifest_of(members), "format": "something-else"}), out)


def manifest_wrong_types(src: Path, out: Path) -> Path:
    members = read(src)
    return write(with_manifest(members, {**manifest_of(members), "dim": "sixteen"}), out)


def manifest_forged_checksum(src: Path, out: Path) -> Path:
    members = read(src)
    manifest = manifest_of(members)
    manifest["files"][0]["sha256"] = "0" * 64
    return write(with_manifest(members, manifest), out)


def manifest_forged_count(src: Path, out: Path) -> Path:
    members = read(src)
    return write(with_manifest(members, {**manifest_of(members), "count": N + 1}), out)


def manifest_forged_dim(src: Path, out: Path) -> Path:
    members = read(src)
    return write(with_manifest(members, {**manifest_of(members), "dim": DIM * 2}), out)


def consistent_forgery(src: Path, out: Path) -> Path:
    """Vectors replaced and every checksum recomputed: only the recorded probe vectors can tell."""
    members = read(src)
    manifest = manifest_of(members)
    lines = []
    rng = np.random.default_rng(7)
    for line in members[1][1].splitlines():
        raw = json.loads(line)
        garbage = rng.standard_normal(DIM).astype("<f4")
        raw["vector"] = base64.b64encode((garbage / np.linalg.norm(garbage)).astype("<f4").tobytes()).decode()
        lines.append(json.dumps(raw).encode())
    data = b"\n".join(lines) + b"\n"
    manifest["files"][0].update(size=len(data), sha256=sha(data))
    return write([(members[0][0], json.dumps(manifest).encode()), (members[1][0], data)], out)


def manifest_wrong_engine(src: Path, out: Path) -> Path:
    members = read(src)
    return write(with_manifest(members, {**manifest_of(members), "engine": "milvus-lite"}), out)


CASES: dict[str, tuple[str, Callable[[Path, Path], Path], type[Exception], str]] = {
    "flip 4 KiB of the compressed archive": (
        "native",
        flip_compressed,
        BackupVerificationError,
        "damaged|checksum",
    ),
    "flip 4 KiB inside a shard file": ("native", flip_member, BackupVerificationError, "checksum mismatch"),
    "flip 4 KiB inside the points file": (
        "logical",
        flip_member,
        BackupVerificationError,
        "checksum mismatch",
    ),
    "truncated at half": ("native", truncate_half, BackupVerificationError, "damaged or truncated|missing"),
    "truncated to 100 bytes": (
        "logical",
        truncate_tiny,
        BackupVerificationError,
        "damaged or truncated|readable",
    ),
    "empty file": ("native", empty, BackupVerificationError, "damaged|readable|manifest"),
    "random bytes": ("native", not_an_archive, BackupVerificationError, "damaged|readable"),
    "a listed file missing": ("native", drop_member, BackupVerificationError, "missing"),
    "an unlisted member": ("native", extra_member, BackupVerificationError, "not listed"),
    "a member twice": ("native", duplicate_member, BackupVerificationError, "twice"),
    "path traversal member": ("native", traversal, BackupVerificationError, "unsafe path"),
    "absolute path member": ("native", absolute, BackupVerificationError, "unsafe path"),
    "symlink member": ("native", symlink, BackupVerificationError, "symlink"),
    "hard link member": ("native", hardlink, BackupVerificationError, "hard link"),
    "no manifest": ("native", no_manifest, BackupVerificationError, "first member must be manifest"),
    "manifest not JSON": ("logical", manifest_not_json, BackupVerificationError, "not valid JSON"),
    "manifest of an old version": ("logical", manifest_old_version, BackupVerificationError, "version 1"),
    "manifest of another format": (
        "logical",
        manifest_wrong_format,
        BackupVerificationError,
        "not an mlp rag backup",
    ),
    "manifest field of the wrong type": (
        "logical",
        manifest_wrong_types,
        BackupVerificationError,
        "wrong type",
    ),
    "forged checksum": ("native", manifest_forged_checksum, BackupVerificationError, "checksum mismatch"),
    "forged count (native)": ("native", manifest_forged_count, RestoreMismatchError, f"{N} points"),
    "forged count (logical)": ("logical", manifest_forged_count, RestoreMismatchError, f"{N} points"),
    "forged dimension (native)": ("native", manifest_forged_dim, BackupVerificationError, "dimension"),
    "forged dimension (logical)": ("logical", manifest_forged_dim, BackupVerificationError, "manifest dim"),
    "vectors replaced, checksums recomputed": (
        "logical",
        consistent_forgery,
        BackupVerificationError,
        "probe point",
    ),
    "native archive of another engine": ("native", manifest_wrong_engine, StoreError, "cannot restore into"),
}


RETRIED = {
    "flip 4 KiB inside a shard file",
    "truncated at half",
    "path traversal member",
    "forged count (native)",
    "forged count (logical)",
    "vectors replaced, checksums recomputed",
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_bad_archive_is_refused_and_leaves_nothing(
    case: str, archives: tuple[Path, dict[str, Path]], target: VectorStore, tmp_path: Path
) -> None:
    _, built = archives
    kind, damage, error, message = CASES[case]
    bad = damage(built[kind], tmp_path / "bad.tar.gz")
    with pytest.raises(error, match=message):
        target.restore(bad, "docs_restored")
    assert target.list_collections() == []
    assert not (tmp_path / "evil.txt").exists() and not Path("/tmp/mlp-evil.txt").exists()
    leftovers = (
        [p.name for p in (tmp_path / "target").glob(".mlp-restore-*")]
        if (tmp_path / "target").exists()
        else []
    )
    assert leftovers == []
    if case not in RETRIED:
        return
    # The retry with the good archive, under the same name, works.
    report = target.restore(built[kind], "docs_restored")
    assert report.ok and report.restored == N and report.files_verified >= 1


def test_archives_are_compact_and_restore_sparse(
    archives: tuple[Path, dict[str, Path]], target: VectorStore
) -> None:
    root, built = archives
    shard = root / "src" / "collections" / "docs_v1"
    apparent = sum(p.stat().st_size for p in shard.rglob("*") if p.is_file())
    assert built["native"].stat().st_size * 20 < apparent  # sparse pre-allocation is not stored densely
    target.restore(built["native"], "docs_restored")
    restored = Path(str(target.describe()).split(" at ", 1)[1]) / "collections" / "docs_restored"  # type: ignore[attr-defined]
    allocated = sum(p.stat().st_blocks * 512 for p in restored.rglob("*") if p.is_file())
    original = sum(p.stat().st_blocks * 512 for p in shard.rglob("*") if p.is_file())
    assert allocated <= original * 1.5  # holes stay holes on restore
