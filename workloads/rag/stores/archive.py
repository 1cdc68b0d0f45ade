"""Backup archives that can be trusted: per-file sha256 recorded at backup time, checked on restore.

An archive is a gzip-compressed tar. Its first member is ``manifest.json``, which lists every
other member with its size and sha256; nothing else may be in the archive. Reading an archive
(:func:`extract_verified`) streams it once into a staging directory, hashing as it writes, and
refuses it with :class:`ArchiveVerificationError` when

* it is not a readable gzip/tar (damaged, truncated, not an archive at all),
* a member is not a plain file (symlink, hard link, device, directory), has an absolute or
  ``..`` path, appears twice, or is not listed in the manifest,
* a member's size or sha256 differs from the manifest's, or a listed file is missing,
* the manifest itself is malformed.

Nothing outside the staging directory is written, so a refused archive leaves nothing behind.

Compactness: engines pre-allocate sparse files (a Qdrant Edge shard of 2 MB of data occupies
~170 MB of apparent size, almost all holes). Gzip turns runs of zeros into a few bytes, and
extraction writes zero blocks as holes again (``seek`` instead of ``write``), so neither the
archive nor the restored files grow.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import tarfile
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

MANIFEST = "manifest.json"
MAX_MANIFEST_BYTES = 64 << 20
BLOCK = 1 << 16
PAGE = 4096
_ZERO = bytes(BLOCK)
_ZERO_PAGE = bytes(PAGE)
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class ArchiveVerificationError(RuntimeError):
    """The archive is damaged, truncated, forged or does not match its manifest."""


@dataclass(frozen=True)
class FileEntry:
    """One payload member of an archive: its path inside the archive, size and sha256."""

    path: str
    size: int
    sha256: str

    def to_dict(self) -> dict[str, Any]:
        """Plain data for the manifest."""
        return {"path": self.path, "size": self.size, "sha256": self.sha256}


def file_sha256(path: Path) -> tuple[int, str]:
    """Size and sha256 of a file."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(BLOCK * 16):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def check_member_name(name: str) -> str:
    """Return ``name`` if it is a safe relative POSIX path inside an archive.

    Raises:
        ArchiveVerificationError: On absolute paths, ``..`` components, empty or odd names.
    """
    path = PurePosixPath(name)
    if (
        not name
        or name.startswith("/")
        or "\\" in name
        or "\x00" in name
        or any(part in ("", ".", "..") for part in name.split("/"))
        or path.is_absolute()
    ):
        raise ArchiveVerificationError(
            f"archive member {name!r} has an unsafe path (absolute, '..' or empty)"
        )
    return name


def write_verified(
    archive: Path, manifest: dict[str, Any], files: Sequence[tuple[str, Path]]
) -> list[FileEntry]:
    """Write ``files`` (archive path, source file) and a manifest listing their checksums.

    The archive is written next to ``archive`` under a temporary name and renamed into place
    at the end, so a failed backup leaves no partial archive.

    Args:
        archive: Output path (``.tar.gz`` by convention).
        manifest: Manifest fields; ``files`` is added.
        files: Members to store, each read twice (checksum, then archive): keep them unchanged.

    Returns:
        The checksummed entries, as recorded in the manifest.
    """
    entries = []
    for name, source in files:
        check_member_name(name)
        size, sha = file_sha256(source)
        entries.append(FileEntry(name, size, sha))
    names = [e.path for e in entries]
    if len(set(names)) != len(names) or MANIFEST in names:
        raise ValueError("duplicate or reserved member names in a backup")
    body = json.dumps({**manifest, "files": [e.to_dict() for e in entries]}, indent=2).encode()
    archive.parent.mkdir(parents=True, exist_ok=True)
    partial = archive.with_name(f".{archive.name}.partial-{os.getpid()}")
    try:
        with tarfile.open(partial, "w:gz", compresslevel=3, format=tarfile.PAX_FORMAT) as tar:
            _add_bytes(tar, MANIFEST, body)
            for entry, (_, source) in zip(entries, files, strict=True):
                info = tarfile.TarInfo(entry.path)
                info.size = entry.size
                info.mtime = int(source.stat().st_mtime)
                info.mode = 0o644
                with source.open("rb") as handle:
                    tar.addfile(info, handle)
        os.replace(partial, archive)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return entries


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = int(time.time())
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


def _parse_entries(raw: Any) -> dict[str, FileEntry]:
    if not isinstance(raw, list):
        raise ArchiveVerificationError("manifest.json has no 'files' list of checksums")
    entries: dict[str, FileEntry] = {}
    for item in raw:
        if not isinstance(item, dict):
            raise ArchiveVerificationError("manifest.json: a 'files' entry is not an object")
        path, size, sha = item.get("path"), item.get("size"), item.get("sha256")
        if not isinstance(path, str) or not isinstance(size, int) or size < 0 or not isinstance(sha, str):
            raise ArchiveVerificationError(f"manifest.json: malformed 'files' entry {item!r}")
        if not _SHA256.match(sha):
            raise ArchiveVerificationError(f"manifest.json: {path!r} has no valid sha256")
        check_member_name(path)
        if path in entries or path == MANIFEST:
            raise ArchiveVerificationError(f"manifest.json lists {path!r} twice")
        entries[path] = FileEntry(path, size, sha)
    return entries


