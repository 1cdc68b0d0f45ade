"""Reading the files a user hands the platform: stack files, outputs, parameters, search spaces.

One guarded loader for every such file. Whatever is wrong with it (missing, a directory,
unreadable, binary, not UTF-8, a syntax error, the wrong top-level type, nested too deeply, a
duplicate YAML key) comes back as one :class:`InputFileError` whose message names the file, says
what is wrong and how to fix it; the ``mlp`` command turns it into that message and exit code 2.

Text saved by Windows PowerShell (UTF-16 with a byte-order mark) and UTF-8 with a byte-order mark
are decoded; any other encoding is refused with the byte and offset that is not UTF-8.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

MAX_BYTES = 64 * 1024 * 1024
"""Largest input file read (configuration and outputs are kilobytes; a bigger file is a mistake)."""
MAX_DEPTH = 64
"""Deepest nesting of mappings and lists accepted in a YAML or JSON file."""

_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_UTF8_BOM = b"\xef\xbb\xbf"


class InputFileError(ValueError):
    """A file given to the platform cannot be used; the message names the file and the fix."""

    def __init__(self, path: str | Path, problem: str, fix: str = "") -> None:
        """Record the file, what is wrong with it and (optionally) how to fix it."""
        self.path = str(path)
        self.problem = problem
        self.fix = fix
        super().__init__(f"{self.path}: {problem}" + (f"; {fix}" if fix else ""))


def read_text(path: str | Path, *, what: str = "file") -> str:
    """The text of ``path``, decoded as UTF-8 (or UTF-16 with a BOM).

    Args:
        path: The file to read.
        what: What the file is, for messages ("stack file", "outputs file"...).

    Raises:
        InputFileError: When the file is missing, a directory, unreadable, too large, binary or
            not valid UTF-8.
    """
    file = Path(path)
    if not file.exists():
        raise InputFileError(file, f"{what} does not exist", "check the path")
    if file.is_dir():
        raise InputFileError(file, f"{what} is a directory, not a file", "pass the file inside it")
    try:
        size = file.stat().st_size
        if size > MAX_BYTES:
            raise InputFileError(
                file, f"{what} is {size} bytes, more than the {MAX_BYTES} accepted", "is this the right file?"
            )
        data = file.read_bytes()
    except PermissionError:
        raise InputFileError(
            file, f"cannot read the {what}: permission denied", "check its permissions"
        ) from None
    except OSError as exc:
        raise InputFileError(file, f"cannot read the {what}: {exc.strerror or exc}") from None
    return decode(data, file, what=what)


def decode(data: bytes, path: str | Path, *, what: str = "file") -> str:
    """``data`` as text: UTF-8 (BOM stripped) or UTF-16 with a BOM; binary data refused.

    Raises:
        InputFileError: When the bytes are binary or not UTF-8.
    """
    if data.startswith(_UTF16_BOMS):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise InputFileError(
                path, f"{what} starts with a UTF-16 byte-order mark but is not UTF-16: {exc.reason}"
            ) from None
    if data.startswith(_UTF8_BOM):
        data = data[len(_UTF8_BOM) :]
    if b"\x00" in data:
        raise InputFileError(path, f"{what} is binary (it holds NUL bytes), not text", "pass the text file")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputFileError(
            path,
            f"{what} is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})",
            "save it as UTF-8",
        ) from None


def _type_name(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "a string", type(None): "empty"}.get(
        type(value), type(value).__name__
    )


def _check_shape(value: Any, path: str | Path, what: str, expect: type | None) -> None:
    if expect is not None and not isinstance(value, expect):
        wanted = _type_name(expect())
        raise InputFileError(path, f"{what} must hold {wanted} at the top level, not {_type_name(value)}")
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise InputFileError(path, f"{what} is nested more than {MAX_DEPTH} levels deep")
        if isinstance(item, dict):
            stack.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)


def parse_json(text: str, path: str | Path, *, what: str = "file", expect: type | None = dict) -> Any:
    """Parse JSON text read from ``path`` and check its top-level type and depth.

    Raises:
        InputFileError: On a syntax error, the wrong top-level type or too deep nesting.
    """
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputFileError(
            path, f"{what} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except RecursionError:
        raise InputFileError(path, f"{what} is nested more than {MAX_DEPTH} levels deep") from None
    _check_shape(value, path, what, expect)
    return value


def load_json(path: str | Path, *, what: str = "file", expect: type | None = dict) -> Any:
    """Read and parse a JSON file (see :func:`read_text` and :func:`parse_json`)."""
    return parse_json(read_text(path, what=what), path, what=what, expect=expect)


def parse_yaml(text: str, path: str | Path, *, what: str = "file", expect: type | None = dict) -> Any:
    """Parse YAML text read from ``path``: safe types only, duplicate keys refused by name.

    An empty document is ``{}`` when ``expect`` is ``dict``.

    Raises:
        InputFileError: On a syntax error, a duplicate key, the wrong top-level type or too deep
            nesting.
    """
    try:
        value = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except _DuplicateKey as exc:
        raise InputFileError(path, str(exc), "keep one of them") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f" at line {mark.line + 1} column {mark.column + 1}" if mark is not None else ""
        raise InputFileError(path, f"{what} is not valid YAML: {exc.problem or exc}{where}") from None
    except yaml.YAMLError as exc:
        raise InputFileError(path, f"{what} is not valid YAML: {exc}") from None
    except RecursionError:
        raise InputFileError(path, f"{what} is nested more than {MAX_DEPTH} levels deep") from None
    if value is None and expect is dict:
        value = {}
    _check_shape(value, path, what, expect)
    return value


def load_yaml(path: str | Path, *, what: str = "file", expect: type | None = dict) -> Any:
    """Read and parse a YAML file (see :func:`read_text` and :func:`parse_yaml`)."""
    return parse_yaml(read_text(path, what=what), path, what=what, expect=expect)


class _DuplicateKey(Exception):
    pass


class _UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a mapping holding the same key twice."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            line = key_node.start_mark.line + 1
            try:
                first = seen.get(key)
            except TypeError:  # an unhashable key: the base class reports it
                break
            if first is not None:
                raise _DuplicateKey(f"duplicate key {key!r} at line {line} (first at line {first})")
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


def sqlite_problem(path: str | Path) -> str:
    """What is wrong with the SQLite database at ``path``; empty when it checks clean or is absent.

    Opens it read-only and runs ``PRAGMA quick_check``: a file cut short (a full disk, a copy
    interrupted) or one that is not a database is reported; a database that is merely busy is not.
    """
    import contextlib
    import sqlite3

    file = Path(path)
    if not file.is_file() or file.stat().st_size == 0:  # SQLite makes an empty file a new database
        return ""
    try:
        with contextlib.closing(sqlite3.connect(f"{file.resolve().as_uri()}?mode=ro", uri=True)) as db:
            row = db.execute("PRAGMA quick_check(1)").fetchone()
    except sqlite3.OperationalError:  # locked or unreadable now: not evidence of damage
        return ""
    except sqlite3.DatabaseError as error:
        return str(error)
    verdict = str(row[0]) if row else "no answer to an integrity check"
    return "" if verdict == "ok" else verdict
