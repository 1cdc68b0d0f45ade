"""The snapshot CronJob spec, as plain data (no Pulumi, no servers).

The program it runs (``workloads.vectordb_snapshot``) is exercised end to end in
``tests/unit/test_vectordb_ops.py``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest

from components.storage import s3_access
from components.vectordb import snapshot
from components.versions import IMAGES
from tests.manifests import KUBERNETES_VERSIONS, cronjob_pod_spec

ROOT = Path(__file__).resolve().parents[2]


def make_spec(**overrides: Any) -> snapshot.SnapshotJobSpec:
    values: dict[str, Any] = {
        "name": "qdrant-snapshots",
        "namespace": "mlp-data",
        "schedule": "0 3 * * *",
        "peer_urls": snapshot.peer_urls("qdrant", 3),
        "api_key": snapshot.SecretRef("qdrant-api-key", "api-key"),
        "s3": s3_access("minio"),
        "bucket": "vectordb-snapshots",
        "prefix": "qdrant/qdrant",
    }
    values.update(overrides)
    return snapshot.SnapshotJobSpec(**values)


@pytest.mark.parametrize("kubernetes_version", KUBERNETES_VERSIONS)
def test_manifests_are_valid_kubernetes_objects(kubernetes_version: str) -> None:
    spec = make_spec()
    kubernetes_validate.validate(snapshot.cronjob_manifest(spec), kubernetes_version, strict=True)


def test_cronjob_runs_one_at_a_time_as_restricted_non_root() -> None:
    cron = snapshot.cronjob_manifest(make_spec(schedule="15 */6 * * *"))
    assert cron["spec"]["schedule"] == "15 */6 * * *"
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    assert cron["spec"]["timeZone"] == "Etc/UTC"
    pod = cronjob_pod_spec(cron)
    assert pod["restartPolicy"] == "OnFailure"
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (container,) = pod["containers"]
    assert container["image"] == IMAGES["workloads"].ref
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
    }
    assert container["resources"]["requests"]["cpu"] and container["resources"]["limits"]["memory"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["work"]["emptyDir"]["sizeLimit"] == "10Gi"
    assert set(volumes) == {"work"}, "no script travels in a ConfigMap"


def test_credentials_only_come_from_secrets() -> None:
    cron = snapshot.cronjob_manifest(make_spec())
    env = {e["name"]: e for e in cronjob_pod_spec(cron)["containers"][0]["env"]}
    assert env["QDRANT_API_KEY"]["valueFrom"] == {
        "secretKeyRef": {"name": "qdrant-api-key", "key": "api-key"}
    }
    assert env["AWS_ACCESS_KEY_ID"]["valueFrom"] == {
        "secretKeyRef": {"name": "minio-root-credentials", "key": "rootUser"}
    }
    assert env["AWS_SECRET_ACCESS_KEY"]["valueFrom"] == {
        "secretKeyRef": {"name": "minio-root-credentials", "key": "rootPassword"}
    }
    for name in ("QDRANT_API_KEY", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        assert "value" not in env[name]
    assert env["QDRANT_URLS"]["value"] == (
        "http://qdrant-0.qdrant-headless:6333,http://qdrant-1.qdrant-headless:6333,"
        "http://qdrant-2.qdrant-headless:6333"
    )
    assert env["S3_ENDPOINT"]["value"] == "http://minio:9000"
    assert (env["S3_BUCKET"]["value"], env["S3_PREFIX"]["value"]) == ("vectordb-snapshots", "qdrant/qdrant")


def test_job_runs_the_workload_image_program_and_installs_nothing() -> None:
    import importlib.util

    command = cronjob_pod_spec(snapshot.cronjob_manifest(make_spec()))["containers"][0]["command"]
    assert command == ["python", "-m", snapshot.SNAPSHOT_MODULE]
    assert importlib.util.find_spec(snapshot.SNAPSHOT_MODULE) is not None
    assert not any("pip" in part for part in command)


@pytest.mark.parametrize(
    "schedule",
    ["0 3 * * *", "*/15 * * * *", "0 0-6/2 * * 1-5", "30 2 1,15 * *", "@daily", "0 3 * * 7"],
)
def test_valid_schedules(schedule: str) -> None:
    assert snapshot.validate_schedule(schedule) == ""
    make_spec(schedule=schedule)


@pytest.mark.parametrize(
    ("schedule", "message"),
    [
        ("0 3 * *", "expected 5 fields"),
        ("60 3 * * *", "minute"),
        ("0 24 * * *", "hour"),
        ("0 3 0 * *", "day of month"),
        ("0 3 * 13 *", "month"),
        ("*/0 * * * *", "bad step"),
        ("0 5-3 * * *", "outside"),
        ("daily", "expected 5 fields"),
    ],
)
def test_invalid_schedules_are_rejected(schedule: str, message: str) -> None:
    assert message in snapshot.validate_schedule(schedule)
    with pytest.raises(ValueError, match="invalid snapshot schedule"):
        make_spec(schedule=schedule)


def test_spec_rejects_no_peers_and_zero_retention() -> None:
    with pytest.raises(ValueError, match="at least one Qdrant peer"):
        make_spec(peer_urls=())
    with pytest.raises(ValueError, match="retention_days"):
        make_spec(retention_days=0)


def test_manifest_is_plain_json_data() -> None:
    cron = snapshot.cronjob_manifest(make_spec())
    assert json.loads(json.dumps(cron)) == cron
