"""Object storage for the platform: MinIO from its official chart, with generated root credentials.

The root user and password come from ``pulumi_random`` and live in one Kubernetes Secret that the
chart reads through ``existingSecret``; the Helm values never carry a credential. Consumers in the
same namespace (Milvus, the Qdrant snapshot job) reference that Secret with ``secretKeyRef`` via
:class:`S3Access`, so the password is never copied into another manifest either.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from components.helm import pinned_release
from components.metrics import service_monitor
from components.outputs import secret as secret_output
from components.security import (
    container_security,
    namespace_policies,
    platform_namespace_labels,
    pod_security,
)
from components.versions import CHARTS

MINIO_API_PORT = 9000
MINIO_UID = 1000
"""Non-root uid/gid the MinIO chart runs the server and its setup jobs as."""
MINIO_SETUP_JOBS = ("makePolicyJob", "makeUserJob", "makeBucketJob")
"""The chart's post-install job containers the platform uses (policies, users, buckets)."""
ROOT_USER_KEY = "rootUser"
"""Key of the access key id in the credentials Secret (the name the MinIO chart expects)."""
ROOT_PASSWORD_KEY = "rootPassword"
"""Key of the secret access key in the credentials Secret (the name the MinIO chart expects)."""


COMMON_LABELS = {"app.kubernetes.io/part-of": "mlplatform", "app.kubernetes.io/managed-by": "pulumi"}


def instance_labels(component: str, instance: str) -> dict[str, str]:
    """The common labels plus the ``component`` and ``instance`` of one data service's objects."""
    return {**COMMON_LABELS, "app.kubernetes.io/component": component, "app.kubernetes.io/instance": instance}


@dataclass(frozen=True)
class ContainerResources:
    """Requests and limits of one container.

    Memory has a limit (an over-eager process is killed, not the node); CPU has none, so bursts
    use idle cores instead of being throttled.
    """

    cpu_request: str = "100m"
    memory_request: str = "256Mi"
    memory_limit: str = "512Mi"

    def to_k8s(self) -> dict[str, dict[str, str]]:
        """The ``resources`` block of a container spec."""
        return {
            "requests": {"cpu": self.cpu_request, "memory": self.memory_request},
            "limits": {"memory": self.memory_limit},
        }


@dataclass(frozen=True)
class S3Access:
    """How a workload in the storage namespace reaches the object store.

    Every field is a plain, deterministic string, so consumers can put them in manifests and Helm
    values without ever touching the credential values.

    Attributes:
        endpoint: In-namespace endpoint URL, e.g. ``http://minio:9000``.
        host: Service host name (no scheme, no port), e.g. ``minio``.
        port: API port.
        secret_name: Kubernetes Secret that holds the credentials.
        access_key_key: Key of the access key id in that Secret.
        secret_key_key: Key of the secret access key in that Secret.
        use_ssl: Whether the endpoint speaks TLS.

    """

    endpoint: str
    host: str
    port: int
    secret_name: str
    access_key_key: str = ROOT_USER_KEY
    secret_key_key: str = ROOT_PASSWORD_KEY
    use_ssl: bool = False

    def env(self, access_key_var: str, secret_key_var: str) -> list[dict[str, Any]]:
        """Container env entries that read the credentials from the Secret (never inline)."""
        return [
            {
                "name": access_key_var,
                "valueFrom": {"secretKeyRef": {"name": self.secret_name, "key": self.access_key_key}},
            },
            {
                "name": secret_key_var,
                "valueFrom": {"secretKeyRef": {"name": self.secret_name, "key": self.secret_key_key}},
            },
        ]


USER_SECRET_KEY = "secretKey"
"""Key of a service user's secret key in its Secret (the chart reads it via ``existingSecretKey``)."""
USER_ACCESS_KEY = "accessKey"
"""Key of a service user's access key id in its Secret (for consumers; MinIO reads it from values)."""


