"""Where workloads run: a stack's outputs, or embedded engines on this machine.

A :class:`Target` answers the few questions every workload asks: where is MLflow, where do
artifacts go, where is Kubeflow Pipelines, which tolerations reach the GPU pools. It is built in
one of three ways:

* ``local`` (the default): embedded engines. KFP's local runner, MLflow tracking and registry on
  SQLite, artifacts in a directory, all under a project-local state directory (``.mlp/`` in the
  current directory, or ``$MLP_HOME``). Setting ``MLP_S3_ENDPOINT`` and ``MLP_S3_BUCKET`` sends
  artifacts to any S3-compatible store instead (credentials from the usual ``AWS_*`` variables).
* ``<stack>``: the outputs of a deployed Pulumi stack, read with
  ``pulumi stack output --json --show-secrets --stack <stack>``.
* an outputs file: the same JSON saved to a file, for CI and for users without the Pulumi CLI.

Output keys come from ``stacks.outputs`` only; a missing or malformed output raises
:class:`TargetError` naming the key.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    Secret,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from stacks import outputs as keys

LOCAL = "local"
HOME_ENV = "MLP_HOME"
S3_ENDPOINT_ENV = "MLP_S3_ENDPOINT"
S3_BUCKET_ENV = "MLP_S3_BUCKET"
TARGET_ENV = "MLP_TARGET"
OUTPUTS_FILE_ENV = "MLP_OUTPUTS_FILE"
PULUMI_TIMEOUT_S = 120
WHOLE_GPU_RESOURCE = "nvidia.com/gpu"
"""The extended resource of a whole NVIDIA GPU: what a pod requests when a pool exports no other.

