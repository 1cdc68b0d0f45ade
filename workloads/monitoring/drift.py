"""Feature drift between a reference table and current traffic: PSI and a two-sample KS test.

Per numeric feature: the Population Stability Index over the reference's decile bins (a standard
reading: < 0.1 stable, 0.1-0.2 moderate, > 0.2 drifted) and scipy's two-sample Kolmogorov-Smirnov
test. A feature is flagged when PSI exceeds its threshold **and** the KS p-value is below alpha,
so neither a large-sample KS nitpick nor a small-sample PSI wobble raises a flag alone.

Inputs are CSV files with the same columns, or request logs (JSONL written by the serving
middleware; their ``inputs`` rows become a table with the model's feature names). The result
can be exported as Prometheus gauges (``mlp_feature_drift_psi{feature}``, ...).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from workloads.figures import save_figure

DEFAULT_PSI_THRESHOLD = 0.2
DEFAULT_ALPHA = 0.01
BINS = 10
_EPS = 1e-4


class DriftInputError(ValueError):
    """An input file is missing, empty, non-numeric or does not match the other one."""


def psi(reference: np.ndarray, current: np.ndarray, bins: int = BINS) -> float:
    """Population Stability Index of ``current`` against ``reference`` on reference quantile bins."""
    edges = np.unique(np.quantile(reference, np.linspace(0, 1, bins + 1)))
    if len(edges) < 2:  # constant reference column: any change is all-or-nothing
        same = float(np.mean(current == reference[0]))
        return 0.0 if same == 1.0 else float((1 - same) * np.log((1 - same + _EPS) / _EPS))
    edges[0], edges[-1] = -np.inf, np.inf
    ref = np.histogram(reference, edges)[0] / len(reference)
    cur = np.histogram(current, edges)[0] / len(current)
    ref, cur = np.clip(ref, _EPS, None), np.clip(cur, _EPS, None)
    return float(np.sum((cur - ref) * np.log(cur / ref)))


@dataclass
class FeatureDrift:
    """Drift figures of one feature."""

    feature: str
    psi: float
    ks_statistic: float
    ks_pvalue: float
    reference_mean: float
    current_mean: float
    drifted: bool


@dataclass
class DriftReport:
    """Per-feature drift and the flagged features."""

    reference: str
    current: str
    reference_rows: int
    current_rows: int
    psi_threshold: float
    alpha: float
    features: list[FeatureDrift] = field(default_factory=list)

    @property
    def drifted(self) -> list[str]:
        """Names of the flagged features."""
        return [f.feature for f in self.features if f.drifted]

    def to_dict(self) -> dict[str, Any]:
        """Plain data for ``--json`` and reports."""
        data = asdict(self)
        data["drifted"] = self.drifted
        return data

    def prometheus_text(self) -> str:
        """Prometheus text exposition of the drift gauges."""
        lines = [
            "# HELP mlp_feature_drift_psi Population Stability Index of a feature, current vs reference.",
            "# TYPE mlp_feature_drift_psi gauge",
        ]
        lines += [
            f'mlp_feature_drift_psi{{feature="{_label(f.feature)}"}} {f.psi:.6g}' for f in self.features
        ]
        lines += [
            "# HELP mlp_feature_drift_ks_pvalue Two-sample KS test p-value of a feature.",
            "# TYPE mlp_feature_drift_ks_pvalue gauge",
        ]
        lines += [
            f'mlp_feature_drift_ks_pvalue{{feature="{_label(f.feature)}"}} {f.ks_pvalue:.6g}'
            for f in self.features
        ]
        lines += [
            "# HELP mlp_drifted_features Number of features flagged as drifted.",
            "# TYPE mlp_drifted_features gauge",
            f"mlp_drifted_features {len(self.drifted)}",
        ]
        return "\n".join(lines) + "\n"


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def compare(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    *,
    reference_name: str = "reference",
    current_name: str = "current",
    psi_threshold: float = DEFAULT_PSI_THRESHOLD,
    alpha: float = DEFAULT_ALPHA,
) -> DriftReport:
    """Per-feature PSI and KS test of two tables with the same numeric columns.

    Raises:
        DriftInputError: Empty tables, different columns, or non-numeric columns (all named).
    """
    from scipy.stats import ks_2samp

    for name, frame in ((reference_name, reference), (current_name, current)):
        if frame.empty or len(frame.columns) == 0:
            raise DriftInputError(f"{name} has no rows (or no columns): nothing to compare")
    missing = [c for c in reference.columns if c not in current.columns]
    extra = [c for c in current.columns if c not in reference.columns]
    if missing or extra:
        raise DriftInputError(
            f"columns differ: {current_name} lacks {missing[:10]} and has extra {extra[:10]};"
            " both inputs need the same feature columns"
        )
    non_numeric = [
        f"{name}:{c}"
        for name, frame in ((reference_name, reference), (current_name, current))
        for c in reference.columns
        if not pd.api.types.is_numeric_dtype(frame[c])
    ]
    if non_numeric:
        raise DriftInputError(f"non-numeric columns (drift needs numbers): {non_numeric[:10]}")
    report = DriftReport(
        reference=reference_name,
        current=current_name,
        reference_rows=len(reference),
        current_rows=len(current),
        psi_threshold=psi_threshold,
        alpha=alpha,
    )
    for column in reference.columns:
        ref = reference[column].to_numpy(dtype=float)
        cur = current[column].to_numpy(dtype=float)
        ref, cur = ref[np.isfinite(ref)], cur[np.isfinite(cur)]
        if len(ref) == 0 or len(cur) == 0:
            raise DriftInputError(f"column {column!r} has no finite values in one of the inputs")
        value = psi(ref, cur)
        ks = ks_2samp(ref, cur)
        report.features.append(
            FeatureDrift(
                feature=str(column),
                psi=round(value, 6),
                ks_statistic=round(float(ks.statistic), 6),
                ks_pvalue=float(ks.pvalue),
                reference_mean=float(ref.mean()),
                current_mean=float(cur.mean()),
                drifted=bool(value > psi_threshold and ks.pvalue < alpha),
            )
        )
    return report


def read_input(path: str | Path, feature_names: list[str] | None = None) -> pd.DataFrame:
    """A CSV table, or a request log (``.jsonl``) turned into a table of its input rows.

    Raises:
        DriftInputError: Missing or empty file, unparseable content, log rows of the wrong width.
    """
    file = Path(path)
    if not file.exists():
        raise DriftInputError(f"{file}: no such file")
    if file.stat().st_size == 0:
        raise DriftInputError(f"{file} is empty")
    if file.suffix in (".jsonl", ".ndjson"):
        rows: list[list[Any]] = []
        for number, line in enumerate(file.read_text().splitlines(), 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError as error:
                raise DriftInputError(f"{file}:{number}: not JSON ({error})") from None
            if record.get("status", 200) != 200 or not isinstance(record.get("inputs"), list):
                continue
            for row in record["inputs"]:
                if isinstance(row, list):
                    rows.append(row)
        if not rows:
            raise DriftInputError(f"{file}: no successful V1 requests with input rows in the log")
        width = len(rows[0])
        if any(len(r) != width for r in rows):
            raise DriftInputError(f"{file}: logged rows have different widths")
        names = (
            feature_names
            if feature_names and len(feature_names) == width
            else [f"f{i}" for i in range(width)]
        )
        return pd.DataFrame(rows, columns=names)
    try:
        frame = pd.read_csv(file)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as error:
        raise DriftInputError(f"{file}: not a readable CSV ({error})") from None
    return frame


def default_reference(tracking_uri: str, model_ref: str) -> tuple[pd.DataFrame, str]:
    """The training split of the pipeline run behind a registered model version.

    The split is rebuilt from the run's ``test_size`` and ``split_seed`` parameters and checked
    against the version's data hash, so the reference is exactly what the model was trained on.

    Raises:
        DriftInputError: The version, its parameters, or matching data cannot be found.
    """
    from workloads import registry
    from workloads.pipelines import data

    try:
        found = registry.lineage(model_ref, tracking_uri)
    except registry.RegistryError as error:
        raise DriftInputError(f"no default reference: {error}; pass --reference FILE") from None
    try:
        test_size, seed = float(found.params["test_size"]), int(found.params["split_seed"])
    except KeyError as error:
        raise DriftInputError(f"{model_ref}'s run has no {error} parameter; pass --reference FILE") from None
    prepared = data.prepare(test_size=test_size, seed=seed)
    if found.data_hash and prepared.data_hash != found.data_hash:
        raise DriftInputError(
            f"the dataset here ({prepared.data_hash}) is not the one {model_ref} was trained on"
            f" ({found.data_hash}); pass --reference FILE"
        )
    features, _ = data.features_and_target(prepared.train)
    return features, f"training split of {model_ref} (run {found.run_id}, test_size={test_size}, seed={seed})"


def shifted(frame: pd.DataFrame, features: list[str], scale: float = 1.5, seed: int = 0) -> pd.DataFrame:
    """A copy of ``frame`` with ``features`` multiplied by ``scale`` (a deliberate drift for demos)."""
    rng = np.random.default_rng(seed)
    out = frame.copy()
    for name in features:
        out[name] = out[name] * scale * (1 + 0.01 * rng.standard_normal(len(out)))
    return out


def plot(report: DriftReport, path: Path) -> Path:
    """Bar chart of PSI per feature with the threshold; flagged features in red."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [f.feature for f in report.features]
    values = [f.psi for f in report.features]
    colors = ["tab:red" if f.drifted else "tab:blue" for f in report.features]
    fig, ax = plt.subplots(figsize=(10, 4))
    ax.bar(range(len(names)), values, color=colors)
    ax.axhline(
        report.psi_threshold,
        color="k",
        linestyle="--",
        linewidth=1,
        label=f"PSI threshold {report.psi_threshold}",
    )
    ax.set_xticks(range(len(names)), names, rotation=75, fontsize=7)
    ax.set_ylabel("PSI")
    ax.set_title(f"drift: {len(report.drifted)} of {len(names)} features flagged", fontsize=9)
    ax.legend()
    return save_figure(fig, path)