@dataclass(frozen=True)
class ServiceUser:
    """A MinIO user for one service, with read-write access to its buckets only.

    Attributes:
        name: Service name (``mlflow``, ``kfp``...); the access key is ``mlp-<name>``.
        buckets: Buckets the user may read and write.

    """

    name: str
    buckets: tuple[str, ...]

    def __post_init__(self) -> None:
        if not self.name.replace("-", "").isalnum() or self.name != self.name.lower():
            raise ValueError(f"service user name {self.name!r} must be lowercase letters, digits and '-'")
        if not self.buckets:
            raise ValueError(f"service user {self.name!r} needs at least one bucket")

    @property
    def access_key(self) -> str:
        """The user's access key id (not a secret; the secret key is generated)."""
        return f"mlp-{self.name}"

    @property
    def policy_name(self) -> str:
        """Name of the MinIO policy attached to the user."""
        return f"mlp-{self.name}-rw"


def user_policy(user: ServiceUser) -> dict[str, Any]:
    """The MinIO chart's ``policies`` entry giving ``user`` read-write access to its buckets only."""
    return {
        "name": user.policy_name,
        "statements": [
            {
                "effect": "Allow",
                "resources": [f"arn:aws:s3:::{bucket}" for bucket in user.buckets],
                "actions": [
                    "s3:GetBucketLocation",
                    "s3:ListBucket",
                    "s3:ListBucketMultipartUploads",
                    "s3:ListenBucketNotification",
                ],
            },
            {
                "effect": "Allow",
                "resources": [f"arn:aws:s3:::{bucket}/*" for bucket in user.buckets],
                "actions": [
                    "s3:AbortMultipartUpload",
                    "s3:DeleteObject",
                    "s3:GetObject",
                    "s3:ListMultipartUploadParts",
                    "s3:PutObject",
                ],
            },
        ],
    }


def _user_string_data(access_key: str) -> Callable[[str], dict[str, str]]:
    """The user Secret's ``stringData`` from its generated password (access key bound now)."""
    return lambda pw: {USER_ACCESS_KEY: access_key, USER_SECRET_KEY: pw}


def user_secret_name(fullname: str, user: ServiceUser) -> str:
    """Name of the Secret (in MinIO's namespace) holding ``user``'s keys."""
    return f"{fullname}-user-{user.name}"


def user_access(fullname: str, user: ServiceUser) -> S3Access:
    """How a workload in MinIO's namespace uses ``user``'s credentials."""
    return dataclasses.replace(
        s3_access(fullname),
        secret_name=user_secret_name(fullname, user),
        access_key_key=USER_ACCESS_KEY,
        secret_key_key=USER_SECRET_KEY,
    )


@dataclass(frozen=True)
class ServiceCredentials:
    """One service user's credentials, as the component exposes them.

    Attributes:
        access_key_id: The access key id (plain).
        secret_access_key: The generated secret key (a Pulumi secret).
        access: How a pod in MinIO's namespace reads them from the user's Secret.
        buckets: The buckets the user may read and write.

    """

    access_key_id: str
    secret_access_key: pulumi.Output[str]
    access: S3Access
    buckets: tuple[str, ...]


@dataclass(frozen=True)
class ObjectStorageArgs:
    """Settings of the platform's object store.

    Attributes:
        namespace: Namespace of MinIO (and of the data services that share its Secret).
        storage_class: Storage class of the data volume (the cluster's default class).
        storage_size_gi: Size of the data volume in GiB.
        buckets: Buckets created at install.
        versioned_buckets: Buckets (a subset of ``buckets``) with object versioning on.
        users: One MinIO user per service, each limited to its own buckets.
        service_monitor: Declare a ServiceMonitor for MinIO's metrics (needs the Prometheus
            Operator CRDs); the metrics endpoint is then readable without a token, in-cluster only.
        create_namespace: Create the namespace (False when it already exists).
        resources: MinIO server container resources.

    """

    namespace: str
    storage_class: str
    storage_size_gi: int = 20
    buckets: tuple[str, ...] = ()
    versioned_buckets: tuple[str, ...] = ()
    users: tuple[ServiceUser, ...] = ()
    service_monitor: bool = False
    create_namespace: bool = True
    resources: ContainerResources = field(
        default_factory=lambda: ContainerResources(
            cpu_request="100m", memory_request="512Mi", memory_limit="2Gi"
        )
    )

    def __post_init__(self) -> None:
        if self.storage_size_gi < 1:
            raise ValueError(f"storage_size_gi must be at least 1, got {self.storage_size_gi}")
        if len(set(self.buckets)) != len(self.buckets):
            raise ValueError(f"bucket names repeat: {list(self.buckets)}")
        unknown = sorted(set(self.versioned_buckets) - set(self.buckets))
        if unknown:
            raise ValueError(f"versioned buckets {unknown} are not among the buckets {list(self.buckets)}")
        names = [user.name for user in self.users]
        if len(set(names)) != len(names):
            raise ValueError(f"service user names repeat: {names}")
        for user in self.users:
            missing = sorted(set(user.buckets) - set(self.buckets))
            if missing:
                raise ValueError(f"user {user.name!r} is given buckets {missing} that are not created")


