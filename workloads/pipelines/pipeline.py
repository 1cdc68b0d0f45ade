"""The training pipeline: preprocess -> train -> evaluate -> register.

One definition runs in two places:

* the local target, with ``kfp.local`` (subprocess runner, the current environment, no per-step
  ``pip install``; the step's image is not used there);
* a stack's Kubeflow Pipelines, compiled to IR YAML and submitted with ``kfp.Client``; the train
  step gets the stack's GPU tolerations (when it has GPU pools) and retries, and resumes from its
  checkpoint in object storage when a spot node takes it down.

The register step never comes from the cache: a cached register would report a version that was
registered by another run, or none at all.

No ``from __future__ import annotations`` here: KFP reads the pipeline's annotations as types.
"""

import contextlib
import io
import os
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from kfp import dsl

from stacks import outputs as keys
from workloads import registry
from workloads.pipelines import components
from workloads.pipelines.model import TrainParams
from workloads.target import WHOLE_GPU_RESOURCE, Target

PIPELINE_NAME = "mlp-training"
DEFAULT_PACKAGE_PATH = Path("build") / "pipeline" / "training-pipeline.yaml"
IMAGE_ENV = "MLP_WORKLOAD_IMAGE"
S3_SECRET_DEFAULT = "mlpipeline-minio-artifact"
"""Secret with the object-store credentials in the KFP namespace (KFP's own manifests create it)."""
S3_SECRET_KEYS = {"accesskey": "AWS_ACCESS_KEY_ID", "secretkey": "AWS_SECRET_ACCESS_KEY"}
MLFLOW_SECRET_DEFAULT = "mlflow-tracking-credentials"
"""Secret with the MLflow basic-auth user in the KFP namespace (the platform layer declares it)."""
MLFLOW_SECRET_KEYS = {"username": "MLFLOW_TRACKING_USERNAME", "password": "MLFLOW_TRACKING_PASSWORD"}
S3_STEPS = ("preprocess", "train", "register")
"""Steps that read or write object storage: a dataset, checkpoints, MLflow's artifacts."""
STEP_NAMES = ("preprocess", "train", "evaluate", "register")
_DEFAULTS = TrainParams()


LOCAL_IMAGE = "mlplatform-workloads:local"
"""Image name given to steps on the local target, where ``kfp.local`` runs them in-process."""


def workload_image(target: Target | None = None) -> str:
    """Image the pipeline steps run in on a cluster: this project with its dependencies.

    ``$MLP_WORKLOAD_IMAGE`` overrides it; otherwise a stack target's ``workloadImage`` output
    (pinned in ``components/versions.py``), else :data:`LOCAL_IMAGE` (unused by ``kfp.local``).
    """
    override = os.environ.get(IMAGE_ENV)
    if override:
        return override
    if target is not None and target.outputs is not None:
        image: str = target.outputs.require(keys.WORKLOAD_IMAGE)
        return image
    return LOCAL_IMAGE


@dataclass(frozen=True)
class ClusterPlacement:
    """How the steps are placed and wired on a cluster (ignored by kfp.local).

    Attributes:
        tolerations: Tolerations for the train step (the stack's GPU tolerations).
        node_selector: Node labels the train step must run on (empty = any node it tolerates).
        gpu: Request one GPU (``gpu_resource``) for the train step.
        gpu_resource: Extended resource the train step requests: the pool's ``resourceName``
            (``nvidia.com/mig-1g.10gb`` on a MIG ``mixed`` pool).
        retries: Retries of the train step; each resumes from the last checkpoint.
        s3_endpoint: Object-store endpoint for checkpoints and MLflow artifacts.
        s3_secret: Kubernetes secret holding the object-store credentials.
        mlflow_secret: Kubernetes secret holding the MLflow user (the register step's env).
    """

    tolerations: list[dict[str, Any]] = field(default_factory=list)
    node_selector: dict[str, str] = field(default_factory=dict)
    gpu: bool = False
    gpu_resource: str = WHOLE_GPU_RESOURCE
    retries: int = 3
    s3_endpoint: str | None = None
    s3_secret: str | None = S3_SECRET_DEFAULT
    mlflow_secret: str | None = MLFLOW_SECRET_DEFAULT

    @classmethod
    def for_target(
        cls, target: Target, gpu: bool = False, s3_secret: str | None = S3_SECRET_DEFAULT
    ) -> "ClusterPlacement":
        """Placement from a stack's outputs: GPU tolerations when it has GPU pools."""
        node_selector: dict[str, str] = {}
        resource = WHOLE_GPU_RESOURCE
        if gpu and target.outputs is not None and target.outputs.gpu_pools:
            node_selector = dict(target.outputs.gpu_pools[0].labels)
            resource = target.outputs.gpu_pools[0].resource_name
        return cls(
            tolerations=target.gpu_tolerations,
            node_selector=node_selector,
            gpu=gpu,
            gpu_resource=resource,
            s3_endpoint=target.outputs.s3_endpoint if target.outputs else None,
            s3_secret=s3_secret,
        )


