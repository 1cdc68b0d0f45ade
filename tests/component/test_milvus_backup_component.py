"""The data layer's Milvus backup CronJob, PDBs and zone spreading under recording mocks."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from components.vectordb.milvus_backup import CONFIG_KEY
from stacks import addons_data as data
from stacks.config import MilvusConfig, PlatformConfig, QdrantConfig, VectorDbConfig
from stacks.plan.harness import ProgramRun, clean, run_program
from stacks.plan.mock_outputs import fake_secret
from tests.component.test_data_layer import data_layer_program

pytestmark = pytest.mark.timeout(120)

CLUSTER = MilvusConfig(
    mode="cluster", proxies=2, query_nodes=3, data_nodes=1, streaming_nodes=2, backup_schedule="0 1 * * 0"
)


def run(target: str, milvus: MilvusConfig) -> ProgramRun:
    cfg = PlatformConfig(
        target=target,
        vectordb=VectorDbConfig(
            milvus=milvus, qdrant=QdrantConfig(replicas=3, shard_number=6, replication_factor=2)
        ),
    )
    return run_program(data_layer_program(cfg), stack="test")


@pytest.fixture(scope="module")
def cloud() -> ProgramRun:
    return run("eks", CLUSTER)


@pytest.fixture(scope="module")
def dev() -> ProgramRun:
    return run("dev", MilvusConfig())


def regs(run: ProgramRun, type_: str) -> dict[str, Any]:
    return {r.name: r for r in run.registrations if r.type == type_}


def test_backup_cronjob_and_config_are_children_of_milvus(cloud: ProgramRun) -> None:
    cron = regs(cloud, "kubernetes:batch/v1:CronJob").get("milvus-backups")
    assert cron is not None and cron.parent == data.MILVUS_NAME
    spec = clean(cron.inputs)["spec"]
    assert spec["schedule"] == CLUSTER.backup_schedule
    config = regs(cloud, "kubernetes:core/v1:ConfigMap")["milvus-backups-config"]
    assert config.parent == data.MILVUS_NAME
    backup_yaml = yaml.safe_load(clean(config.inputs)["data"][CONFIG_KEY])
    assert backup_yaml["minio"]["backupRootPath"] == data.MILVUS_BACKUP_ROOT


def test_no_generated_secret_reaches_the_backup_objects(cloud: ProgramRun) -> None:
    text = json.dumps(
        [clean(r.inputs) for r in cloud.registrations if r.name.startswith("milvus-backups")], default=str
    )
    for name, length in (("milvus-root-password", 32), ("minio-user-milvus-password", 32)):
        assert fake_secret(name, length) not in text
    assert fake_secret("minio-user-snapshots-password", 32) not in text


def test_cluster_mode_gets_node_counts_pdbs_and_spreading(cloud: ProgramRun) -> None:
    release = regs(cloud, "kubernetes:helm.sh/v3:Release")["milvus-release"]
    values = clean(release.inputs)["values"]
    assert (values["proxy"]["replicas"], values["queryNode"]["replicas"]) == (2, 3)
    assert (values["dataNode"]["replicas"], values["streamingNode"]["replicas"]) == (1, 2)
    assert values["queryNode"]["topologySpreadConstraints"][0]["topologyKey"] == "topology.kubernetes.io/zone"
    pdbs = regs(cloud, "kubernetes:policy/v1:PodDisruptionBudget")
    assert set(pdbs) == {"milvus-proxy", "milvus-querynode", "milvus-streamingnode"}
    assert all(p.parent == data.MILVUS_NAME for p in pdbs.values())
    qdrant = clean(regs(cloud, "kubernetes:helm.sh/v3:Release")["qdrant-release"].inputs)["values"]
    assert qdrant["podDisruptionBudget"]["enabled"] is True
    assert qdrant["topologySpreadConstraints"][0]["topologyKey"] == "topology.kubernetes.io/zone"


def test_dev_keeps_standalone_without_pdbs_or_spreading(dev: ProgramRun) -> None:
    assert regs(dev, "kubernetes:policy/v1:PodDisruptionBudget") == {}
    values = clean(regs(dev, "kubernetes:helm.sh/v3:Release")["milvus-release"].inputs)["values"]
    assert "topologySpreadConstraints" not in values["standalone"]
    assert "milvus-backups" in regs(dev, "kubernetes:batch/v1:CronJob")