def s3_access(fullname: str) -> S3Access:
    """The :class:`S3Access` of a MinIO release whose full name is ``fullname``."""
    return S3Access(
        endpoint=f"http://{fullname}:{MINIO_API_PORT}",
        host=fullname,
        port=MINIO_API_PORT,
        secret_name=credentials_secret_name(fullname),
    )


def credentials_secret_name(fullname: str) -> str:
    """Name of the Kubernetes Secret with the root credentials of release ``fullname``."""
    return f"{fullname}-root-credentials"


def minio_values(args: ObjectStorageArgs, *, fullname: str, secret_name: str) -> dict[str, Any]:
    """Helm values of the MinIO chart: standalone, credentials from ``secret_name`` only.

    Args:
        args: The object store's settings.
        fullname: Name of every chart object (``fullnameOverride``), so the Service name is known.
        secret_name: Secret with ``rootUser`` and ``rootPassword``.

    Returns:
        Values with no credential in them: the chart's default ``users`` list (a ``console`` user
        with a well-known password) is replaced by the service users, whose secret keys the
        chart's user job reads from their Secrets (``existingSecret``).

    """
    return {
        "fullnameOverride": fullname,
        "mode": "standalone",
        "replicas": 1,
        "existingSecret": secret_name,
        "users": [
            {
                "accessKey": user.access_key,
                "existingSecret": user_secret_name(fullname, user),
                "existingSecretKey": USER_SECRET_KEY,
                "policy": user.policy_name,
            }
            for user in args.users
        ],
        "policies": [user_policy(user) for user in args.users],
        "svcaccts": [],
        "buckets": [
            {"name": name, "policy": "none", "purge": False, "versioning": name in args.versioned_buckets}
            for name in args.buckets
        ],
        "metrics": {"serviceMonitor": {"enabled": False, "public": args.service_monitor}},
        "persistence": {
            "enabled": True,
            "storageClass": args.storage_class,
            "accessMode": "ReadWriteOnce",
            "size": f"{args.storage_size_gi}Gi",
        },
        "resources": args.resources.to_k8s(),
        # Pod-level: the chart's uid/gid 1000 plus non-root and seccomp. The server keeps a
        # writable root (it writes its config and certs dirs); the mc setup jobs get a read-only
        # one (the chart mounts emptyDirs at /etc/minio/mc and /tmp for them).
        "securityContext": {"enabled": True, **pod_security(run_as_user=MINIO_UID, fs_group=MINIO_UID)},
        "containerSecurityContext": container_security(read_only_root=False, run_as_user=MINIO_UID),
        "postJob": {
            "securityContext": {"enabled": True, **pod_security(run_as_user=MINIO_UID, fs_group=MINIO_UID)}
        },
        **{
            job: {
                "securityContext": {"enabled": True},
                "containerSecurityContext": container_security(run_as_user=MINIO_UID),
                "resources": ContainerResources(memory_request="64Mi", memory_limit="256Mi").to_k8s(),
            }
            for job in MINIO_SETUP_JOBS
        },
        "service": {"type": "ClusterIP", "port": str(MINIO_API_PORT)},
        "consoleService": {"type": "ClusterIP"},
    }


