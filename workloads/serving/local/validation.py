"""Input validation for the local model servers: every client mistake becomes a clear 4xx.

KServe hands a model whatever JSON arrived; a naive ``predict`` answers strings for numbers, a
wrong row width or a V2 data/shape mismatch with HTTP 500. These plain functions turn a decoded
V1 or V2 payload into a finite float matrix of the expected width, or raise
:class:`RequestError` with a message that says what is wrong (the server maps it to
``kserve.errors.InvalidInput``, i.e. HTTP 400).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

MAX_ROWS = 1024
"""Most rows one request may carry (bigger batches are a client mistake here, not a load test)."""
V2_NUMERIC_TYPES = {
    "FP16",
    "FP32",
    "FP64",
    "INT8",
    "INT16",
    "INT32",
    "INT64",
    "UINT8",
    "UINT16",
    "UINT32",
    "UINT64",
}


class RequestError(ValueError):
    """The request is malformed; the message is what the client is told."""


def _check_number(value: Any, where: str) -> float:
    # bool is an int subclass: reject it explicitly, a flag is not a measurement.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RequestError(f"{where} is {type(value).__name__} {value!r:.40}, expected a number")
    number = float(value)
    if not math.isfinite(number):
        raise RequestError(f"{where} is {value!r}, expected a finite number (no NaN or infinity)")
    return number


def _matrix(rows: Any, n_features: int, where: str) -> np.ndarray:
    if not isinstance(rows, list) or not rows:
        raise RequestError(f"{where} must be a non-empty list of rows, got {type(rows).__name__}")
    if len(rows) > MAX_ROWS:
        raise RequestError(f"{where} has {len(rows)} rows, at most {MAX_ROWS} per request")
    out = np.empty((len(rows), n_features), dtype=np.float64)
    for i, row in enumerate(rows):
        if not isinstance(row, list):
            raise RequestError(
                f"{where}[{i}] must be a list of {n_features} numbers, got {type(row).__name__}"
            )
        if len(row) != n_features:
            raise RequestError(f"{where}[{i}] has {len(row)} values, the model expects {n_features}")
        for j, value in enumerate(row):
            out[i, j] = _check_number(value, f"{where}[{i}][{j}]")
    return out


def v1_matrix(payload: Any, n_features: int) -> np.ndarray:
    """Feature matrix of a V1 ``{"instances": [[...], ...]}`` body.

    Raises:
        RequestError: Not an object, no ``instances``, wrong row width, non-numbers, NaN/inf.
    """
    if not isinstance(payload, Mapping):
        raise RequestError(f"V1 body must be a JSON object with 'instances', got {type(payload).__name__}")
    if "instances" not in payload:
        raise RequestError(f"V1 body needs an 'instances' list; got keys {sorted(payload)}")
    return _matrix(payload["instances"], n_features, "instances")


def v2_matrix(name: str, shape: Sequence[Any], datatype: str, data: Any, n_features: int) -> np.ndarray:
    """Feature matrix of one V2 (Open Inference Protocol) input tensor.

    Args:
        name: Input name (for messages).
        shape: Declared shape; must be ``[rows, n_features]``.
        datatype: Declared datatype; must be numeric.
        data: Row-major values, flat or nested.
        n_features: Expected width.

    Raises:
        RequestError: Wrong shape, non-numeric datatype, data that does not match the shape,
            non-numbers, NaN/inf.
    """
    if datatype not in V2_NUMERIC_TYPES:
        raise RequestError(f"input {name!r} has datatype {datatype}, expected one of FP32, FP64, INT64, ...")
    if len(shape) != 2 or any(isinstance(s, bool) or not isinstance(s, int) for s in shape):
        raise RequestError(f"input {name!r} has shape {list(shape)}, expected [rows, {n_features}]")
    rows, width = int(shape[0]), int(shape[1])
    if width != n_features:
        raise RequestError(f"input {name!r} has shape {list(shape)}, the model expects [rows, {n_features}]")
    if rows < 1 or rows > MAX_ROWS:
        raise RequestError(f"input {name!r} has {rows} rows, expected 1..{MAX_ROWS}")
    flat = _flatten(data)
    if len(flat) != rows * width:
        raise RequestError(
            f"input {name!r} has {len(flat)} values but shape {list(shape)} needs {rows * width}"
        )
    values = [_check_number(v, f"input {name!r} value #{k}") for k, v in enumerate(flat)]
    return np.asarray(values, dtype=np.float64).reshape(rows, width)


def _flatten(data: Any) -> list[Any]:
    if not isinstance(data, list):
        raise RequestError(f"V2 input data must be a list, got {type(data).__name__}")
    flat: list[Any] = []
    _walk(data, flat)
    return flat


def _walk(item: list[Any], out: list[Any]) -> None:
    for value in item:
        if isinstance(value, list):
            _walk(value, out)
        else:
            out.append(value)


def named_records(instances: Any, feature_names: Sequence[str]) -> list[list[float]]:
    """Rows of a transformer request: a list of ``{feature name: value}`` objects, in model order.

    Raises:
        RequestError: Not a list of objects, missing or unknown feature names, non-numbers.
    """
    if not isinstance(instances, list) or not instances:
        raise RequestError("'instances' must be a non-empty list of {feature: value} objects")
    if len(instances) > MAX_ROWS:
        raise RequestError(f"'instances' has {len(instances)} rows, at most {MAX_ROWS} per request")
    expected = set(feature_names)
    rows: list[list[float]] = []
    for i, record in enumerate(instances):
        if not isinstance(record, Mapping):
            raise RequestError(
                f"instances[{i}] must be an object of feature values, got {type(record).__name__}"
            )
        missing = [n for n in feature_names if n not in record]
        unknown = sorted(set(record) - expected)
        if missing or unknown:
            raise RequestError(
                f"instances[{i}]: missing features {missing[:5]}{'...' if len(missing) > 5 else ''}"
                f" unknown features {unknown[:5]}"
            )
        rows.append([_check_number(record[n], f"instances[{i}][{n!r}]") for n in feature_names])
    return rows
