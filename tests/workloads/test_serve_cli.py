"""``mlp serve canary``, ``ab`` and ``shadow`` from the command line, on real local topologies.

Each command starts its own topology (KServe model servers, nginx, Prometheus on 127.0.0.1) from
a two-version registry, runs its pattern, stops the topology and writes WORK_DIR/<pattern>.json.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from mlp.cli import main
from tests.workloads.serving_registry import MODEL, build_registry
from workloads import registry

pytestmark = [pytest.mark.slow, pytest.mark.e2e, pytest.mark.timeout(600)]


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Any:
    home = tmp_path_factory.mktemp("serve-cli")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLP_HOME", str(home))
        mp.delenv("MLP_TARGET", raising=False)
        mp.delenv("MLP_OUTPUTS_FILE", raising=False)
        build_registry(home)
        yield home


def _serve(*args: str) -> tuple[int, str]:
    done = CliRunner().invoke(main, ["serve", *args])
    assert "Traceback" not in done.output, done.output
    return done.exit_code, done.output


def _no_server_left(work_dir: Path) -> None:
    """No process of the topology (their command lines name files under WORK_DIR) outlives the command."""
    import psutil

    left = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if str(work_dir) in cmdline and proc.info["status"] != psutil.STATUS_ZOMBIE:
            left.append(cmdline)
    assert not left, left


def test_ab_splits_traffic_and_writes_a_verdict(home: Path) -> None:
    work = home / "ab"
    code, output = _serve("ab", "--requests", "60", "--work-dir", str(work))
    assert code == 0, output
    report = json.loads((work / "ab.json").read_text())
    assert report["pattern"] == "ab" and report["requests"] == 60
    assert (report["A"]["version"], report["B"]["version"]) == ("1", "2")
    assert report["A"]["answered"] > 0 and report["B"]["answered"] > 0
    assert report["verdict"] in output
    _no_server_left(work)


def test_shadow_answers_from_the_primary_and_compares_the_challenger(home: Path) -> None:
    work = home / "shadow"
    code, output = _serve("shadow", "--requests", "30", "--work-dir", str(work))
    assert code == 0, output
    report = json.loads((work / "shadow.json").read_text())
    assert report["responses_only_from_primary"] is True and report["compared"] > 0
    assert f"over {report['compared']} requests" in output
    _no_server_left(work)


def test_a_failing_canary_rolls_back_and_leaves_the_registry_alone(home: Path) -> None:
    from mlflow import MlflowClient

    work = home / "canary"
    code, output = _serve(
        "canary", "--fault", "errors", "--steps", "50", "--requests", "80", "--work-dir", str(work)
    )
    assert code == 3, output
    report = json.loads((work / "canary.json").read_text())
    assert report["decision"] == "rollback" and report["registry_updated"] is False
    assert (work / "canary.png").stat().st_size > 0
    uri = f"sqlite:///{home / 'mlflow.db'}"
    champion = MlflowClient(tracking_uri=uri, registry_uri=uri).get_model_version_by_alias(
        MODEL, registry.CHAMPION
    )
    assert str(champion.version) == "1"
    _no_server_left(work)