def read_manifest_only(archive: Path) -> dict[str, Any]:
    """The manifest of an archive, read without checking the payload.

    Raises:
        ArchiveVerificationError: If the archive cannot be read or has no valid manifest first.
    """
    try:
        with tarfile.open(archive, "r:*") as tar:
            member = tar.next()
            return _read_manifest_member(tar, member, archive)
    except ArchiveVerificationError:
        raise
    except FileNotFoundError:
        raise ArchiveVerificationError(f"{archive}: no such file") from None
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        raise ArchiveVerificationError(f"{archive} is not a readable backup archive ({exc})") from None


def _read_manifest_member(
    tar: tarfile.TarFile, member: tarfile.TarInfo | None, archive: Path
) -> dict[str, Any]:
    if member is None or member.name != MANIFEST or not member.isfile():
        raise ArchiveVerificationError(
            f"{archive}: the first member must be {MANIFEST} (not an mlp backup archive)"
        )
    if member.size > MAX_MANIFEST_BYTES:
        raise ArchiveVerificationError(f"{archive}: {MANIFEST} is implausibly large ({member.size} bytes)")
    handle = tar.extractfile(member)
    if handle is None:
        raise ArchiveVerificationError(f"{archive}: cannot read {MANIFEST}")
    try:
        raw = json.loads(handle.read())
    except ValueError as exc:
        raise ArchiveVerificationError(f"{archive}: {MANIFEST} is not valid JSON ({exc})") from None
    if not isinstance(raw, dict):
        raise ArchiveVerificationError(f"{archive}: {MANIFEST} is not a JSON object")
    return raw


def _write_sparse(source: Any, target: Path, size: int) -> str:
    """Copy ``size`` bytes from ``source`` to ``target``, leaving all-zero blocks as holes; return sha256."""
    digest = hashlib.sha256()
    remaining = size
    with target.open("wb") as out:
        while remaining:
            chunk = source.read(min(BLOCK, remaining))
            if not chunk:
                raise ArchiveVerificationError(f"archive member {target.name!r} is truncated")
            digest.update(chunk)
            remaining -= len(chunk)
            if chunk == _ZERO[: len(chunk)]:
                out.seek(len(chunk), os.SEEK_CUR)
                continue
            for start in range(0, len(chunk), PAGE):
                page = chunk[start : start + PAGE]
                if len(page) == PAGE and page == _ZERO_PAGE:
                    out.seek(PAGE, os.SEEK_CUR)
                else:
                    out.write(page)
        out.truncate(size)
    return digest.hexdigest()


def extract_verified(archive: Path, staging: Path) -> dict[str, Any]:
    """Extract ``archive`` into the empty directory ``staging``, verifying every member.

    Returns:
        The manifest (a dict with a ``files`` list), after every listed file was found with its
        recorded size and sha256.

    Raises:
        ArchiveVerificationError: On any damage, truncation, forgery or mismatch (see the module
            docstring); ``staging`` may then hold partial files, which the caller deletes.
    """
    staging.mkdir(parents=True, exist_ok=True)
    root = staging.resolve()
    try:
        with tarfile.open(archive, "r:*") as tar:
            manifest = _read_manifest_member(tar, tar.next(), archive)
            entries = _parse_entries(manifest.get("files"))
            seen: set[str] = set()
            while (member := tar.next()) is not None:
                name = check_member_name(member.name)
                if not member.isreg():
                    kind = (
                        "symlink" if member.issym() else "hard link" if member.islnk() else "non-file entry"
                    )
                    raise ArchiveVerificationError(f"{archive}: member {name!r} is a {kind}; refused")
                entry = entries.get(name)
                if entry is None:
                    raise ArchiveVerificationError(
                        f"{archive}: member {name!r} is not listed in the manifest"
                    )
                if name in seen:
                    raise ArchiveVerificationError(f"{archive}: member {name!r} appears twice")
                seen.add(name)
                if member.size != entry.size:
                    raise ArchiveVerificationError(
                        f"{archive}: {name!r} is {member.size} bytes, the manifest recorded {entry.size}"
                    )
                target = (root / name).resolve()
                if not target.is_relative_to(root):
                    raise ArchiveVerificationError(
                        f"{archive}: member {name!r} escapes the restore directory"
                    )
                target.parent.mkdir(parents=True, exist_ok=True)
                source = tar.extractfile(member)
                if source is None:
                    raise ArchiveVerificationError(f"{archive}: cannot read member {name!r}")
                sha = _write_sparse(source, target, member.size)
                if sha != entry.sha256:
                    raise ArchiveVerificationError(
                        f"{archive}: checksum mismatch for {name!r} (sha256 {sha[:12]}…, recorded {entry.sha256[:12]}…): "
                        "the archive is damaged"
                    )
            missing = sorted(set(entries) - seen)
            if missing:
                raise ArchiveVerificationError(
                    f"{archive}: truncated or incomplete, {len(missing)} file(s) listed in the manifest are "
                    f"missing (first: {missing[0]!r})"
                )
    except ArchiveVerificationError:
        raise
    except FileNotFoundError:
        raise ArchiveVerificationError(f"{archive}: no such file") from None
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        raise ArchiveVerificationError(
            f"{archive} is damaged or truncated ({type(exc).__name__}: {exc})"
        ) from None
    return manifest
