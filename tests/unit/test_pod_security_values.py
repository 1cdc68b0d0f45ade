"""Security contexts and requests/limits in the values and specs the program passes to each chart.

Values keys themselves are checked against each pinned chart's templates by the plan's chart
check (tests/plan/test_plan_policy.py); these tests pin what the builders put under those keys.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from components.clusters.base import (
    AKS_SPOT_TAINT,
    GPU_TAINT,
    GpuPoolInfo,
    GpuPoolSpec,
    GpuSharing,
    gpu_node_labels,
)
from components.clusters.eks_autoscaler import AUTOSCALER_UID, autoscaler_security_values
from components.clusters.eks_interruption_spec import nth_values
from components.events import (
    ARGO_EVENTS_UID,
    DatasetEventsArgs,
    chart_values,
    event_bus_spec,
    minio_source_spec,
    sensor_spec,
    webhook_source_spec,
)
from components.gpu.dcgm import dcgm_values
from components.gpu.device_plugin import device_plugin_values
from components.gpu.operator import OPERAND_RESOURCES, operator_values
from components.observability import MONITORING_RESOURCES, kube_prometheus_stack_values
from components.security import (
    GPU_SYSTEM_NAMESPACES,
    MONITORING_NAMESPACE,
    PRIVILEGED_COMPONENTS,
    privileged_allowed,
)
from components.storage import MINIO_SETUP_JOBS, MINIO_UID, ObjectStorageArgs, S3Access, minio_values
from components.tracking import (
    MLFLOW_UID,
    ArtifactStore,
    TrackingServerArgs,
    mlflow_values,
    postgres_statefulset,
)
from components.vectordb.milvus import MilvusArgs, milvus_values
from components.vectordb.qdrant import QdrantArgs, qdrant_values


def resources_blocks(values: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, Any]]:
    """Every container ``resources`` mapping in a values tree (not volume sizes), with its path."""
    if isinstance(values, dict):
        for key, value in values.items():
            if key == "resources" and isinstance(value, dict) and "memory" in value.get("requests", {}):
                yield ".".join((*path, key)), value
            else:
                yield from resources_blocks(value, (*path, str(key)))


def assert_bounded(resources: dict[str, Any]) -> None:
    assert set(resources["requests"]) >= {"cpu", "memory"}
    assert "memory" in resources["limits"]


def assert_restricted(ctx: dict[str, Any]) -> None:
    assert ctx["allowPrivilegeEscalation"] is False
    assert ctx["capabilities"] == {"drop": ["ALL"]}
    assert ctx["seccompProfile"] == {"type": "RuntimeDefault"}
    assert ctx.get("privileged") is not True


def gpu_pools() -> list[GpuPoolInfo]:
    spec = GpuPoolSpec("t4", "T4", 1, 0, 2, True, GpuSharing())
    return [GpuPoolInfo(spec, gpu_node_labels(spec), (GPU_TAINT, AKS_SPOT_TAINT))]


S3 = S3Access(endpoint="http://minio.mlp-data.svc:9000", host="minio", port=9000, secret_name="s3")


# --- data services ---------------------------------------------------------------------------


def test_minio_runs_non_root_and_its_setup_jobs_read_only() -> None:
    values = minio_values(ObjectStorageArgs("mlp-data", "standard"), fullname="minio", secret_name="root")
    pod = values["securityContext"]
    assert pod["enabled"] is True and pod["runAsNonRoot"] is True and pod["runAsUser"] == MINIO_UID
    assert pod["seccompProfile"] == {"type": "RuntimeDefault"}
    assert_restricted(values["containerSecurityContext"])
    assert values["postJob"]["securityContext"]["enabled"] is True
    for job in MINIO_SETUP_JOBS:
        assert values[job]["securityContext"] == {"enabled": True}
        assert_restricted(values[job]["containerSecurityContext"])
        assert values[job]["containerSecurityContext"]["readOnlyRootFilesystem"] is True
        assert_bounded(values[job]["resources"])
    assert_bounded(values["resources"])


def test_qdrant_is_restricted_without_the_root_chown_init_container() -> None:
    values = qdrant_values(QdrantArgs("mlp-data", "standard"), fullname="qdrant", api_key_secret="k")
    assert_restricted(values["containerSecurityContext"])
    assert values["containerSecurityContext"]["readOnlyRootFilesystem"] is True
    assert values["podSecurityContext"]["runAsNonRoot"] is True
    assert values["updateVolumeFsOwnership"] is False
    assert_bounded(values["resources"])


@pytest.mark.parametrize("mode", ["standalone", "cluster"])
def test_milvus_containers_cannot_escalate(mode: str) -> None:
    args = MilvusArgs("mlp-data", "standard", S3, mode=mode)  # type: ignore[arg-type]
    values = milvus_values(args, fullname="milvus", root_secret="root")
    ctx = values["containerSecurityContext"]
    assert ctx["allowPrivilegeEscalation"] is False and ctx["capabilities"] == {"drop": ["ALL"]}
    assert values["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    blocks = dict(resources_blocks(values))
    assert blocks and all(assert_bounded(r) is None for r in blocks.values())


# --- MLflow and Argo Events ------------------------------------------------------------------


def tracking_args() -> TrackingServerArgs:
    return TrackingServerArgs(
        "mlflow", "standard", ArtifactStore("http://minio:9000", "mlflow", "id", "secret")
    )


def test_postgres_mounts_no_token_and_has_a_read_only_root() -> None:
    spec = postgres_statefulset("mlflow", "mlflow", tracking_args(), "db")["template"]["spec"]
    assert spec["automountServiceAccountToken"] is False
    (container,) = spec["containers"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    volumes = {v["name"]: v for v in spec["volumes"]}
    for mount in container["volumeMounts"]:
        if mount["mountPath"] in ("/tmp", "/var/run/postgresql"):
            assert "emptyDir" in volumes[mount["name"]]
    assert {m["mountPath"] for m in container["volumeMounts"]} >= {"/tmp", "/var/run/postgresql"}


def test_mlflow_pods_run_as_the_chart_user_with_seccomp_and_no_token() -> None:
    values = mlflow_values(
        "mlflow", "mlflow", tracking_args(), db_secret="db", admin_secret="a", s3_secret="s", s3_endpoint="e"
    )
    assert values["podSecurityContext"]["runAsNonRoot"] is True
    assert values["podSecurityContext"]["runAsUser"] == MLFLOW_UID
    assert values["podSecurityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert_restricted(values["securityContext"])
    assert values["serviceAccount"] == {"automount": False}
    assert_bounded(values["resources"])


def events_args() -> DatasetEventsArgs:
    return DatasetEventsArgs("argo-events", "minio:9000", "datasets", "id", "secret", "{}")


def test_argo_events_controller_sources_and_sensor_are_restricted() -> None:
    args = events_args()
    values = chart_values(args)
    assert values["global"]["securityContext"]["runAsUser"] == ARGO_EVENTS_UID
    assert_restricted(values["controller"]["containerSecurityContext"])
    assert_bounded(values["controller"]["resources"])
    sensor = sensor_spec(
        args, minio_source="m", webhook_source="w", service_account="sa", outputs_config_map="o"
    )
    assert sensor["template"]["serviceAccountName"] == "sa"
    for spec in (minio_source_spec(args, "s3"), webhook_source_spec("w", "argo-events"), sensor):
        template = spec["template"]
        assert template["securityContext"]["runAsNonRoot"] is True
        assert_restricted(template["container"]["securityContext"])
        assert_bounded(template["container"]["resources"])


def test_event_bus_containers_cannot_escalate_and_are_bounded() -> None:
    bus = event_bus_spec()["jetstream"]
    for key in ("containerTemplate", "reloaderContainerTemplate", "metricsContainerTemplate"):
        assert_restricted(bus[key]["securityContext"])
        assert_bounded(bus[key]["resources"])


# --- monitoring, GPU daemons, autoscaler ----------------------------------------------------


def test_every_kube_prometheus_stack_container_has_requests_and_limits() -> None:
    values = kube_prometheus_stack_values(
        release_name="monitoring",
        retention="7d",
        storage_size_gi=20,
        storage_class=None,
        admin_secret_name="admin",
        node_labels=("a",),
    )
    blocks = dict(resources_blocks(values))
    assert len(blocks) == len(MONITORING_RESOURCES)
    for path in (
        "prometheus.prometheusSpec.resources",
        "alertmanager.alertmanagerSpec.resources",
        "prometheusOperator.resources",
        "grafana.resources",
        "kube-state-metrics.resources",
        "prometheus-node-exporter.resources",
    ):
        assert_bounded(blocks[path])


def test_gpu_daemons_have_requests_and_add_no_privilege_of_their_own() -> None:
    pools = gpu_pools()
    plugin = device_plugin_values(pools)
    assert plugin["podSecurityContext"] == {"seccompProfile": {"type": "RuntimeDefault"}}
    # The container context stays the chart's (escalation off, or SYS_ADMIN where MIG needs it).
    assert "securityContext" not in plugin
    assert_bounded(plugin["resources"])
    assert_bounded(dcgm_values(pools, release_name="dcgm", metrics_config_map="m")["resources"])
    operator = operator_values(pools, release_name="gpu-operator")
    for operand in ("toolkit", "validator", "devicePlugin", "gfd"):
        assert_bounded(operator[operand]["resources"])
    assert operator["driver"]["resources"] == {"requests": OPERAND_RESOURCES["driver"].to_k8s()["requests"]}
    for values in (plugin, operator):
        assert "privileged" not in str(values)


def test_cluster_autoscaler_is_restricted() -> None:
    values = autoscaler_security_values()
    assert values["securityContext"]["runAsNonRoot"] is True
    assert values["securityContext"]["runAsUser"] == AUTOSCALER_UID
    assert_restricted(values["containerSecurityContext"])
    assert values["containerSecurityContext"]["readOnlyRootFilesystem"] is True
    assert_bounded(values["resources"])


def test_privileged_components_live_only_in_privileged_namespaces() -> None:
    assert PRIVILEGED_COMPONENTS
    for component in PRIVILEGED_COMPONENTS:
        assert component.namespace in GPU_SYSTEM_NAMESPACES | {MONITORING_NAMESPACE}
        assert component.reason
    assert privileged_allowed("dcgm-exporter", "dcgm-exporter")
    assert privileged_allowed(MONITORING_NAMESPACE, "monitoring-prometheus-node-exporter")
    assert not privileged_allowed(MONITORING_NAMESPACE, "monitoring-grafana")
    assert not privileged_allowed("mlp-data", "minio")


def test_node_termination_handler_adds_seccomp_and_drops_capabilities() -> None:
    values = nth_values(queue_url="q", region="us-west-2", role_arn="arn")
    assert values["podSecurityContext"] == {"seccompProfile": {"type": "RuntimeDefault"}}
    assert values["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert values["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert_bounded(values["resources"])
