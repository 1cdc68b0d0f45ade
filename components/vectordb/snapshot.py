"""Scheduled Qdrant snapshots to object storage: the job's CronJob, as plain data.

Nothing here declares resources; :class:`components.vectordb.qdrant.Qdrant` wires this into a
``batch/v1`` CronJob. The job runs the program ``workloads/vectordb_snapshot.py`` from the workload
image (``IMAGES["workloads"]``): nothing is installed at run time and no script travels in a
ConfigMap. Keeping the manifest pure lets tests validate the CronJob without Pulumi and run the very
command it runs against a fake Qdrant and an S3 server.

Credentials reach the job only through ``secretKeyRef`` env entries.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from components.security import pod_security
from components.storage import COMMON_LABELS, ContainerResources, S3Access
from components.versions import IMAGES, ImagePin

SNAPSHOT_MODULE = "workloads.vectordb_snapshot"
"""The Python module the job runs (``python -m``); it ships in the workload image."""
WORK_DIR = "/work"
RUN_AS_USER = 65532
"""A non-root uid with no entry in the image; the job needs no home beyond its work volume."""


@dataclass(frozen=True)
class SecretRef:
    """A key in a Kubernetes Secret."""

    name: str
    key: str

    def env(self, var: str) -> dict[str, Any]:
        """An env entry that reads this key (``valueFrom.secretKeyRef``)."""
        return {"name": var, "valueFrom": {"secretKeyRef": {"name": self.name, "key": self.key}}}


@dataclass(frozen=True)
class SnapshotJobSpec:
    """Everything the snapshot CronJob needs, as plain values.

    Attributes:
        name: CronJob name.
        namespace: Namespace of Qdrant, the Secrets and the job.
        schedule: Cron schedule (``minute hour day month weekday``), evaluated in UTC.
        peer_urls: Base URL of every Qdrant peer, in pod-ordinal order.
        api_key: Secret key holding the Qdrant API key.
        s3: Object store access (endpoint and credential Secret).
        bucket: Destination bucket.
        prefix: Key prefix of this Qdrant instance's runs.
        retention_days: Runs older than this are deleted (the newest complete run is kept).
        work_size_gi: Scratch space for one snapshot file at a time.
        image: The workload image, which carries the snapshot program.
        resources: Container resources.
        labels: Extra labels on the CronJob and its pods.

    """

    name: str
    namespace: str
    schedule: str
    peer_urls: tuple[str, ...]
    api_key: SecretRef
    s3: S3Access
    bucket: str
    prefix: str
    retention_days: int = 7
    work_size_gi: int = 10
    image: ImagePin = field(default_factory=lambda: IMAGES["workloads"])
    resources: ContainerResources = field(default_factory=ContainerResources)
    labels: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        problems = validate_schedule(self.schedule)
        if problems:
            raise ValueError(f"invalid snapshot schedule {self.schedule!r}: {problems}")
        if not self.peer_urls:
            raise ValueError("peer_urls must name at least one Qdrant peer")
        if self.retention_days < 1:
            raise ValueError(f"retention_days must be at least 1, got {self.retention_days}")


_CRON_FIELDS = (
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day of month", 1, 31),
    ("month", 1, 12),
    ("day of week", 0, 7),
)
_CRON_MACROS = {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}


def validate_schedule(schedule: str) -> str:
    """Check a five-field cron expression (numbers, ``*``, ranges, lists, steps) or a macro.

    Returns:
        An empty string when valid, else what is wrong.

    """
    text = schedule.strip()
    if text in _CRON_MACROS:
        return ""
    parts = text.split()
    if len(parts) != len(_CRON_FIELDS):
        return f"expected 5 fields (minute hour day month weekday), got {len(parts)}"
    for part, (label, low, high) in zip(parts, _CRON_FIELDS, strict=True):
        for item in part.split(","):
            base, _, step = item.partition("/")
            if step and (not step.isdigit() or int(step) == 0):
                return f"{label}: bad step in {item!r}"
            if base == "*":
                continue
            bounds = base.split("-")
            if len(bounds) > 2 or not all(b.isdigit() for b in bounds):
                return f"{label}: {item!r} is not a number, range or '*'"
            values = [int(b) for b in bounds]
            if any(v < low or v > high for v in values) or values != sorted(values):
                return f"{label}: {item!r} is outside {low}-{high}"
    return ""


def peer_urls(fullname: str, replicas: int, port: int = 6333) -> tuple[str, ...]:
    """Base URLs of every pod of a Qdrant StatefulSet, reachable from its own namespace.

    The chart's StatefulSet uses the ``<fullname>-headless`` Service, so pod ``i`` resolves as
    ``<fullname>-<i>.<fullname>-headless`` through the namespace's DNS search path.
    """
    return tuple(f"http://{fullname}-{i}.{fullname}-headless:{port}" for i in range(replicas))


def job_environment(spec: SnapshotJobSpec) -> list[dict[str, Any]]:
    """Env entries of the job container: settings as values, credentials only as secretKeyRef."""
    return [
        {"name": "QDRANT_URLS", "value": ",".join(spec.peer_urls)},
        spec.api_key.env("QDRANT_API_KEY"),
        {"name": "S3_ENDPOINT", "value": spec.s3.endpoint},
        {"name": "S3_BUCKET", "value": spec.bucket},
        {"name": "S3_PREFIX", "value": spec.prefix},
        *spec.s3.env("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"),
        {"name": "RETENTION_DAYS", "value": str(spec.retention_days)},
        {"name": "WORK_DIR", "value": f"{WORK_DIR}/snapshots"},
        {"name": "HOME", "value": WORK_DIR},
        {"name": "PYTHONUNBUFFERED", "value": "1"},
        {"name": "PYTHONDONTWRITEBYTECODE", "value": "1"},
        {"name": "AWS_EC2_METADATA_DISABLED", "value": "true"},
    ]


def job_command() -> list[str]:
    """The job's command: the snapshot program of the workload image."""
    return ["python", "-m", SNAPSHOT_MODULE]