The workloads' only spelling of it (the components' is ``components.clusters.base.GPU_RESOURCE``;
a test keeps the two equal, since the layers may not import each other).
"""
_SECRET_PLACEHOLDER = "[secret]"


class TargetError(RuntimeError):
    """The target could not be resolved: missing CLI, unreadable or invalid outputs, missing key."""


# ---------------------------------------------------------------------------------------------
# Typed view of the stack outputs


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore")


class Toleration(_Strict):
    """A Kubernetes toleration, as the stack exports it (camelCase keys)."""

    key: str | None = None
    operator: Literal["Equal", "Exists"] = "Equal"
    value: str | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None
    toleration_seconds: int | None = Field(default=None, alias="tolerationSeconds")

    def to_k8s(self) -> dict[str, Any]:
        """The toleration as a Kubernetes manifest fragment (unset fields left out)."""
        return self.model_dump(by_alias=True, exclude_none=True)


class Taint(_Strict):
    """A node taint of a GPU pool."""

    key: str
    value: str | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"]


class GpuPool(_Strict):
    """One GPU node pool of the stack."""

    name: str
    gpu_model: str | None = Field(default=None, alias="gpuModel")
    gpu_count: int = Field(alias="gpuCount", ge=0)
    labels: dict[str, str] = Field(default_factory=dict)
    taints: list[Taint] = Field(default_factory=list)
    min_count: int = Field(default=0, alias="minCount", ge=0)
    max_count: int = Field(default=1, alias="maxCount", ge=0)
    spot: bool = False
    sharing: Literal["none", "time-slicing", "mps", "mig"] = "none"
    resource_name: str = Field(default=WHOLE_GPU_RESOURCE, alias="resourceName", min_length=1)
    shares_per_gpu: int = Field(default=1, alias="sharesPerGpu", ge=1)
    node_selector: dict[str, str] = Field(default_factory=dict, alias="nodeSelector")


def _url(value: str | None) -> str | None:
    if value is not None and "://" not in value:
        raise ValueError(f"expected a URL with a scheme (http://, https://, ...), got {value!r}")
    return value


class StackOutputs(_Strict):
    """The outputs of a deployed stack, keyed by the contract in ``stacks.outputs``.

    Only ``target`` is required: a stack exports what its configuration enabled, and a workload
    asks for what it needs with :meth:`require`, which names the missing key.
    """

    target: Literal["dev", "aks", "eks"] = Field(alias=keys.TARGET)
    cluster_name: str | None = Field(default=None, alias=keys.CLUSTER_NAME)
    kubernetes_version: str | None = Field(default=None, alias=keys.KUBERNETES_VERSION)
    kubeconfig: SecretStr | None = Field(default=None, alias=keys.KUBECONFIG)
    storage_class: str | None = Field(default=None, alias=keys.STORAGE_CLASS)
    gpu_pools: list[GpuPool] = Field(default_factory=list, alias=keys.GPU_POOLS)
    gpu_tolerations: list[Toleration] = Field(default_factory=list, alias=keys.GPU_TOLERATIONS)
    kfp_endpoint: str | None = Field(default=None, alias=keys.KFP_ENDPOINT)
    mlflow_tracking_uri: str | None = Field(default=None, alias=keys.MLFLOW_TRACKING_URI)
    mlflow_artifacts_uri: str | None = Field(default=None, alias=keys.MLFLOW_ARTIFACTS_URI)
    s3_endpoint: str | None = Field(default=None, alias=keys.S3_ENDPOINT)
    s3_bucket: str | None = Field(default=None, alias=keys.S3_BUCKET)
    s3_access_key_id: str | None = Field(default=None, alias=keys.S3_ACCESS_KEY_ID)
    s3_secret_access_key: SecretStr | None = Field(default=None, alias=keys.S3_SECRET_ACCESS_KEY)
    katib_namespace: str | None = Field(default=None, alias=keys.KATIB_NAMESPACE)
    kserve_namespace: str | None = Field(default=None, alias=keys.KSERVE_NAMESPACE)
    kserve_deployment_mode: Literal["Serverless", "RawDeployment"] | None = Field(
        default=None, alias=keys.KSERVE_DEPLOYMENT_MODE
    )
    kserve_url_template: str | None = Field(default=None, alias=keys.KSERVE_URL_TEMPLATE)
    kserve_internal_url_template: str | None = Field(default=None, alias=keys.KSERVE_INTERNAL_URL_TEMPLATE)
    kserve_service_account: str | None = Field(default=None, alias=keys.KSERVE_SERVICE_ACCOUNT)
    kserve_autoscaler_class: str | None = Field(default=None, alias=keys.KSERVE_AUTOSCALER_CLASS)
    kserve_scale_to_zero: bool | None = Field(default=None, alias=keys.KSERVE_SCALE_TO_ZERO)
    s3_service_credentials: Secret[dict[str, Any]] | None = Field(
        default=None, alias=keys.S3_SERVICE_CREDENTIALS
    )
    prometheus_url: str | None = Field(default=None, alias=keys.PROMETHEUS_URL)
    grafana_url: str | None = Field(default=None, alias=keys.GRAFANA_URL)
    grafana_admin_password: SecretStr | None = Field(default=None, alias=keys.GRAFANA_ADMIN_PASSWORD)
    qdrant_url: str | None = Field(default=None, alias=keys.QDRANT_URL)
    qdrant_api_key: SecretStr | None = Field(default=None, alias=keys.QDRANT_API_KEY)
    qdrant_snapshots_uri: str | None = Field(default=None, alias=keys.QDRANT_SNAPSHOTS_URI)
    milvus_uri: str | None = Field(default=None, alias=keys.MILVUS_URI)
    milvus_token: SecretStr | None = Field(default=None, alias=keys.MILVUS_TOKEN)
    mlflow_tracking_username: str | None = Field(default=None, alias=keys.MLFLOW_TRACKING_USERNAME)
    mlflow_tracking_password: SecretStr | None = Field(default=None, alias=keys.MLFLOW_TRACKING_PASSWORD)
    dataset_webhook_url: str | None = Field(default=None, alias=keys.DATASET_WEBHOOK_URL)
    datasets_bucket: str | None = Field(default=None, alias=keys.DATASETS_BUCKET)
    workload_image: str | None = Field(default=None, alias=keys.WORKLOAD_IMAGE)

    @model_validator(mode="before")
    @classmethod
    def _reject_masked_secrets(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            raise ValueError(f"stack outputs must be a JSON object, got {type(data).__name__}")
        masked = sorted(k for k, v in data.items() if v == _SECRET_PLACEHOLDER)
        if masked:
            raise ValueError(
                f"outputs {masked} are masked as '[secret]': export them with "
                "`pulumi stack output --json --show-secrets`"
            )
        if isinstance(data.get(keys.KUBECONFIG), dict):
            data = {**data, keys.KUBECONFIG: json.dumps(data[keys.KUBECONFIG])}
        return data

    @field_validator(
        "kfp_endpoint",
        "mlflow_tracking_uri",
        "s3_endpoint",
        "prometheus_url",
        "grafana_url",
        "qdrant_url",
        "qdrant_snapshots_uri",
        "dataset_webhook_url",
    )
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        return _url(value)

    def require(self, key: str) -> Any:
        """The value of output ``key`` (a ``stacks.outputs`` constant).

        Raises:
            TargetError: When the stack does not export it.
        """
        field_name = _FIELD_BY_KEY.get(key)
        if field_name is None:
            raise TargetError(f"{key!r} is not an output key of the contract (stacks/outputs.py)")
        value = getattr(self, field_name)
        if value is None or value == []:
            raise TargetError(
                f"stack output {key!r} is missing: the '{self.target}' stack does not export it "
                "(enable the add-on that provides it, or add it to the outputs file)"
            )
        return value.get_secret_value() if isinstance(value, SecretStr) else value


_FIELD_BY_KEY = {info.alias: name for name, info in StackOutputs.model_fields.items() if info.alias}


def parse_outputs(raw: Any, source: str = "stack outputs") -> StackOutputs:
    """Validate raw outputs (the JSON object ``pulumi stack output --json`` prints).

    Raises:
        TargetError: Naming each bad key and what is wrong with it.
    """
    try:
        return StackOutputs.model_validate(raw)
    except ValidationError as error:
        problems = []
        for item in error.errors():
            location = _location(item["loc"])
            message = str(item["msg"]).removeprefix("Value error, ")
            if not location:
                problems.append(message)
            elif item["type"] == "missing":
                problems.append(f"output {location!r} is missing")
            elif item["type"] == "value_error":
                problems.append(f"output {location!r}: {message}")
            else:
                problems.append(f"output {location!r}: {message} (got {_short(item.get('input'))})")
        raise TargetError(f"invalid {source}:\n  - " + "\n  - ".join(problems)) from None


def _location(parts: tuple[int | str, ...]) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class OutputsFileError(TargetError):
    """The outputs file given is unusable (missing, unreadable, not a JSON object, invalid outputs): bad input."""


def read_outputs_file(path: str | Path, *, drop_masked: bool = False) -> StackOutputs:
    """Read outputs saved with ``pulumi stack output --json --show-secrets > file``.

    Read with :mod:`stacks.files` (UTF-8, or UTF-16 as Windows PowerShell writes it).

    Args:
        path: The file.
        drop_masked: Leave out values masked as ``[secret]`` (saved without ``--show-secrets``)
            instead of refusing them: for commands that only render objects and need no secret.

    Raises:
        OutputsFileError: Naming the file and what is wrong with it.
    """
    from stacks.files import InputFileError, load_json

    path = Path(path)
    try:
        raw = load_json(path, what="outputs file")
        if drop_masked and isinstance(raw, dict):
            raw = {key: value for key, value in raw.items() if value != _SECRET_PLACEHOLDER}
        return parse_outputs(raw, source=f"outputs file {path}")
    except InputFileError as error:
        problem = error.problem.removeprefix("outputs file ")
        raise OutputsFileError(
            f"outputs file {path} {problem}" + (f"; {error.fix}" if error.fix else "")
        ) from None
    except TargetError as error:
        raise OutputsFileError(str(error)) from None


Runner = Callable[..., subprocess.CompletedProcess[str]]


def read_stack_outputs(stack: str, runner: Runner = subprocess.run) -> StackOutputs:
    """Read a deployed stack's outputs with the Pulumi CLI.

    Args:
        stack: Stack name (``dev``, ``aks``, ``eks`` or a fully qualified ``org/project/stack``).
        runner: ``subprocess.run`` or a stand-in for tests.

    Raises:
        TargetError: When the CLI is missing or fails, or the outputs are invalid.
    """
    if runner is subprocess.run and shutil.which("pulumi") is None:
        raise TargetError(
            "the pulumi CLI is not on PATH, so stack outputs cannot be read. Install it, or save the "
            f"outputs elsewhere with `pulumi stack output --json --show-secrets --stack {stack} > outputs.json` "
            "and pass --outputs-file outputs.json"
        )
    command = ["pulumi", "stack", "output", "--json", "--show-secrets", "--stack", stack]
    try:
        done = runner(command, capture_output=True, text=True, timeout=PULUMI_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise TargetError(f"`{' '.join(command)}` failed: {error}") from None
    if done.returncode != 0:
        raise TargetError(
            f"`{' '.join(command)}` exited {done.returncode}: {(done.stderr or done.stdout).strip()[:500]}"
        )
    try:
        raw = json.loads(done.stdout)
    except json.JSONDecodeError as error:
        raise TargetError(f"`{' '.join(command)}` printed invalid JSON: {error}") from None
    return parse_outputs(raw, source=f"outputs of stack {stack!r}")


# ---------------------------------------------------------------------------------------------
# The target


def default_home() -> Path:
    """Local state directory: ``$MLP_HOME``, else ``.mlp`` in the current directory."""
    return Path(os.environ.get(HOME_ENV) or Path.cwd() / ".mlp").resolve()


@dataclass(frozen=True)
class Target:
    """Where a workload runs.

    Attributes:
        name: ``local`` or the stack name (or the outputs file for file-based targets).
        home: Local state directory (MLflow DB, artifacts, KFP local outputs, checkpoints).
        outputs: Stack outputs; None for the local target.
        s3_endpoint: S3 endpoint for a local target that keeps artifacts in object storage.
        s3_bucket: Bucket for the above.
    """

    name: str
    home: Path
    outputs: StackOutputs | None = None
    s3_endpoint: str | None = None
    s3_bucket: str | None = None

    @property
    def is_local(self) -> bool:
        """True for embedded engines."""
        return self.outputs is None

    @property
    def mlflow_tracking_uri(self) -> str:
        """MLflow tracking (and registry) URI."""
        if self.outputs is None:
            return f"sqlite:///{self.home / 'mlflow.db'}"
        uri: str = self.outputs.require(keys.MLFLOW_TRACKING_URI)
        return uri

    @property
    def artifact_location(self) -> str:
        """Artifact root for new MLflow experiments; empty on clusters, where the server decides."""
        if self.outputs is not None:
            return ""
        if self.s3_bucket:
            return f"s3://{self.s3_bucket}/mlflow"
        return (self.home / "mlartifacts").as_uri()

    @property
    def kfp_host(self) -> str:
        """Kubeflow Pipelines API endpoint of a cluster target."""
        if self.outputs is None:
            raise TargetError(
                "the local target has no Kubeflow Pipelines endpoint; it runs pipelines with kfp.local"
            )
        host: str = self.outputs.require(keys.KFP_ENDPOINT)
        return host

    @property
    def pipeline_root(self) -> Path:
        """Where kfp.local writes task outputs (local target)."""
        return self.home / "kfp"

    @property
    def checkpoint_root(self) -> str:
        """Durable checkpoint location: a local directory, or an S3 prefix on clusters."""
        if self.outputs is None:
            return f"s3://{self.s3_bucket}/checkpoints" if self.s3_bucket else str(self.home / "checkpoints")
        bucket = self.outputs.require(keys.S3_BUCKET)
        return f"s3://{bucket}/checkpoints"

    @property
    def gpu_tolerations(self) -> list[dict[str, Any]]:
        """Tolerations a pod needs to land on the GPU pools (empty without GPU pools)."""
        if self.outputs is None or not self.outputs.gpu_pools:
            return []
        return [t.to_k8s() for t in self.outputs.gpu_tolerations]

    @property
    def has_gpu(self) -> bool:
        """Whether the stack has at least one GPU pool."""
        return bool(self.outputs and self.outputs.gpu_pools)

    def s3_environment(self) -> dict[str, str]:
        """Environment variables that point boto3 and MLflow at the target's object storage.

        On a stack with MLflow basic auth, MLflow's user and password are included too.
        """
        if self.outputs is None:
            if not self.s3_endpoint:
                return {}
            return {"AWS_ENDPOINT_URL": self.s3_endpoint, "MLFLOW_S3_ENDPOINT_URL": self.s3_endpoint}
        env: dict[str, str] = {}
        if self.outputs.s3_endpoint:
            env["AWS_ENDPOINT_URL"] = env["MLFLOW_S3_ENDPOINT_URL"] = self.outputs.s3_endpoint
        if self.outputs.s3_access_key_id:
            env["AWS_ACCESS_KEY_ID"] = self.outputs.s3_access_key_id
        if self.outputs.s3_secret_access_key:
            env["AWS_SECRET_ACCESS_KEY"] = self.outputs.s3_secret_access_key.get_secret_value()
        if self.outputs.mlflow_tracking_username:
            env["MLFLOW_TRACKING_USERNAME"] = self.outputs.mlflow_tracking_username
        if self.outputs.mlflow_tracking_password:
            env["MLFLOW_TRACKING_PASSWORD"] = self.outputs.mlflow_tracking_password.get_secret_value()
        return env

    def prepare(self) -> Target:
        """Create the local state directories and export the S3 environment; returns self.

        Raises:
            TargetError: When the local MLflow database is damaged (cut short, not a database).
        """
        if self.is_local:
            from stacks.files import sqlite_problem

            database = self.home / "mlflow.db"
            problem = sqlite_problem(database)
            if problem:
                raise TargetError(
                    f"the local MLflow database {database} is damaged ({problem}): move it aside, "
                    "or start from empty local state with `mlp demo --reset`"
                )
            for path in (self.home, self.home / "mlartifacts", self.pipeline_root):
                path.mkdir(parents=True, exist_ok=True)
        os.environ.update(self.s3_environment())
        return self

    def describe(self) -> dict[str, Any]:
        """Plain-data summary (no secrets) for logs and ``--json`` output."""
        return {
            "name": self.name,
            "kind": "local" if self.is_local else "cluster",
            "home": str(self.home),
            "mlflow_tracking_uri": self.mlflow_tracking_uri,
            "artifact_location": self.artifact_location,
            "gpu_tolerations": self.gpu_tolerations,
        }


def load_target(
    name: str = LOCAL,
    *,
    outputs_file: str | Path | None = None,
    home: str | Path | None = None,
    runner: Runner = subprocess.run,
) -> Target:
    """Resolve a target by name.

    Args:
        name: ``local`` for embedded engines, otherwise a Pulumi stack name.
        outputs_file: Read outputs from this JSON file instead of the Pulumi CLI.
        home: Local state directory (default :func:`default_home`).
        runner: Runs the Pulumi CLI (tests pass a stand-in).

    Raises:
        TargetError: When outputs cannot be read or are invalid.
    """
    state = Path(home).resolve() if home else default_home()
    if outputs_file:
        return Target(name=str(outputs_file), home=state, outputs=read_outputs_file(outputs_file))
    if name == LOCAL:
        endpoint = os.environ.get(S3_ENDPOINT_ENV) or None
        bucket = os.environ.get(S3_BUCKET_ENV) or None
        if bool(endpoint) != bool(bucket):
            raise TargetError(f"set both {S3_ENDPOINT_ENV} and {S3_BUCKET_ENV}, or neither")
        return Target(name=LOCAL, home=state, s3_endpoint=endpoint, s3_bucket=bucket)
    return Target(name=name, home=state, outputs=read_stack_outputs(name, runner=runner))
