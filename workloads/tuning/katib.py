"""Render a search space as a Katib ``Experiment`` (kubeflow.org/v1beta1), as plain data.

The Katib Python SDK is not used: it pins an old protobuf that clashes with kfp and kserve.
Instead the manifest is built as a dict here and checked by :func:`validate_experiment`
(the rules Katib's admission webhook enforces that a schema cannot express); the tests also
validate it against Katib's published OpenAPI schema.

Each trial is a ``batch/v1`` Job running the pipeline's train step
(``python -m workloads.pipelines.train_cli --cv-folds N``), which prints ``name=value`` lines
for Katib's stdout metrics collector.
"""

from __future__ import annotations

import re
from typing import Any

from workloads.pipelines.interrupt import CHECKPOINT_GRACE_SECONDS
from workloads.target import WHOLE_GPU_RESOURCE
from workloads.tuning.space import Parameter, SearchSpace

API_VERSION = "kubeflow.org/v1beta1"
KIND = "Experiment"
PRIMARY_CONTAINER = "training-container"
KATIB_ALGORITHMS = {"random": "random", "tpe": "tpe", "grid": "grid"}
"""Search-space algorithm -> Katib ``algorithmName``."""
_DNS_1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_PLACEHOLDER = re.compile(r"\$\{trialParameters\.([^}]+)\}")


def _number(value: float, integer: bool) -> str:
    # Positional notation: "1e-06" is a float to Kubernetes' YAML parser but a plain string to
    # PyYAML, which would then leave it unquoted; "0.000001" is quoted by both.
    if integer:
        return str(int(value))
    text = f"{float(value):.12f}".rstrip("0").rstrip(".")
    return text or "0"


def _parameter(parameter: Parameter) -> dict[str, Any]:
    if parameter.type == "categorical":
        return {
            "name": parameter.name,
            "parameterType": "categorical",
            "feasibleSpace": {"list": [str(v) for v in parameter.values or []]},
        }
    integer = parameter.type == "int"
    assert parameter.min is not None and parameter.max is not None  # guaranteed by Parameter
    space: dict[str, Any] = {"min": _number(parameter.min, integer), "max": _number(parameter.max, integer)}
    if parameter.step is not None:
        space["step"] = _number(parameter.step, integer)
    space["distribution"] = "logUniform" if parameter.log else "uniform"
    return {"name": parameter.name, "parameterType": parameter.type, "feasibleSpace": space}


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def render_experiment(
    space: SearchSpace,
    *,
    image: str,
    namespace: str = "kubeflow",
    name: str | None = None,
    tolerations: list[dict[str, Any]] | None = None,
    node_selector: dict[str, str] | None = None,
    gpu: bool = False,
    cpu: str = "500m",
    memory: str = "512Mi",
) -> dict[str, Any]:
    """Build the Katib ``Experiment`` for a search space.

    Args:
        space: The search space.
        image: Image of the trial container (this project's workload image).
        namespace: Namespace of the experiment (the stack's Katib namespace).
        name: Experiment name; default the space's name.
        tolerations: Pod tolerations (the stack's GPU tolerations when it has GPU pools).
        node_selector: Pod node selector.
        gpu: Request one ``nvidia.com/gpu`` per trial.
        cpu: CPU request per trial.
        memory: Memory request and limit per trial.

    Returns:
        The manifest as plain data, ready for ``yaml.safe_dump`` or a Kubernetes client.
    """
    command = ["python", "-m", "workloads.pipelines.train_cli", f"--cv-folds={space.cv_folds}"]
    command += [f"{_flag(k)}={v}" for k, v in sorted(space.fixed.items())]
    command += [f"{_flag(p.name)}=${{trialParameters.{p.name}}}" for p in space.parameters]
    resources: dict[str, Any] = {"requests": {"cpu": cpu, "memory": memory}, "limits": {"memory": memory}}
    if gpu:
        resources["limits"][WHOLE_GPU_RESOURCE] = 1
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        # train_cli checkpoints and exits 143 on SIGTERM (a drained spot node); give it time to.
        "terminationGracePeriodSeconds": CHECKPOINT_GRACE_SECONDS,
        "containers": [
            {"name": PRIMARY_CONTAINER, "image": image, "command": command, "resources": resources}
        ],
    }
    if tolerations:
        pod_spec["tolerations"] = tolerations
    if node_selector:
        pod_spec["nodeSelector"] = node_selector
    objective: dict[str, Any] = {
        "type": space.objective.direction,
        "objectiveMetricName": space.objective.metric,
    }
    if space.objective.goal is not None:
        objective["goal"] = space.objective.goal
    if space.objective.additional_metrics:
        objective["additionalMetricNames"] = list(space.objective.additional_metrics)
    algorithm: dict[str, Any] = {"algorithmName": KATIB_ALGORITHMS[space.algorithm]}
    if space.algorithm in ("random", "tpe"):
        algorithm["algorithmSettings"] = [{"name": "random_state", "value": str(space.seed)}]
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {
            "name": name or space.name,
            "namespace": namespace,
            "labels": {"app.kubernetes.io/part-of": "mlplatform", "mlplatform/search-space": space.name},
        },
        "spec": {
            "objective": objective,
            "algorithm": algorithm,
            "parallelTrialCount": space.budget.parallel_trials,
            "maxTrialCount": space.budget.max_trials,
            "maxFailedTrialCount": space.budget.max_failed_trials,
            "metricsCollectorSpec": {"collector": {"kind": "StdOut"}},
            "parameters": [_parameter(p) for p in space.parameters],
            "trialTemplate": {
                "primaryContainerName": PRIMARY_CONTAINER,
                "successCondition": 'status.conditions.#(type=="Complete")#|#(status=="True")#',
                "failureCondition": 'status.conditions.#(type=="Failed")#|#(status=="True")#',
                "trialParameters": [
                    {"name": p.name, "reference": p.name, "description": f"train hyperparameter {p.name}"}
                    for p in space.parameters
                ],
                "trialSpec": {
                    "apiVersion": "batch/v1",
                    "kind": "Job",
                    "spec": {
                        "backoffLimit": 0,
                        "template": {
                            "metadata": {"annotations": {"sidecar.istio.io/inject": "false"}},
                            "spec": pod_spec,
                        },
                    },
                },
            },
        },
    }