def _apply_placement(tasks: dict[str, Any], placement: ClusterPlacement) -> None:
    try:
        from kfp import kubernetes
    except ImportError as error:  # pragma: no cover - exercised only without kfp-kubernetes
        raise ImportError(
            "compiling for a cluster needs the kfp-kubernetes package (pip install 'kfp-kubernetes>=2.17,<2.18')"
        ) from error
    train = tasks["train"]
    for toleration in placement.tolerations:
        kubernetes.add_toleration(
            train,
            key=toleration.get("key"),
            operator=toleration.get("operator"),
            value=toleration.get("value"),
            effect=toleration.get("effect"),
            toleration_seconds=toleration.get("tolerationSeconds"),
        )
    for label, value in placement.node_selector.items():
        kubernetes.add_node_selector(train, label_key=label, label_value=value)
    if placement.gpu:
        train.set_accelerator_type(placement.gpu_resource).set_accelerator_limit(1)
    if placement.retries:
        train.set_retry(num_retries=placement.retries, backoff_duration="30s", backoff_factor=2.0)
    if placement.mlflow_secret:
        kubernetes.use_secret_as_env(
            tasks["register"], secret_name=placement.mlflow_secret, secret_key_to_env=MLFLOW_SECRET_KEYS
        )
    for name in S3_STEPS:
        if placement.s3_endpoint:
            tasks[name].set_env_variable("AWS_ENDPOINT_URL", placement.s3_endpoint)
            tasks[name].set_env_variable("MLFLOW_S3_ENDPOINT_URL", placement.s3_endpoint)
        if placement.s3_secret:
            kubernetes.use_secret_as_env(
                tasks[name], secret_name=placement.s3_secret, secret_key_to_env=S3_SECRET_KEYS
            )


class PipelineOutputs(NamedTuple):
    """What a pipeline run returns (the register step's outputs)."""

    model_version: str
    aliases: str
    mlflow_run_id: str
    promoted: bool
    decision: str
    pipeline_run_id: str
    pipeline_run_name: str


