"""Pod side of interruptions: GPU training pods get the checkpoint grace, inside the handlers' budget."""

from __future__ import annotations

from components.clusters.eks_interruption_spec import NODE_TERMINATION_GRACE_SECONDS
from workloads.gpu.manifests import GpuPlacement, render
from workloads.pipelines.interrupt import CHECKPOINT_GRACE_SECONDS
from workloads.tuning import katib
from workloads.tuning.space import load_space


def pod_specs(obj: dict) -> list[dict]:
    if obj.get("kind") == "Job":
        return [obj["spec"]["template"]["spec"]]
    if obj.get("kind") == "Experiment":
        return [obj["spec"]["trialTemplate"]["trialSpec"]["spec"]["template"]["spec"]]
    return []


def test_gpu_jobs_get_the_checkpoint_grace() -> None:
    placement = GpuPlacement(pool="t4", node_selector={"mlplatform.io/gpu-pool": "t4"}, shares_per_gpu=2)
    jobs = [o for w in ("smoke", "sharing-demo") for o in render(w, placement, "img:1") if o["kind"] == "Job"]
    assert len(jobs) == 2
    for job in jobs:
        (spec,) = pod_specs(job)
        assert spec["terminationGracePeriodSeconds"] == CHECKPOINT_GRACE_SECONDS


def test_katib_trials_get_the_checkpoint_grace() -> None:
    for gpu in (False, True):
        (spec,) = pod_specs(katib.render_experiment(load_space(), image="img:1", gpu=gpu))
        assert spec["terminationGracePeriodSeconds"] == CHECKPOINT_GRACE_SECONDS


def test_grace_fits_inside_the_eks_handlers_node_deadline() -> None:
    # The handler gives up on a node after NODE_TERMINATION_GRACE_SECONDS; pods must finish first.
    assert 0 < CHECKPOINT_GRACE_SECONDS < NODE_TERMINATION_GRACE_SECONDS