def cronjob_manifest(spec: SnapshotJobSpec) -> dict[str, Any]:
    """The ``batch/v1`` CronJob: one run at a time, restricted pod security, bounded resources."""
    labels = _labels(spec)
    container = {
        "name": "snapshot",
        "image": spec.image.ref,
        "imagePullPolicy": "IfNotPresent",
        "command": job_command(),
        "env": job_environment(spec),
        "resources": spec.resources.to_k8s(),
        "volumeMounts": [{"name": "work", "mountPath": WORK_DIR}],
    }
    pod_spec = job_pod_spec(
        container,
        [{"name": "work", "emptyDir": {"sizeLimit": f"{spec.work_size_gi}Gi"}}],
        restart="OnFailure",
    )
    return scheduled_cronjob(spec.name, spec.namespace, spec.schedule, labels, pod_spec)


def job_pod_spec(container: dict[str, Any], volumes: list[dict[str, Any]], *, restart: str) -> dict[str, Any]:
    """The pod spec of a backup job: one hardened container, restricted pod security, no API token.

    The container runs as :data:`RUN_AS_USER` with no privilege escalation, no capabilities and a
    read-only root filesystem (it writes only to its volumes); the pod gets no service-account
    token and the ``RuntimeDefault`` seccomp profile.

    Args:
        container: The container, without ``securityContext`` (this function sets it).
        volumes: The pod's volumes.
        restart: The pod's ``restartPolicy`` (``OnFailure`` for schedules, ``Never`` for one-off jobs).

    Returns:
        A fresh pod spec.

    """
    hardened = {
        **container,
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
        },
    }
    return {
        "restartPolicy": restart,
        "automountServiceAccountToken": False,
        "securityContext": {
            **pod_security(run_as_user=RUN_AS_USER, fs_group=RUN_AS_USER),
            "runAsGroup": RUN_AS_USER,
        },
        "containers": [hardened],
        "volumes": volumes,
    }


def scheduled_cronjob(
    name: str, namespace: str, schedule: str, labels: dict[str, str], pod_spec: dict[str, Any]
) -> dict[str, Any]:
    """A ``batch/v1`` CronJob with the platform's backup-job policy around ``pod_spec``.

    One run at a time, schedule in UTC, a missed run started within the hour, two retries, a
    six-hour deadline, finished Jobs kept a week and the last three of each outcome listed.
    """
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            "schedule": schedule,
            "timeZone": "Etc/UTC",
            "concurrencyPolicy": "Forbid",
            "startingDeadlineSeconds": 3600,
            "successfulJobsHistoryLimit": 3,
            "failedJobsHistoryLimit": 3,
            "jobTemplate": {
                "metadata": {"labels": labels},
                "spec": {
                    "backoffLimit": 2,
                    "activeDeadlineSeconds": 6 * 3600,
                    "ttlSecondsAfterFinished": 7 * 24 * 3600,
                    "template": {"metadata": {"labels": labels}, "spec": pod_spec},
                },
            },
        },
    }


def _labels(spec: SnapshotJobSpec) -> dict[str, str]:
    return {**COMMON_LABELS, "app.kubernetes.io/component": "vectordb-snapshots", **spec.labels}
