"""AKS spot drain objects: RBAC scope, placement on spot pools only, and a runnable command."""

from __future__ import annotations

import importlib.util

import pytest

from components.clusters.aks_interruption_spec import (
    CLUSTER_ROLE_RULES,
    DRAIN_NAME,
    DRAIN_NAMESPACE,
    cluster_role_binding,
    daemonset,
    drain_command,
    spot_pools,
)
from components.clusters.base import AKS_SPOT_TAINT, GPU_TAINT, POOL_LABEL, GpuPoolInfo, GpuPoolSpec
from workloads.gpu import spot_drain


def pool(name: str, *, spot: bool) -> GpuPoolInfo:
    taints = (GPU_TAINT, AKS_SPOT_TAINT) if spot else (GPU_TAINT,)
    return GpuPoolInfo(GpuPoolSpec(name, "T4", 1, 0, 2, spot=spot), {POOL_LABEL: name}, taints)


POOLS = [pool("t4", spot=True), pool("ondemand", spot=False), pool("a10", spot=True)]


def test_only_spot_pools_are_watched() -> None:
    assert [p.name for p in spot_pools(POOLS)] == ["t4", "a10"]
    with pytest.raises(ValueError, match="ondemand"):
        daemonset(POOLS, "img")
    with pytest.raises(ValueError, match="at least one"):
        daemonset([], "img")


def test_daemonset_lands_on_the_spot_pools_with_their_tolerations() -> None:
    body = daemonset(spot_pools(POOLS), "img:1")
    pod = body["spec"]["template"]["spec"]
    (term,) = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"
    ]
    assert term["matchExpressions"] == [{"key": POOL_LABEL, "operator": "In", "values": ["a10", "t4"]}]
    assert AKS_SPOT_TAINT.toleration() in pod["tolerations"] and GPU_TAINT.toleration() in pod["tolerations"]
    (container,) = pod["containers"]
    assert container["image"] == "img:1"
    assert container["env"][0]["valueFrom"] == {"fieldRef": {"fieldPath": "spec.nodeName"}}
    assert container["resources"]["limits"] and container["resources"]["requests"]
    assert pod["serviceAccountName"] == DRAIN_NAME
    assert body["spec"]["selector"]["matchLabels"] == body["spec"]["template"]["metadata"]["labels"]


def test_rbac_allows_cordon_list_and_evict_only() -> None:
    verbs = {(tuple(r["resources"]), tuple(r["verbs"])) for r in CLUSTER_ROLE_RULES}
    assert verbs == {
        (("nodes",), ("get", "patch")),
        (("pods",), ("list",)),
        (("pods/eviction",), ("create",)),
    }
    binding = cluster_role_binding()
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": DRAIN_NAME, "namespace": DRAIN_NAMESPACE}
    ]
    assert binding["roleRef"]["name"] == DRAIN_NAME


def test_runs_as_the_workload_image_user() -> None:
    import re
    from pathlib import Path

    from components.clusters.aks_interruption_spec import WORKLOAD_IMAGE_UID

    dockerfile = (Path(__file__).resolve().parents[2] / "Dockerfile").read_text()
    (uid,) = re.findall(r"^ARG MLP_UID=(\d+)$", dockerfile, flags=re.M)
    assert int(uid) == WORKLOAD_IMAGE_UID
    pod = daemonset(spot_pools(POOLS), "img")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsUser"] == WORKLOAD_IMAGE_UID


def test_command_runs_the_shipped_module() -> None:
    command = drain_command()
    assert command[:2] == ["python", "-m"]
    assert importlib.util.find_spec(command[2]) is not None
    assert command[2] == spot_drain.__name__
    with pytest.raises(SystemExit) as exc:
        spot_drain.main(["--help"])
    assert exc.value.code == 0