def build_pipeline(image: str | None = None, placement: ClusterPlacement | None = None) -> Any:
    """Build the pipeline for an image and (on clusters) a placement.

    Args:
        image: Image of every step; default :func:`workload_image`.
        placement: Cluster placement; None for the local target.

    Returns:
        The KFP pipeline (a ``GraphComponent``): call it under ``kfp.local`` or compile it.
    """
    image = image or workload_image()

    def component(func: Any) -> Any:
        # The image already holds kfp and this project: no pip install at step start.
        return dsl.component(func, base_image=image, install_kfp_package=False)

    preprocess_op = component(components.preprocess)
    train_op = component(components.train)
    evaluate_op = component(components.evaluate)
    register_op = component(components.register)

    # kfp is not type-followed: give its decorator a type so the pipeline function keeps its own.
    as_pipeline: Callable[[Callable[..., Any]], Any] = dsl.pipeline(
        name=PIPELINE_NAME,
        description="Breast-cancer classifier: validated data, checkpointed training, quality gate, "
        "MLflow registration with champion/challenger aliases.",
    )

    @as_pipeline
    def training_pipeline(
        mlflow_tracking_uri: str,
        checkpoint_root: str,
        mlflow_artifact_location: str = "",
        dataset_uri: str = "",
        mlflow_experiment: str = registry.TRAINING_EXPERIMENT,
        model_name: str = registry.DEFAULT_MODEL_NAME,
        test_size: float = 0.2,
        split_seed: int = 42,
        alpha: float = _DEFAULTS.alpha,
        l1_ratio: float = _DEFAULTS.l1_ratio,
        loss: str = _DEFAULTS.loss,
        epochs: int = _DEFAULTS.epochs,
        seed: int = _DEFAULTS.seed,
        checkpoint_every: int = _DEFAULTS.checkpoint_every,
        gate_metric: str = "roc_auc",
        gate_threshold: float = 0.95,
        git_commit: str = "unknown",
        tuning_run_id: str = "",
    ) -> PipelineOutputs:
        preprocess = preprocess_op(
            test_size=test_size, seed=split_seed, dataset_uri=dataset_uri
        ).set_display_name("preprocess")
        train = train_op(
            train_data=preprocess.outputs["train_data"],
            data_hash=preprocess.outputs["data_hash"],
            alpha=alpha,
            l1_ratio=l1_ratio,
            loss=loss,
            epochs=epochs,
            seed=seed,
            checkpoint_every=checkpoint_every,
            checkpoint_root=checkpoint_root,
        ).set_display_name("train")
        evaluate = evaluate_op(
            model=train.outputs["model"],
            test_data=preprocess.outputs["test_data"],
            gate_metric=gate_metric,
            gate_threshold=gate_threshold,
        ).set_display_name("evaluate")
        register = register_op(
            model=train.outputs["model"],
            test_data=preprocess.outputs["test_data"],
            data_hash=preprocess.outputs["data_hash"],
            metrics_json=evaluate.outputs["metrics_json"],
            history_json=train.outputs["history_json"],
            resumed_from=train.outputs["resumed_from"],
            gate_passed=evaluate.outputs["passed"],
            gate_metric=gate_metric,
            gate_threshold=gate_threshold,
            test_size=test_size,
            split_seed=split_seed,
            alpha=alpha,
            l1_ratio=l1_ratio,
            loss=loss,
            epochs=epochs,
            seed=seed,
            tracking_uri=mlflow_tracking_uri,
            experiment=mlflow_experiment,
            artifact_location=mlflow_artifact_location,
            model_name=model_name,
            pipeline_run_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER,
            pipeline_run_name=dsl.PIPELINE_JOB_NAME_PLACEHOLDER,
            git_commit=git_commit,
            tuning_run_id=tuning_run_id,
        ).set_display_name("register")
        register.set_caching_options(False)
        if placement is not None:
            _apply_placement({"preprocess": preprocess, "train": train, "register": register}, placement)
        return PipelineOutputs(
            model_version=register.outputs["model_version"],
            aliases=register.outputs["aliases"],
            mlflow_run_id=register.outputs["mlflow_run_id"],
            promoted=register.outputs["promoted"],
            decision=register.outputs["decision"],
            pipeline_run_id=register.outputs["pipeline_run_id"],
            pipeline_run_name=register.outputs["pipeline_run_name"],
        )

    return training_pipeline


