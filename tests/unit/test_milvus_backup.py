"""The milvus-backup CronJob, its ConfigMap and the restore Job; Milvus cluster spreading and PDBs."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from components.storage import user_access
from components.vectordb import milvus_backup
from components.vectordb.milvus import (
    CLUSTER_COMPONENTS,
    MilvusArgs,
    MilvusBackupSettings,
    MilvusClusterSize,
    backup_spec,
    milvus_values,
    pdb_manifests,
)
from components.versions import IMAGES
from stacks import addons_data as data
from stacks.config import ConfigError, parse_config
from tests.manifests import KUBERNETES_VERSIONS, cronjob_pod_spec

USERS = {user.name: user for user in data.SERVICE_USERS}
SECRET_VARS = (
    "MILVUS_PASSWORD",
    "MINIO_ACCESS_KEY",
    "MINIO_SECRET_KEY",
    "MINIO_BACKUP_ACCESS_KEY",
    "MINIO_BACKUP_SECRET_KEY",
)


def make_args(**overrides: Any) -> MilvusArgs:
    values: dict[str, Any] = {
        "namespace": data.DATA_NAMESPACE,
        "storage_class": "standard",
        "s3": user_access(data.STORAGE_NAME, USERS["milvus"]),
        "backup": MilvusBackupSettings(
            schedule="30 3 * * *",
            target=user_access(data.STORAGE_NAME, USERS["snapshots"]),
            bucket=data.SNAPSHOT_BUCKET,
            root_path=data.MILVUS_BACKUP_ROOT,
        ),
    }
    values.update(overrides)
    return MilvusArgs(**values)


def make_spec(**overrides: Any) -> milvus_backup.MilvusBackupSpec:
    args = make_args()
    assert args.backup is not None
    spec = backup_spec(data.MILVUS_NAME, args, args.backup)
    if overrides:
        spec = milvus_backup.MilvusBackupSpec(**{**spec.__dict__, **overrides})
    return spec


@pytest.mark.parametrize("kubernetes_version", KUBERNETES_VERSIONS)
def test_manifests_are_valid_kubernetes_objects(kubernetes_version: str) -> None:
    spec = make_spec()
    for manifest in (
        milvus_backup.configmap_manifest(spec),
        milvus_backup.cronjob_manifest(spec),
        milvus_backup.restore_job_manifest(spec, "scheduled_20260101033000", "_restored"),
        *pdb_manifests("milvus", "mlp-data", make_args(mode="cluster")),
    ):
        kubernetes_validate.validate(manifest, kubernetes_version, strict=True)


def test_cronjob_runs_the_pinned_tool_one_at_a_time_under_restricted_security() -> None:
    spec = make_spec(schedule="15 */6 * * *")
    cron = milvus_backup.cronjob_manifest(spec)
    assert cron["spec"]["schedule"] == "15 */6 * * *"
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    pod = cronjob_pod_spec(cron)
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (container,) = pod["containers"]
    assert container["image"] == IMAGES["milvus-backup"].ref
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["resources"]["requests"]["cpu"] and container["resources"]["limits"]["memory"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["config"]["configMap"]["name"] == spec.config_map_name


def test_credentials_only_come_from_secrets_and_the_config_holds_none() -> None:
    spec = make_spec()
    env = {
        e["name"]: e for e in cronjob_pod_spec(milvus_backup.cronjob_manifest(spec))["containers"][0]["env"]
    }
    for name in SECRET_VARS:
        assert "value" not in env[name]
        assert set(env[name]["valueFrom"]) == {"secretKeyRef"}
    assert env["MILVUS_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == spec.root_password.name
    # least privilege: Milvus' data is read with the `milvus` user, backups written with `snapshots`
    milvus_user = user_access(data.STORAGE_NAME, USERS["milvus"])
    snapshots_user = user_access(data.STORAGE_NAME, USERS["snapshots"])
    assert env["MINIO_ACCESS_KEY"]["valueFrom"]["secretKeyRef"]["name"] == milvus_user.secret_name
    assert env["MINIO_BACKUP_ACCESS_KEY"]["valueFrom"]["secretKeyRef"]["name"] == snapshots_user.secret_name
    assert (
        spec.milvus_bucket in USERS["milvus"].buckets and spec.milvus_bucket not in USERS["snapshots"].buckets
    )
    assert (
        spec.backup_bucket in USERS["snapshots"].buckets and spec.backup_bucket not in USERS["milvus"].buckets
    )

    config = yaml.safe_load(milvus_backup.configmap_manifest(spec)["data"][milvus_backup.CONFIG_KEY])
    assert config["milvus"]["address"] == data.MILVUS_NAME and "password" not in config["milvus"]
    minio = config["minio"]
    assert not {"accessKeyID", "secretAccessKey", "backupAccessKeyID", "backupSecretAccessKey"} & set(minio)
    assert (minio["bucketName"], minio["rootPath"]) == ("milvus", data.MILVUS_NAME)
    assert (minio["backupBucketName"], minio["backupRootPath"]) == (
        data.SNAPSHOT_BUCKET,
        data.MILVUS_BACKUP_ROOT,
    )
    assert minio["crossStorage"] is True


def test_restore_job_runs_the_tool_with_a_suffix_and_index_rebuild() -> None:
    spec = make_spec()
    job = milvus_backup.restore_job_manifest(spec, "scheduled_20260101033000", "_restored")
    command = job["spec"]["template"]["spec"]["containers"][0]["command"]
    assert command[:2] == [milvus_backup.TOOL, "restore"]
    assert command[command.index("-n") + 1] == "scheduled_20260101033000"
    assert command[command.index("-s") + 1] == "_restored"
    assert "--rebuild_index" in command
    with pytest.raises(ValueError, match="suffix is required"):
        milvus_backup.restore_command("b", "")
    with pytest.raises(ValueError, match="must match"):
        milvus_backup.restore_job_manifest(spec, "bad name; rm -rf", "_r")


def test_bad_schedule_and_retention_are_refused() -> None:
    with pytest.raises(ValueError, match="invalid Milvus backup schedule"):
        make_spec(schedule="every night")
    with pytest.raises(ValueError, match="retention_days"):
        make_spec(retention_days=0)


@pytest.mark.parametrize(
    ("key", "value", "path"),
    [
        ("backupSchedule", "3am", "vectordb.milvus.backupSchedule"),
        ("backupRetentionDays", 0, "vectordb.milvus.backupRetentionDays"),
        ("queryNodes", 0, "vectordb.milvus.queryNodes"),
    ],
)
def test_config_rejects_bad_backup_and_size_keys_by_path(key: str, value: Any, path: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({"target": "dev", "vectordb": {"milvus": {key: value}}})
    assert any(issue.path == path for issue in caught.value.issues), caught.value.issues


def test_cluster_values_spread_every_process_over_zones() -> None:
    values = milvus_values(
        make_args(mode="cluster", zone_spread=True, cluster=MilvusClusterSize(3, 3, 2, 2)),
        fullname="milvus",
        root_secret="milvus-root",
    )
    for component in CLUSTER_COMPONENTS:
        section = values[component]
        if "topologySpreadConstraints" in section:
            (zone, host) = section["topologySpreadConstraints"]
            assert zone["topologyKey"] == "topology.kubernetes.io/zone"
            assert host["topologyKey"] == "kubernetes.io/hostname"
            assert zone["labelSelector"]["matchLabels"]["app.kubernetes.io/instance"] == "milvus"
        else:  # the streaming node template reads affinity only
            terms = section["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
            assert terms[0]["podAffinityTerm"]["topologyKey"] == "topology.kubernetes.io/zone"
    assert values["queryNode"]["replicas"] == 3 and values["proxy"]["replicas"] == 3
    assert values["etcd"]["pdb"] == {"create": True}
    plain = milvus_values(make_args(mode="cluster"), fullname="milvus", root_secret="milvus-root")
    assert all("topologySpreadConstraints" not in plain[c] for c in CLUSTER_COMPONENTS)


def test_pdbs_cover_each_process_with_several_pods() -> None:
    args = make_args(mode="cluster", cluster=MilvusClusterSize(proxies=2, query_nodes=3, data_nodes=1))
    pdbs = {p["metadata"]["name"]: p for p in pdb_manifests("milvus", "mlp-data", args)}
    assert set(pdbs) == {"milvus-proxy", "milvus-querynode"}
    assert pdbs["milvus-querynode"]["spec"]["maxUnavailable"] == 1
    assert pdbs["milvus-querynode"]["spec"]["selector"]["matchLabels"]["component"] == "querynode"
    assert pdb_manifests("milvus", "mlp-data", make_args(mode="standalone")) == []


def _fake_tool(tmp_path: Path, existing: list[str]) -> tuple[Path, Path]:
    """A stand-in for the milvus-backup binary that logs its calls and lists ``existing``."""
    calls = tmp_path / "calls"
    tool = tmp_path / "milvus-backup"
    listing = "\n".join(existing)
    tool.write_text(
        "#!/bin/sh\n"
        f'echo "$*" >> {calls}\n'
        'case "$1" in\n'
        f"  list) printf '>> Backups:\\n{listing}\\n' >&2 ;;\n"
        "esac\n"
    )
    tool.chmod(tool.stat().st_mode | stat.S_IEXEC)
    return tool, calls


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("sh") is None, reason="needs a POSIX sh")
def test_backup_script_creates_then_deletes_only_expired_backups(tmp_path: Path) -> None:
    """Run the CronJob's own script with a fake tool: create, check, then retention."""
    now = datetime.now(UTC)
    old = f"scheduled_{(now - timedelta(days=9)):%Y%m%d%H%M%S}"
    recent = f"scheduled_{(now - timedelta(days=2)):%Y%m%d%H%M%S}"
    tool, calls = _fake_tool(tmp_path, [old, recent, "manual_20200101000000"])
    spec = make_spec(retention_days=7)
    env = {e["name"]: e.get("value", "") for e in milvus_backup.job_environment(spec)}
    env.update({"MILVUS_BACKUP_BIN": str(tool), "CONFIG_DIR": str(tmp_path), "PATH": os.environ["PATH"]})
    done = subprocess.run(
        ["sh", "-c", milvus_backup.BACKUP_SCRIPT], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    lines = calls.read_text().splitlines()
    assert lines[0].startswith("create --config") and " -n scheduled_" in lines[0]
    assert lines[1].startswith("get ")
    deleted = [line.rsplit(" ", 1)[1] for line in lines if line.startswith("delete")]
    assert deleted == [old], "only the expired scheduled backup goes; recent and manual ones stay"


def test_stack_restore_manifests_read_where_the_schedule_writes() -> None:
    from stacks.milvus_restore import stack_restore_manifests

    config_map, job = stack_restore_manifests("scheduled_20261129T030000Z", "_restored")
    for manifest in (config_map, job):
        kubernetes_validate.validate(manifest, "1.33", strict=True)
        assert manifest["metadata"]["namespace"] == data.DATA_NAMESPACE
    backup_yaml = yaml.safe_load(next(iter(config_map["data"].values())))
    assert backup_yaml["minio"]["backupBucketName"] == data.SNAPSHOT_BUCKET
    assert backup_yaml["minio"]["backupRootPath"] == data.MILVUS_BACKUP_ROOT
    command = job["spec"]["template"]["spec"]["containers"][0]["command"]
    assert command[command.index("-n") + 1] == "scheduled_20261129T030000Z"
    assert command[command.index("-s") + 1] == "_restored"
    # Credentials reach the Job only as secretKeyRef env entries, never through the ConfigMap.
    keys = set(backup_yaml["milvus"]) | set(backup_yaml["minio"])
    assert not keys & {"password", "accessKeyID", "secretAccessKey"}
    env = job["spec"]["template"]["spec"]["containers"][0]["env"]
    assert all("valueFrom" in e for e in env if e["name"] in SECRET_VARS)


def test_tool_restore_writes_the_config_and_runs_the_command(tmp_path: Path) -> None:
    from stacks.milvus_restore import restore_command, tool_config
    from workloads.milvus_backup_ops import MilvusBackupError, run_tool_restore

    config = tool_config(
        milvus_host="127.0.0.1",
        milvus_port=19530,
        s3_host="127.0.0.1",
        s3_port=9000,
        s3_ssl=False,
        milvus_bucket="milvus",
        milvus_root_path="file",
        backup_bucket=data.SNAPSHOT_BUCKET,
        backup_root_path=data.MILVUS_BACKUP_ROOT,
    )
    seen: dict[str, Any] = {}

    def runner(argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        seen["argv"] = argv
        seen["config"] = yaml.safe_load(Path(argv[argv.index("--config") + 1]).read_text())
        seen["env"] = kwargs["env"]
        return subprocess.CompletedProcess(argv, 0, "restored 2 collections", "")

    out = run_tool_restore(
        lambda path: restore_command("b1", "_r", tool="/opt/milvus-backup", config=path),
        config,
        env={"MILVUS_PASSWORD": "pw"},
        runner=runner,
    )
    assert out == "restored 2 collections"
    assert seen["argv"][:2] == ["/opt/milvus-backup", "restore"] and "--rebuild_index" in seen["argv"]
    assert seen["config"] == config and seen["env"]["MILVUS_PASSWORD"] == "pw"
    assert "pw" not in yaml.safe_dump(seen["config"])

    def failing(argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(argv, 2, "", "collection exists")

    with pytest.raises(MilvusBackupError, match="exited 2"):
        run_tool_restore(lambda path: ["milvus-backup", "restore", "--config", path], config, runner=failing)


def test_the_restore_default_is_where_the_stack_writes_backups() -> None:
    from workloads.milvus_backup_ops import DEFAULT_BACKUPS_URI

    # The workloads may not import the stack layer, so they keep their own default; it must agree.
    assert DEFAULT_BACKUPS_URI == f"s3://{data.SNAPSHOT_BUCKET}/{data.MILVUS_BACKUP_ROOT}"
