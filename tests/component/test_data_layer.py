"""The data layer under recording mocks: pins, sizing, storage class, secrets, parenting, names."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pulumi
import pytest

from components.storage import ObjectStorage, ObjectStorageArgs
from components.vectordb.qdrant import Qdrant, QdrantArgs, SnapshotSettings
from components.versions import CHARTS
from stacks import outputs
from stacks.addons_data import SERVICE_USERS
from stacks.config import MilvusConfig, PlatformConfig, QdrantConfig, VectorDbConfig
from stacks.plan.harness import ProgramRun, Registration, clean, run_program
from stacks.plan.mock_outputs import fake_secret
from tests.component.fake_cluster import FakeCluster

pytestmark = pytest.mark.timeout(120)

STORAGE_CLASS = "fast-ssd"
SERVICES = {user.name for user in SERVICE_USERS}
RELEASE = "kubernetes:helm.sh/v3:Release"
GENERATED_SECRETS = {
    # RandomPassword logical name -> length, as the components declare them
    "minio-root-password": 32,
    "minio-user-workloads-password": 32,
    "minio-user-snapshots-password": 32,
    "minio-user-milvus-password": 32,
    "qdrant-api-key": 48,
    "milvus-root-password": 32,
}


def data_layer_program(cfg: PlatformConfig) -> Callable[[], None]:
    def program() -> None:
        from stacks.addons_data import add_data_layer

        for key, value in add_data_layer(cfg, FakeCluster(STORAGE_CLASS)).items():
            pulumi.export(key, value)  # deliberately not wrapped: the layer must return secrets itself

    return program


def run_layer(**vectordb: Any) -> ProgramRun:
    cfg = PlatformConfig(target=vectordb.pop("target", "dev"), vectordb=VectorDbConfig(**vectordb))
    return run_program(data_layer_program(cfg), stack="test")


def by_name(run: ProgramRun) -> dict[str, Registration]:
    return {reg.name: reg for reg in run.registrations}


def values(reg: Registration) -> dict[str, Any]:
    result: dict[str, Any] = clean(reg.inputs)["values"]
    return result


@pytest.fixture(scope="module")
def dev_run() -> ProgramRun:
    return run_layer()


@pytest.fixture(scope="module")
def cloud_run() -> ProgramRun:
    return run_layer(
        target="aks",
        qdrant=QdrantConfig(
            replicas=3,
            shard_number=6,
            replication_factor=2,
            storage_size_gi=50,
            snapshot_schedule="30 1 * * *",
        ),
        milvus=MilvusConfig(mode="cluster", storage_size_gi=40),
    )


def test_components_and_children(dev_run: ProgramRun) -> None:
    regs = by_name(dev_run)
    assert regs["minio"].type == "mlplatform:storage:ObjectStorage"
    assert regs["qdrant"].type == "mlplatform:vectordb:Qdrant"
    assert regs["milvus"].type == "mlplatform:vectordb:Milvus"
    for component in ("minio", "qdrant", "milvus"):
        assert regs[component].parent is None and not regs[component].custom
        children = [r for r in dev_run.registrations if r.parent == component]
        assert children, component
        for child in children:
            assert child.name.startswith(f"{component}-"), child.name
            if child.type.startswith("kubernetes:"):
                assert "test-k8s" in child.provider, f"{child.name} must use the cluster's provider"
    kinds = {(r.parent, r.type) for r in dev_run.registrations}
    assert ("qdrant", "kubernetes:batch/v1:CronJob") in kinds
    # The snapshot program ships in the workload image; no script travels in a ConfigMap.
    assert ("qdrant", "kubernetes:core/v1:ConfigMap") not in kinds


@pytest.mark.parametrize("chart", ["minio", "qdrant", "milvus"])
def test_charts_are_pinned(dev_run: ProgramRun, chart: str) -> None:
    inputs = clean(by_name(dev_run)[f"{chart}-release"].inputs)
    pin = CHARTS[chart]
    assert (inputs["chart"], inputs["version"], inputs["repositoryOpts"]["repo"]) == (
        pin.chart,
        pin.version,
        pin.repository,
    )
    assert inputs["namespace"] == "mlp-data"
    assert (
        inputs["name"] == chart and values(by_name(dev_run)[f"{chart}-release"])["fullnameOverride"] == chart
    )


@pytest.mark.parametrize("fixture", ["dev_run", "cloud_run"])
def test_no_generated_secret_appears_in_plain_text(fixture: str, request: pytest.FixtureRequest) -> None:
    run: ProgramRun = request.getfixturevalue(fixture)
    generated = {fake_secret(name, length) for name, length in GENERATED_SECRETS.items()}
    assert all(len(value) >= 24 for value in generated)
    for reg in run.registrations:
        text = json.dumps(clean(reg.inputs)) + json.dumps(clean(reg.outputs))
        for value in generated:
            assert value not in text, f"{reg.type} {reg.name} shows a generated secret"
    # They do exist, as secrets: the Secrets' stringData is hidden, the exports are secret.
    regs = by_name(run)
    for secret in ("minio-root-credentials", "minio-user-workloads", "qdrant-api-key", "milvus-root"):
        reg = next(r for r in run.registrations if r.name == secret and r.type == "kubernetes:core/v1:Secret")
        assert clean(reg.inputs)["stringData"] == "[secret]" or set(
            clean(reg.inputs)["stringData"].values()
        ) == {"[secret]"}
    assert {
        outputs.S3_SECRET_ACCESS_KEY,
        outputs.S3_SERVICE_CREDENTIALS,
        outputs.QDRANT_API_KEY,
        outputs.MILVUS_TOKEN,
    } <= run.secret_exports
    assert run.exports[outputs.QDRANT_API_KEY] == fake_secret("qdrant-api-key", 48)
    assert run.exports[outputs.MILVUS_TOKEN] == f"root:{fake_secret('milvus-root-password', 32)}"
    # Workloads get their own user, never the root password.
    assert run.exports[outputs.S3_SECRET_ACCESS_KEY] == fake_secret("minio-user-workloads-password", 32)
    assert regs["minio-release"]


def test_outputs_follow_the_contract(dev_run: ProgramRun) -> None:
    assert set(dev_run.exports) <= outputs.ALL_KEYS
    assert dev_run.exports[outputs.S3_ENDPOINT] == "http://minio.mlp-data.svc:9000"
    assert dev_run.exports[outputs.S3_BUCKET] == "pipelines"
    assert dev_run.exports[outputs.QDRANT_URL] == "http://qdrant.mlp-data.svc:6333"
    assert dev_run.exports[outputs.MILVUS_URI] == "http://milvus.mlp-data.svc:19530"
    assert outputs.S3_ACCESS_KEY_ID not in dev_run.secret_exports


def test_minio_uses_the_existing_secret_and_storage_class(dev_run: ProgramRun) -> None:
    minio = values(by_name(dev_run)["minio-release"])
    assert minio["existingSecret"] == "minio-root-credentials"
    assert "rootUser" not in minio and "rootPassword" not in minio
    # One user per service, each password from its own Secret (no chart default console user).
    assert {u["existingSecret"] for u in minio["users"]} == {f"minio-user-{n}" for n in SERVICES}
    assert all("secretKey" not in u for u in minio["users"])
    assert {p["name"] for p in minio["policies"]} == {u["policy"] for u in minio["users"]}
    assert minio["persistence"]["storageClass"] == STORAGE_CLASS
    assert minio["mode"] == "standalone"
    assert {b["name"] for b in minio["buckets"]} >= {"mlflow", "pipelines", "vectordb-snapshots", "milvus"}
    secret = by_name(dev_run)["minio-root-credentials"]
    assert clean(secret.inputs)["metadata"]["name"] == "minio-root-credentials"


def test_qdrant_sizing_from_config(cloud_run: ProgramRun) -> None:
    qdrant = values(by_name(cloud_run)["qdrant-release"])
    assert qdrant["replicaCount"] == 3
    collection = qdrant["config"]["storage"]["collection"]
    assert collection["replication_factor"] == 2
    assert collection["shard_number_per_node"] == 2, "3 peers x 2 shards each >= 6 shards"
    assert qdrant["config"]["cluster"]["enabled"] is True
    assert qdrant["persistence"] == {
        "storageClassName": STORAGE_CLASS,
        "size": "50Gi",
        "accessModes": ["ReadWriteOnce"],
    }
    assert qdrant["podDisruptionBudget"]["enabled"] is True


def test_qdrant_api_key_is_referenced_not_inlined(dev_run: ProgramRun) -> None:
    qdrant = values(by_name(dev_run)["qdrant-release"])
    ref = {"secretKeyRef": {"name": "qdrant-api-key", "key": "api-key"}}
    assert qdrant["apiKey"] == {"valueFrom": ref}
    assert {"name": "QDRANT__SERVICE__API_KEY", "valueFrom": ref} in qdrant["env"]
    assert values(by_name(dev_run)["qdrant-release"])["persistence"]["storageClassName"] == STORAGE_CLASS


def test_snapshot_cronjob_schedule_and_secret_env(cloud_run: ProgramRun) -> None:
    cron = clean(
        next(
            r
            for r in cloud_run.registrations
            if r.type == "kubernetes:batch/v1:CronJob" and r.name == "qdrant-snapshots"
        ).inputs
    )
    assert cron["metadata"] == {**cron["metadata"], "name": "qdrant-snapshots", "namespace": "mlp-data"}
    spec = cron["spec"]
    assert spec["schedule"] == "30 1 * * *"
    assert spec["concurrencyPolicy"] == "Forbid"
    pod = spec["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "OnFailure"
    env = {e["name"]: e for e in pod["containers"][0]["env"]}
    assert env["QDRANT_API_KEY"]["valueFrom"]["secretKeyRef"] == {"name": "qdrant-api-key", "key": "api-key"}
    assert env["AWS_SECRET_ACCESS_KEY"]["valueFrom"]["secretKeyRef"] == {
        "name": "minio-user-snapshots",
        "key": "secretKey",
    }
    assert env["QDRANT_URLS"]["value"].count("qdrant-headless") == 3, "every peer is snapshotted"
    assert env["S3_BUCKET"]["value"] == "vectordb-snapshots"


def test_milvus_standalone_on_dev(dev_run: ProgramRun) -> None:
    milvus = values(by_name(dev_run)["milvus-release"])
    assert milvus["cluster"]["enabled"] is False
    assert milvus["minio"]["enabled"] is False
    assert milvus["pulsarv3"]["enabled"] is False and milvus["woodpecker"]["enabled"] is True
    assert milvus["standalone"]["messageQueue"] == "woodpecker"
    assert milvus["etcd"]["replicaCount"] == 1
    assert milvus["etcd"]["persistence"]["storageClass"] == STORAGE_CLASS
    pvc = milvus["standalone"]["persistence"]["persistentVolumeClaim"]
    assert (pvc["storageClass"], pvc["size"]) == (STORAGE_CLASS, "10Gi")
    s3 = milvus["externalS3"]
    assert (s3["enabled"], s3["host"], s3["port"], s3["bucketName"]) == (True, "minio", "9000", "milvus")
    assert s3["accessKey"] == "" and s3["secretKey"] == ""
    env = {e["name"]: e for e in milvus["standalone"]["extraEnv"]}
    assert env["MINIO_SECRET_ACCESS_KEY"]["valueFrom"]["secretKeyRef"]["name"] == "minio-user-milvus"
    assert env["COMMON_SECURITY_DEFAULTROOTPASSWORD"]["valueFrom"]["secretKeyRef"] == {
        "name": "milvus-root",
        "key": "password",
    }
    assert env["COMMON_SECURITY_AUTHORIZATIONENABLED"]["value"] == "true"


def test_milvus_cluster_mode(cloud_run: ProgramRun) -> None:
    milvus = values(by_name(cloud_run)["milvus-release"])
    assert milvus["cluster"]["enabled"] is True
    assert milvus["etcd"]["replicaCount"] == 3
    assert milvus["streaming"]["enabled"] is True and milvus["indexNode"]["enabled"] is False
    for component in ("proxy", "mixCoordinator", "queryNode", "dataNode", "streamingNode"):
        names = {e["name"] for e in milvus[component]["extraEnv"]}
        assert {
            "MINIO_ACCESS_KEY_ID",
            "MINIO_SECRET_ACCESS_KEY",
            "COMMON_SECURITY_DEFAULTROOTPASSWORD",
        } <= names
    assert milvus["queryNode"]["replicas"] == 2


def test_disabled_databases_are_not_declared() -> None:
    run = run_layer(qdrant=QdrantConfig(enabled=False), milvus=MilvusConfig(enabled=False))
    types = {r.type for r in run.registrations}
    assert "mlplatform:storage:ObjectStorage" in types
    assert not types & {"mlplatform:vectordb:Qdrant", "mlplatform:vectordb:Milvus"}
    assert set(run.exports) == {
        outputs.S3_ENDPOINT,
        outputs.S3_BUCKET,
        outputs.S3_ACCESS_KEY_ID,
        outputs.S3_SECRET_ACCESS_KEY,
        outputs.S3_SERVICE_CREDENTIALS,
        outputs.DATASETS_BUCKET,
    }


def test_two_instances_do_not_clash() -> None:
    def program() -> None:
        opts = pulumi.ResourceOptions(provider=FakeCluster().provider)
        storage = ObjectStorage("store", ObjectStorageArgs(namespace="ns", storage_class="sc"), opts)
        for name in ("qa", "qb"):
            Qdrant(
                name,
                QdrantArgs(
                    namespace="ns",
                    storage_class="sc",
                    snapshots=SnapshotSettings(schedule="0 3 * * *", s3=storage.access, bucket="snapshots"),
                ),
                opts,
            )

    run = run_program(program, stack="test")
    keys = [(r.type, r.name) for r in run.registrations]
    assert len(keys) == len(set(keys))
    object_names = [
        (r.type, clean(r.inputs)["metadata"]["name"])
        for r in run.registrations
        if r.type.startswith("kubernetes:") and "metadata" in r.inputs
    ]
    assert len(object_names) == len(set(object_names))
    releases = sorted(clean(r.inputs)["name"] for r in run.registrations if r.type == RELEASE)
    assert releases == ["qa", "qb", "store"]
    prefixes = sorted(
        next(e["value"] for e in env if e["name"] == "S3_PREFIX")
        for r in run.registrations
        if r.type == "kubernetes:batch/v1:CronJob"
        for env in [
            clean(r.inputs)["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["env"]
        ]
    )
    assert prefixes == ["qdrant/qa", "qdrant/qb"], "each instance backs up under its own prefix"


def test_qdrant_rejects_more_replicas_of_a_shard_than_peers() -> None:
    with pytest.raises(ValueError, match="replication_factor 3 needs at least that many peers"):
        QdrantArgs(namespace="ns", storage_class="sc", replicas=2, replication_factor=3)


def test_vector_databases_are_scraped_by_service_monitors(dev_run: ProgramRun) -> None:
    monitors = {
        r.name: clean(r.inputs)
        for r in dev_run.registrations
        if r.type == "kubernetes:monitoring.coreos.com/v1:ServiceMonitor"
    }
    qdrant = monitors["qdrant-metrics"]["spec"]
    [endpoint] = qdrant["endpoints"]
    # Qdrant's /metrics answers 401 without the API key: the Bearer token comes from its Secret.
    assert endpoint["authorization"]["credentials"] == {"name": "qdrant-api-key", "key": "api-key"}
    assert (endpoint["port"], endpoint["path"]) == ("http", "/metrics")
    assert qdrant["selector"]["matchLabels"]["app.kubernetes.io/component"] == "cluster-discovery"
    milvus = monitors["milvus-metrics"]["spec"]
    assert milvus["endpoints"][0]["port"] == "metrics"
    assert milvus["selector"]["matchLabels"] == {
        "app.kubernetes.io/name": "milvus",
        "app.kubernetes.io/instance": "milvus",
    }
    assert {m["spec"]["namespaceSelector"]["matchNames"][0] for m in monitors.values()} == {"mlp-data"}


def test_no_service_monitor_without_observability() -> None:
    cfg = PlatformConfig(target="dev", observability={"enabled": False})  # type: ignore[arg-type]
    run = run_program(data_layer_program(cfg), stack="test")
    assert not [r for r in run.registrations if r.type.endswith(":ServiceMonitor")]