class ObjectStorage(pulumi.ComponentResource):
    """MinIO for the platform, with generated root credentials kept in a Kubernetes Secret.

    Attributes:
        namespace: The namespace MinIO runs in (resolves after the namespace exists).
        endpoint: In-cluster S3 endpoint, ``http://<name>.<namespace>.svc:9000``.
        access_key_id: Root access key id.
        secret_access_key: Root secret access key (secret).
        credentials_secret_name: Name of the Secret holding both.
        buckets: The buckets created at install.
        access: How workloads in the same namespace reference the root credentials.
        users: Per-service credentials by service name (see :class:`ServiceUser`).

    """

    def __init__(
        self, name: str, args: ObjectStorageArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlplatform:storage:ObjectStorage", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.access = s3_access(name)
        labels = instance_labels("object-storage", name)

        if args.create_namespace:
            ns = k8s.core.v1.Namespace(
                f"{name}-namespace",
                metadata={
                    "name": args.namespace,
                    "labels": platform_namespace_labels(args.namespace, COMMON_LABELS),
                },
                opts=child,
            )
            namespace_policies(name, args.namespace, parent=self, depends_on=ns)
            self.namespace: pulumi.Output[str] = ns.metadata.apply(lambda m: m.name)
        else:
            self.namespace = pulumi.Output.from_input(args.namespace)

        root_user = random.RandomString(
            f"{name}-root-user", length=16, special=False, upper=False, opts=child
        )
        password = random.RandomPassword(f"{name}-root-password", length=32, special=False, opts=child)
        self.access_key_id: pulumi.Output[str] = root_user.result
        self.secret_access_key: pulumi.Output[str] = pulumi.Output.secret(password.result)

        secret = k8s.core.v1.Secret(
            f"{name}-root-credentials",
            metadata={"name": self.access.secret_name, "namespace": self.namespace, "labels": labels},
            type="Opaque",
            string_data=secret_output(
                pulumi.Output.all(root_user.result, password.result).apply(
                    lambda pair: {ROOT_USER_KEY: pair[0], ROOT_PASSWORD_KEY: pair[1]}
                )
            ),
            opts=child,
        )
        self.credentials_secret_name: pulumi.Output[str] = secret.metadata.apply(lambda m: m.name)

        self.users: dict[str, ServiceCredentials] = {}
        user_secrets: list[pulumi.Resource] = [secret]
        for user in args.users:
            user_password = random.RandomPassword(
                f"{name}-user-{user.name}-password", length=32, special=False, opts=child
            )
            user_secrets.append(
                k8s.core.v1.Secret(
                    f"{name}-user-{user.name}",
                    metadata={
                        "name": user_secret_name(name, user),
                        "namespace": self.namespace,
                        "labels": labels,
                    },
                    type="Opaque",
                    string_data=secret_output(user_password.result.apply(_user_string_data(user.access_key))),
                    opts=child,
                )
            )
            self.users[user.name] = ServiceCredentials(
                access_key_id=user.access_key,
                secret_access_key=pulumi.Output.secret(user_password.result),
                access=user_access(name, user),
                buckets=user.buckets,
            )

        self.release = pinned_release(
            f"{name}-release",
            CHARTS["minio"],
            release_name=name,
            namespace=self.namespace,
            values=minio_values(args, fullname=name, secret_name=self.access.secret_name),
            opts=pulumi.ResourceOptions(parent=self, depends_on=user_secrets),
        )
        if args.service_monitor:
            # MinIO's cluster metrics, selected by the chart's Service labels.
            service_monitor(
                f"{name}-metrics",
                namespace=self.namespace,
                selector={"app": "minio", "release": name, "monitoring": "true"},
                port="http",
                path="/minio/v2/metrics/cluster",
                labels=labels,
                opts=pulumi.ResourceOptions(parent=self, depends_on=[self.release]),
            )
        self.endpoint: pulumi.Output[str] = pulumi.Output.concat(
            "http://", name, ".", self.namespace, ".svc:", str(MINIO_API_PORT)
        )
        self.buckets: list[str] = list(args.buckets)
        self.register_outputs(
            {
                "namespace": self.namespace,
                "endpoint": self.endpoint,
                "access_key_id": self.access_key_id,
                "secret_access_key": self.secret_access_key,
                "credentials_secret_name": self.credentials_secret_name,
                "buckets": self.buckets,
                "users": sorted(self.users),
            }
        )