def compile_pipeline(
    package_path: str | Path = DEFAULT_PACKAGE_PATH,
    image: str | None = None,
    placement: ClusterPlacement | None = None,
) -> Path:
    """Compile the pipeline to IR YAML (creating the parent directory)."""
    from kfp import compiler

    path = Path(package_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    compiler.Compiler().compile(build_pipeline(image, placement), package_path=str(path))
    return path


TRAIN_PARAM_NAMES = ("alpha", "l1_ratio", "loss", "epochs", "seed", "checkpoint_every")
PIPELINE_PARAM_NAMES = (
    *TRAIN_PARAM_NAMES,
    "test_size",
    "split_seed",
    "gate_metric",
    "gate_threshold",
    "model_name",
    "mlflow_experiment",
    "tuning_run_id",
    "dataset_uri",
)


def parse_param(name: str, text: str) -> Any:
    """Convert a ``--param name=value`` string to the pipeline parameter's type.

    Raises:
        ValueError: For an unknown parameter or a value of the wrong type.
    """
    kinds: dict[str, type] = {
        "alpha": float,
        "l1_ratio": float,
        "epochs": int,
        "seed": int,
        "checkpoint_every": int,
        "test_size": float,
        "split_seed": int,
        "gate_threshold": float,
    }
    if name not in PIPELINE_PARAM_NAMES:
        raise ValueError(f"unknown pipeline parameter {name!r}; known: {sorted(PIPELINE_PARAM_NAMES)}")
    kind = kinds.get(name, str)
    try:
        return kind(text)
    except ValueError:
        raise ValueError(f"parameter {name!r} needs a {kind.__name__}, got {text!r}") from None


def arguments_for(target: Target, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Pipeline arguments for a target.

    Its MLflow, artifact and checkpoint locations and the git commit, plus ``overrides``
    (hyperparameters, gate, names).

    Raises:
        ValueError: For an override that is not a pipeline parameter.
    """
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - set(PIPELINE_PARAM_NAMES))
    if unknown:
        raise ValueError(f"unknown pipeline parameters {unknown}; known: {sorted(PIPELINE_PARAM_NAMES)}")
    if any(k in overrides for k in TRAIN_PARAM_NAMES):
        # Fail here, not in the train step, on out-of-range hyperparameters.
        TrainParams(**{k: v for k, v in overrides.items() if k in TRAIN_PARAM_NAMES})
    return {
        "mlflow_tracking_uri": target.mlflow_tracking_uri,
        "mlflow_artifact_location": target.artifact_location,
        "checkpoint_root": target.checkpoint_root,
        "git_commit": registry.git_commit(),
        **overrides,
    }


def dataset_uri(target: Target, key: str) -> str:
    """``s3://<datasets bucket>/<key>``: a dataset object of the stack, for the preprocess step.

    Raises:
        ValueError: For an empty or absolute key, or a local target (it has no datasets bucket).
        TargetError: When the stack exports no ``datasetsBucket``.
    """
    key = key.strip()
    if not key or key.startswith("/") or "://" in key:
        raise ValueError(
            f"dataset key {key!r} must be an object key inside the datasets bucket, e.g. new/data.csv"
        )
    if target.is_local or target.outputs is None:
        raise ValueError("a dataset key names an object in a stack's datasets bucket; use a stack target")
    bucket = target.outputs.require(keys.DATASETS_BUCKET)
    return f"s3://{bucket}/{key}"


@dataclass
class LocalRun:
    """Result of :func:`run_local`.

    Attributes:
        outputs: The register step's outputs.
        seconds: Wall time of the whole run.
        step_seconds: Wall time of each step, from the runner's log (0 for a cache hit).
        cached_steps: Steps whose outputs came from the cache.
        log: Captured output of the steps.
    """

    outputs: PipelineOutputs
    seconds: float
    step_seconds: dict[str, float]
    cached_steps: list[str]
    log: str


StepEvent = Callable[[str, str], None]
"""Called with ``(step, event)``; event is ``started``, ``finished`` or ``cached``."""


class PipelineRunError(RuntimeError):
    """A local pipeline run failed; ``log_path`` holds the steps' output."""

    def __init__(self, message: str, log_path: Path) -> None:
        super().__init__(f"{message} (steps' output: {log_path})")
        self.log_path = log_path


class SubmitError(RuntimeError):
    """The stack's Kubeflow Pipelines endpoint could not be reached or refused the run."""


class _StepClock:
    """Times each step from kfp.local's own 'Executing task' / 'finished' log lines."""

    def __init__(self, on_event: StepEvent | None = None) -> None:
        self.on_event = on_event
        self.started: dict[str, float] = {}
        self.seconds: dict[str, float] = {}
        self.cached: set[str] = set()

    def feed(self, line: str) -> None:
        for name in STEP_NAMES:
            if f"'{name}'" not in line and f"task {name} " not in line.lower():
                continue
            event = None
            if "Executing task" in line:
                self.started[name] = time.perf_counter()
                event = "started"
            elif "cache hit" in line.lower():
                self.seconds[name] = 0.0
                self.cached.add(name)
                event = "cached"
            elif "finished with status" in line and name in self.started:
                self.seconds[name] = round(time.perf_counter() - self.started[name], 3)
                event = "finished"
            if event and self.on_event is not None:
                self.on_event(name, event)


class _Tee(io.TextIOBase):
    def __init__(self, clock: _StepClock, echo: Any | None) -> None:
        self.buffer_text = io.StringIO()
        self.clock = clock
        self.echo = echo
        self._pending = ""

    def write(self, text: str) -> int:  # noqa: D102
        self.buffer_text.write(text)
        if self.echo is not None:
            self.echo.write(text)
        self._pending += text
        *lines, self._pending = self._pending.split("\n")
        for line in lines:
            self.clock.feed(line)
        return len(text)


@contextlib.contextmanager
def _capture(clock: _StepClock, echo: Any | None) -> Iterator[_Tee]:
    import logging

    tee = _Tee(clock, echo)
    handler = logging.StreamHandler(tee)
    root = logging.getLogger()
    root.addHandler(handler)
    old_level = root.level
    root.setLevel(logging.INFO)
    try:
        with contextlib.redirect_stdout(tee), contextlib.redirect_stderr(tee), warnings.catch_warnings():
            # kfp.local warns that the (cluster) image is not a python image; locally it is unused.
            warnings.filterwarnings("ignore", message=".*non-Python base image.*")
            yield tee
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)


def run_local(
    target: Target,
    overrides: dict[str, Any] | None = None,
    *,
    caching: bool = True,
    echo: Any | None = None,
    on_step: StepEvent | None = None,
) -> LocalRun:
    """Run the pipeline on the local target with ``kfp.local``.

    Args:
        target: A local target (its home holds the KFP outputs, cache and checkpoints).
        overrides: Pipeline parameters to override (see :data:`PIPELINE_PARAM_NAMES`).
        caching: Reuse cached step outputs when inputs match (the register step never is).
        echo: Stream to copy the steps' output to (None keeps it quiet).
        on_step: Called when a step starts, finishes or comes from the cache (progress display).

    Returns:
        The register step's outputs and per-step timings.

    Raises:
        PipelineRunError: When a step fails; its message names the log with the steps' output.
    """
    from kfp import local

    if not target.is_local:
        raise ValueError(f"run_local needs the local target, got {target.name!r}; use submit()")
    target.prepare()
    arguments = arguments_for(target, overrides)
    root = target.pipeline_root
    local.init(
        runner=local.SubprocessRunner(use_venv=False),
        pipeline_root=str(root / "runs"),
        workspace_root=str(root / "workspace"),
        raise_on_error=True,
        enable_caching=caching,
        cache_root=str(root / "cache"),
    )
    (root / "workspace").mkdir(parents=True, exist_ok=True)
    clock = _StepClock(on_step)
    started = time.perf_counter()
    log_path = root / "last-run.log"
    with _capture(clock, echo) as tee:
        try:
            task = build_pipeline()(**arguments)
        except RuntimeError as error:
            log_path.write_text(tee.buffer_text.getvalue())
            raise PipelineRunError(str(error), log_path) from error
    log_path.write_text(tee.buffer_text.getvalue())
    seconds = time.perf_counter() - started
    raw = task.outputs
    outputs = PipelineOutputs(**{name: raw[name] for name in PipelineOutputs._fields})
    return LocalRun(
        outputs=outputs,
        seconds=seconds,
        step_seconds=clock.seconds,
        cached_steps=sorted(clock.cached),
        log=tee.buffer_text.getvalue(),
    )


def submit(
    target: Target,
    overrides: dict[str, Any] | None = None,
    *,
    package_path: str | Path = DEFAULT_PACKAGE_PATH,
    gpu: bool = False,
    s3_secret: str | None = S3_SECRET_DEFAULT,
    experiment_name: str = PIPELINE_NAME,
    run_name: str | None = None,
    wait_timeout_s: int | None = None,
) -> dict[str, Any]:
    """Compile for a stack and submit to its Kubeflow Pipelines endpoint.

    Args:
        target: A cluster target (stack outputs with ``kfpEndpoint``).
        overrides: Pipeline parameters to override.
        package_path: Where the compiled IR YAML is written.
        gpu: Request a GPU for the train step (it gets the GPU tolerations either way).
        s3_secret: Secret with object-store credentials in the KFP namespace.
        experiment_name: KFP experiment.
        run_name: KFP run name (default: pipeline name and a short id).
        wait_timeout_s: Wait this long for the run to finish; None returns right after submitting.

    Returns:
        ``run_id``, ``run_url``, ``package_path`` and, when waited for, ``state``.

    Raises:
        SubmitError: When the endpoint cannot be reached or rejects the run.
    """
    import kfp

    host = target.kfp_host
    placement = ClusterPlacement.for_target(target, gpu=gpu, s3_secret=s3_secret)
    path = compile_pipeline(package_path, image=workload_image(target), placement=placement)
    arguments = arguments_for(target, overrides)
    try:
        client = kfp.Client(host=host)
        run = client.create_run_from_pipeline_package(
            str(path),
            arguments=arguments,
            run_name=run_name or f"{PIPELINE_NAME}-{uuid.uuid4().hex[:8]}",
            experiment_name=experiment_name,
            enable_caching=True,
        )
    except Exception as error:  # noqa: BLE001 - urllib3, kfp_server_api and auth errors share no base
        raise SubmitError(
            f"could not submit to Kubeflow Pipelines at {host}: {type(error).__name__}: {error}. "
            "If the endpoint is in-cluster, port-forward it and pass an outputs file with the forwarded URL."
        ) from error
    result: dict[str, Any] = {
        "run_id": run.run_id,
        "run_url": f"{host.rstrip('/')}/#/runs/details/{run.run_id}",
        "package_path": str(path),
    }
    if wait_timeout_s:
        done = client.wait_for_run_completion(run.run_id, timeout=wait_timeout_s)
        result["state"] = str(getattr(done, "state", ""))
    return result
