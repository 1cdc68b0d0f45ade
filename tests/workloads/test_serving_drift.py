"""`mlp serve drift`: PSI + KS per feature, exactly the shifted features flagged, clear input errors."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from click.testing import CliRunner

from mlp.cli import main
from workloads.monitoring import drift
from workloads.pipelines import data

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def split():
    prepared = data.prepare()
    train, _ = data.features_and_target(prepared.train)
    test, _ = data.features_and_target(prepared.test)
    return train, test


def _run(*args: str):
    return CliRunner().invoke(main, ["serve", "drift", *args])


def test_flags_exactly_the_shifted_features(tmp_path, split):
    train, test = split
    ref, cur = tmp_path / "ref.csv", tmp_path / "cur.csv"
    train.to_csv(ref, index=False)
    shifted = ["mean texture", "worst smoothness", "area error"]
    drift.shifted(test, shifted, scale=1.6).to_csv(cur, index=False)
    result = _run("--reference", str(ref), "--current", str(cur), "--work-dir", str(tmp_path), "--json")
    assert result.exit_code == 3, result.output
    report = json.loads(result.output)
    assert sorted(report["drifted"]) == sorted(shifted)
    assert len(report["features"]) == 30
    prom = (tmp_path / "drift.prom").read_text()
    assert 'mlp_feature_drift_psi{feature="mean texture"}' in prom and "mlp_drifted_features 3" in prom
    assert (tmp_path / "drift.png").stat().st_size > 0


def test_unshifted_traffic_flags_nothing(tmp_path, split):
    train, test = split
    ref, cur = tmp_path / "ref.csv", tmp_path / "cur.csv"
    train.to_csv(ref, index=False)
    test.to_csv(cur, index=False)
    result = _run("--reference", str(ref), "--current", str(cur), "--work-dir", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert "0 of 30 features drifted" in result.output


def test_request_logs_are_accepted_as_current(tmp_path, split):
    train, test = split
    ref = tmp_path / "ref.csv"
    train.to_csv(ref, index=False)
    log = tmp_path / "requests.jsonl"
    log.write_text(
        "\n".join(json.dumps({"status": 200, "inputs": [row]}) for row in test.to_numpy().tolist()) + "\n"
    )
    result = _run("--reference", str(ref), "--current", str(log), "--work-dir", str(tmp_path), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["current_rows"] == len(test)


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("columns", "columns differ"),
        ("empty", "is empty"),
        ("text", "non-numeric columns"),
        ("missing", "no such file"),
        ("header-only", "no rows"),
    ],
)
def test_bad_inputs_exit_2_with_a_message(tmp_path, split, case, message):
    train, test = split
    ref, cur = tmp_path / "ref.csv", tmp_path / "cur.csv"
    train.to_csv(ref, index=False)
    if case == "columns":
        test.drop(columns=["mean radius"]).to_csv(cur, index=False)
    elif case == "empty":
        cur.write_text("")
    elif case == "text":
        frame = test.copy()
        frame["mean radius"] = "big"
        frame.to_csv(cur, index=False)
    elif case == "header-only":
        pd.DataFrame(columns=test.columns).to_csv(cur, index=False)
    result = _run("--reference", str(ref), "--current", str(cur), "--work-dir", str(tmp_path))
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output
