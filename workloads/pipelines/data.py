"""Data preparation for the training pipeline: load, validate, hash, split.

The dataset is scikit-learn's breast-cancer table (569 rows, 30 numeric features, binary target),
which ships inside scikit-learn so nothing is downloaded. Everything here is a plain function so
the KFP component, the Katib trial and the Optuna objective share one implementation.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

TARGET_COLUMN = "target"
DATASET_NAME = "sklearn-breast-cancer"
MIN_ROWS = 100
MIN_CLASS_FRACTION = 0.1
"""Each class must hold at least this share of the rows; less means the data is not the expected one."""


class DataValidationError(ValueError):
    """The data broke the schema or a range check; ``errors`` lists every problem found."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("data validation failed:\n  - " + "\n  - ".join(errors))
        self.errors = errors


@dataclass(frozen=True)
class ColumnSpec:
    """Expected type and closed value range of one feature column."""

    name: str
    minimum: float
    maximum: float


@dataclass(frozen=True)
class Schema:
    """Expected columns, ranges and labels of the training table."""

    columns: tuple[ColumnSpec, ...]
    labels: tuple[int, ...] = (0, 1)

    @property
    def feature_names(self) -> list[str]:
        """Feature column names in order."""
        return [column.name for column in self.columns]


def breast_cancer_schema() -> Schema:
    """Schema of the breast-cancer table.

    Every feature is a physical measurement (radius, texture, area, ...), so it must be finite and
    non-negative; the upper bound is ten times the largest value in the shipped table, loose
    enough for new data of the same kind and tight enough to catch unit or parsing errors.
    """
    from sklearn.datasets import load_breast_cancer

    names = list(load_breast_cancer().feature_names)
    # Largest shipped value per column is below 4300 (worst area); 10x that bounds every column.
    return Schema(columns=tuple(ColumnSpec(name=str(n), minimum=0.0, maximum=43_000.0) for n in names))


def load_dataset() -> pd.DataFrame:
    """Load the breast-cancer table as one frame: feature columns plus ``target``."""
    from sklearn.datasets import load_breast_cancer

    bunch = load_breast_cancer(as_frame=True)
    frame = bunch.frame.copy()
    frame.columns = [str(c) for c in frame.columns]
    return frame


def read_dataset(uri: str) -> pd.DataFrame:
    """Read a CSV dataset from ``s3://bucket/key`` (endpoint and keys from the ``AWS_*`` environment) or a path.

    Raises:
        DataValidationError: When the object cannot be read or is not a CSV table.
    """
    import io

    try:
        if uri.startswith("s3://"):
            import boto3

            bucket, _, key = uri.removeprefix("s3://").partition("/")
            if not bucket or not key:
                raise ValueError(f"expected s3://bucket/key, got {uri!r}")
            body = boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
            frame = pd.read_csv(io.BytesIO(body), float_precision="round_trip")
        else:
            frame = pd.read_csv(uri, float_precision="round_trip")
    except Exception as error:  # noqa: BLE001 - botocore, pandas and OS errors share no base
        raise DataValidationError([f"cannot read dataset {uri}: {type(error).__name__}: {error}"]) from error
    frame.columns = [str(c) for c in frame.columns]
    return frame


def validate(frame: pd.DataFrame, schema: Schema) -> None:
    """Check columns, dtypes, missing values, ranges, labels and class balance.

    Args:
        frame: Features plus ``target``.
        schema: What the frame must look like.

    Raises:
        DataValidationError: With every problem found, not just the first.
    """
    errors: list[str] = []
    expected = [*schema.feature_names, TARGET_COLUMN]
    missing = [c for c in expected if c not in frame.columns]
    extra = [c for c in frame.columns if c not in expected]
    if missing:
        errors.append(f"missing columns: {missing}")
    if extra:
        errors.append(f"unexpected columns: {extra}")
    if len(frame) < MIN_ROWS:
        errors.append(f"{len(frame)} rows, expected at least {MIN_ROWS}")
    for spec in schema.columns:
        if spec.name not in frame.columns:
            continue
        column = frame[spec.name]
        if not pd.api.types.is_numeric_dtype(column):
            errors.append(f"column {spec.name!r} has dtype {column.dtype}, expected numeric")
            continue
        values = column.to_numpy(dtype=float)
        if not np.all(np.isfinite(values)):
            errors.append(
                f"column {spec.name!r} has {int((~np.isfinite(values)).sum())} missing/infinite values"
            )
        finite = values[np.isfinite(values)]
        out_of_range = int(((finite < spec.minimum) | (finite > spec.maximum)).sum())
        if out_of_range:
            errors.append(
                f"column {spec.name!r} has {out_of_range} values outside [{spec.minimum}, {spec.maximum}]"
                f" (min {finite.min():.4g}, max {finite.max():.4g})"
            )
    if TARGET_COLUMN in frame.columns:
        labels = frame[TARGET_COLUMN]
        unknown = sorted(set(labels.dropna().unique().tolist()) - set(schema.labels))
        if labels.isna().any():
            errors.append(f"target has {int(labels.isna().sum())} missing labels")
        if unknown:
            errors.append(f"target has unknown labels {unknown}, expected {list(schema.labels)}")
        shares = labels.value_counts(normalize=True)
        for label in schema.labels:
            share = float(shares.get(label, 0.0))
            if share < MIN_CLASS_FRACTION:
                errors.append(
                    f"class {label} is {share:.1%} of rows, expected at least {MIN_CLASS_FRACTION:.0%}"
                )
    if errors:
        raise DataValidationError(errors)


def content_hash(frame: pd.DataFrame) -> str:
    """SHA-256 of the table's content: column names, then every value as little-endian float64.

    The hash does not depend on file format or row index, only on names, order and values, so the
    same data read from CSV or from scikit-learn hashes the same.
    """
    digest = hashlib.sha256()
    digest.update(json.dumps([str(c) for c in frame.columns]).encode())
    digest.update(np.ascontiguousarray(frame.to_numpy(dtype="<f8")).tobytes())
    return "sha256:" + digest.hexdigest()


def split(frame: pd.DataFrame, test_size: float, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Stratified train/test split on the target column."""
    from sklearn.model_selection import train_test_split

    if not 0.0 < test_size < 1.0:
        raise ValueError(f"test_size must be in (0, 1), got {test_size}")
    train, test = train_test_split(
        frame, test_size=test_size, random_state=seed, stratify=frame[TARGET_COLUMN]
    )
    return train.reset_index(drop=True), test.reset_index(drop=True)


def write_table(frame: pd.DataFrame, path: str | Path) -> None:
    """Write a table as CSV; float values round-trip exactly."""
    frame.to_csv(path, index=False)


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a table written by :func:`write_table`."""
    return pd.read_csv(path, float_precision="round_trip")


def features_and_target(frame: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """Split a table into a float feature frame (names kept, for the model signature) and labels."""
    features = frame.drop(columns=[TARGET_COLUMN]).astype(np.float64)
    labels = frame[TARGET_COLUMN].to_numpy(dtype=np.int64)
    return features, labels


@dataclass(frozen=True)
class PreparedData:
    """Result of :func:`prepare`."""

    train: pd.DataFrame
    test: pd.DataFrame
    data_hash: str


def prepare(test_size: float = 0.2, seed: int = 42, frame: pd.DataFrame | None = None) -> PreparedData:
    """Load (unless given), validate, hash and split the dataset."""
    frame = load_dataset() if frame is None else frame
    validate(frame, breast_cancer_schema())
    train, test = split(frame, test_size=test_size, seed=seed)
    return PreparedData(train=train, test=test, data_hash=content_hash(frame))