def _strings(obj: Any) -> list[str]:
    if isinstance(obj, str):
        return [obj]
    if isinstance(obj, dict):
        return [s for value in obj.values() for s in _strings(value)]
    if isinstance(obj, list):
        return [s for value in obj for s in _strings(value)]
    return []


def _as_float(text: Any) -> float | None:
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def validate_experiment(manifest: dict[str, Any]) -> list[str]:
    """Check an ``Experiment`` against the rules Katib enforces beyond its schema.

    Returns:
        Every problem found (empty when valid).
    """
    errors: list[str] = []
    if manifest.get("apiVersion") != API_VERSION:
        errors.append(f"apiVersion must be {API_VERSION}")
    if manifest.get("kind") != KIND:
        errors.append(f"kind must be {KIND}")
    name = manifest.get("metadata", {}).get("name", "")
    if not _DNS_1123.match(str(name)) or len(str(name)) > 63:
        errors.append(f"metadata.name {name!r} is not a DNS-1123 label")
    spec = manifest.get("spec", {})
    objective = spec.get("objective", {})
    if objective.get("type") not in ("maximize", "minimize"):
        errors.append("spec.objective.type must be maximize or minimize")
    if not objective.get("objectiveMetricName"):
        errors.append("spec.objective.objectiveMetricName is required")
    if spec.get("algorithm", {}).get("algorithmName") not in set(KATIB_ALGORITHMS.values()):
        errors.append(f"spec.algorithm.algorithmName must be one of {sorted(set(KATIB_ALGORITHMS.values()))}")
    counts = {k: spec.get(k) for k in ("parallelTrialCount", "maxTrialCount", "maxFailedTrialCount")}
    for key, value in counts.items():
        if not isinstance(value, int) or value < 0:
            errors.append(f"spec.{key} must be a non-negative integer")
    if isinstance(counts["parallelTrialCount"], int) and isinstance(counts["maxTrialCount"], int):
        if counts["parallelTrialCount"] > counts["maxTrialCount"]:
            errors.append("spec.parallelTrialCount must not exceed spec.maxTrialCount")
    parameters = spec.get("parameters", [])
    names = [p.get("name") for p in parameters]
    if not parameters:
        errors.append("spec.parameters must not be empty")
    if len(set(names)) != len(names):
        errors.append("spec.parameters names must be unique")
    for index, parameter in enumerate(parameters):
        where = f"spec.parameters[{index}]"
        kind = parameter.get("parameterType")
        feasible = parameter.get("feasibleSpace", {})
        if kind not in ("double", "int", "discrete", "categorical"):
            errors.append(f"{where}.parameterType {kind!r} is not double, int, discrete or categorical")
        elif kind in ("categorical", "discrete"):
            if not feasible.get("list"):
                errors.append(f"{where}.feasibleSpace.list must not be empty for {kind}")
        else:
            if not all(isinstance(feasible.get(k), str) for k in ("min", "max")):
                errors.append(f"{where}.feasibleSpace min and max must be strings (Katib's schema)")
            low, high = _as_float(feasible.get("min")), _as_float(feasible.get("max"))
            if low is None or high is None:
                errors.append(f"{where}.feasibleSpace needs numeric min and max strings")
            elif low >= high:
                errors.append(f"{where}.feasibleSpace.min must be below max")
            elif feasible.get("distribution") in ("logUniform", "logNormal") and low <= 0:
                errors.append(f"{where}.feasibleSpace.min must be > 0 for a log distribution")
            if kind == "int" and any(
                "." in str(feasible.get(k, "")) or "e" in str(feasible.get(k, "")).lower()
                for k in ("min", "max")
            ):
                errors.append(f"{where}.feasibleSpace min/max must be integers for int")
    template = spec.get("trialTemplate", {})
    declared = [p.get("name") for p in template.get("trialParameters", [])]
    for p in template.get("trialParameters", []):
        if p.get("reference") not in names:
            errors.append(
                f"trialParameter {p.get('name')!r} references unknown parameter {p.get('reference')!r}"
            )
    trial_spec = template.get("trialSpec")
    if not isinstance(trial_spec, dict):
        errors.append("spec.trialTemplate.trialSpec is required")
        return errors
    used = {m for s in _strings(trial_spec) for m in _PLACEHOLDER.findall(s)}
    for missing in sorted(used - set(declared)):
        errors.append(f"trialSpec uses ${{trialParameters.{missing}}} but it is not declared")
    for unused in sorted(set(declared) - used):
        errors.append(f"trialParameter {unused!r} is declared but never used in trialSpec")
    pod = trial_spec.get("spec", {}).get("template", {}).get("spec", {})
    containers = [c.get("name") for c in pod.get("containers", [])]
    if template.get("primaryContainerName") not in containers:
        errors.append(
            f"primaryContainerName {template.get('primaryContainerName')!r} is not a container of the trial "
            f"({containers})"
        )
    if trial_spec.get("kind") == "Job" and pod.get("restartPolicy") not in ("Never", "OnFailure"):
        errors.append("a Job trial's pod needs restartPolicy Never or OnFailure")
    return errors
