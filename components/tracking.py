"""Experiment tracking and model registry: an MLflow server with a PostgreSQL backend store.

* PostgreSQL runs in the cluster as a one-replica StatefulSet of the official image (see
  ``adr/`` "MLflow backend store"): every object is declared here, so the offline plan renders and
  validates all of it. Its user and password are generated and kept in one Secret that both
  Postgres and MLflow read with ``secretKeyRef``; two databases are created at first start, the
  tracking store and the basic-auth user store.
* MLflow comes from the community chart pinned in :mod:`components.versions`, with the image tag
  overridden to the MLflow version the workloads use. The backend URI is ``postgresql://`` and the
  connection comes from libpq's ``PG*`` variables (host/port/database in the chart's ConfigMap,
  user/password from the Secret), so no credential is in the Helm values.
* Artifacts go to MinIO through the server's artifact proxy (``--serve-artifacts`` with an
  ``s3://`` destination): clients talk to MLflow only and never hold object-store keys. The server
  uses its own MinIO user (a Secret in this namespace), not the root credentials.
* Basic auth is on; the admin user and password are generated and exported as secrets.
* The Service is ClusterIP: nothing is exposed outside the cluster.
* ``--expose-prometheus`` turns on the server's Prometheus exporter; a ServiceMonitor scrapes it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final, cast

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from components.helm import pinned_release
from components.metrics import service_monitor
from components.security import IngressAllow, container_security, pod_security, service_namespace
from components.storage import ContainerResources, instance_labels
from components.versions import CHARTS, IMAGES, ChartPin, ImagePin

POSTGRES_PORT: Final = 5432
MLFLOW_PORT: Final = 80
"""Port of the chart's Service."""
MLFLOW_CONTAINER_PORT: Final = 5000
"""Port the server listens on (the chart's ``service.containerPort`` default)."""
DB_USERNAME_KEY: Final = "username"
DB_PASSWORD_KEY: Final = "password"
ADMIN_USERNAME_KEY: Final = "username"
ADMIN_PASSWORD_KEY: Final = "password"
S3_ACCESS_KEY_KEY: Final = "accessKey"
S3_SECRET_KEY_KEY: Final = "secretKey"
TRACKING_DATABASE: Final = "mlflow"
AUTH_DATABASE: Final = "mlflow_auth"
PROMETHEUS_DIR: Final = "/mlflow/metrics"
POSTGRES_UID: Final = 999
"""uid/gid of the ``postgres`` user in the official image."""
MLFLOW_UID: Final = 1001
"""uid/gid the MLflow chart runs the server as (its ``securityContext.runAsUser``)."""


TRACKING_SECRET: Final = "mlflow-tracking-credentials"
"""Secret, in each client namespace, with the server's basic-auth user for pods (``secretKeyRef``)."""
TRACKING_USERNAME_KEY: Final = "username"
TRACKING_PASSWORD_KEY: Final = "password"


@dataclass(frozen=True)
class TrackingCredentials:
    """The MLflow basic-auth user that in-cluster clients (pipeline steps, trigger Jobs) use.

    Attributes:
        username: User name (not secret).
        password: Password (a Pulumi secret).

    """

    username: pulumi.Input[str]
    password: pulumi.Input[str]


def tracking_credentials_secret(
    name: str,
    namespace: pulumi.Input[str],
    credentials: TrackingCredentials,
    *,
    labels: dict[str, str] | None = None,
    opts: pulumi.ResourceOptions,
) -> k8s.core.v1.Secret:
    """Declare :data:`TRACKING_SECRET` in ``namespace``; pods read it with ``secretKeyRef``."""
    return k8s.core.v1.Secret(
        name,
        metadata={"name": TRACKING_SECRET, "namespace": namespace, "labels": labels or {}},
        type="Opaque",
        string_data=pulumi.Output.secret(
            cast(
                Any,
                pulumi.Output.all(credentials.username, credentials.password).apply(
                    lambda pair: {TRACKING_USERNAME_KEY: pair[0], TRACKING_PASSWORD_KEY: pair[1]}
                ),
            )
        ),
        opts=opts,
    )


@dataclass(frozen=True)
class ArtifactStore:
    """Where the server keeps artifacts (it proxies them to clients).

    Attributes:
        endpoint: S3 endpoint URL reachable from the MLflow namespace.
        bucket: Bucket of the artifacts.
        prefix: Key prefix inside the bucket.
        access_key_id: Access key id of MLflow's own object-store user.
        secret_access_key: Its secret key (a Pulumi secret).

    """

    endpoint: pulumi.Input[str]
    bucket: str
    access_key_id: pulumi.Input[str]
    secret_access_key: pulumi.Input[str]
    prefix: str = "artifacts"


@dataclass(frozen=True)
class TrackingServerArgs:
    """Arguments of :class:`TrackingServer`.

    Attributes:
        namespace: Namespace to create and run in.
        storage_class: Storage class of the Postgres volume.
        artifacts: The object store the server proxies artifacts to.
        clients: Namespaces whose pods may reach the server (NetworkPolicy).
        postgres_storage_gi: Size of the Postgres volume.
        replicas: MLflow server pods (stateless; everything it stores is in Postgres and MinIO).
        service_monitor: Declare a ServiceMonitor (needs the Prometheus Operator CRDs).
        chart: MLflow chart pin.
        image: MLflow server image pin.
        postgres_image: PostgreSQL image pin.
        resources: MLflow container resources.
        postgres_resources: Postgres container resources.

    """

    namespace: str
    storage_class: str
    artifacts: ArtifactStore
    clients: tuple[str, ...] = ("kubeflow", "argo-events", "mlp-workloads")
    postgres_storage_gi: int = 10
    replicas: int = 1
    service_monitor: bool = True
    chart: ChartPin = field(default_factory=lambda: CHARTS["mlflow"])
    image: ImagePin = field(default_factory=lambda: IMAGES["mlflow"])
    postgres_image: ImagePin = field(default_factory=lambda: IMAGES["postgres"])
    resources: ContainerResources = field(
        default_factory=lambda: ContainerResources(memory_request="512Mi", memory_limit="2Gi")
    )
    postgres_resources: ContainerResources = field(
        default_factory=lambda: ContainerResources(memory_request="256Mi", memory_limit="1Gi")
    )

    def __post_init__(self) -> None:
        if self.postgres_storage_gi < 1:
            raise ValueError(f"postgres_storage_gi must be at least 1, got {self.postgres_storage_gi}")
        if self.replicas < 1:
            raise ValueError(f"replicas must be at least 1, got {self.replicas}")


def postgres_host(name: str, namespace: str) -> str:
    """In-cluster DNS name of the Postgres Service of tracking server ``name``."""
    return f"{name}-postgres.{namespace}.svc.cluster.local"


def tracking_uri(name: str, namespace: str) -> str:
    """In-cluster tracking URI of the MLflow Service of release ``name``."""
    return f"http://{name}.{namespace}.svc.cluster.local:{MLFLOW_PORT}"


def init_sql() -> str:
    """SQL run once at first start: the basic-auth database next to the tracking database."""
    return f"CREATE DATABASE {AUTH_DATABASE};\n"


def postgres_statefulset(
    name: str, namespace: str, args: TrackingServerArgs, db_secret: str
) -> dict[str, Any]:
    """The Postgres StatefulSet spec (``spec`` only): credentials from ``db_secret``."""
    labels = {"app.kubernetes.io/name": "postgres", "app.kubernetes.io/instance": f"{name}-postgres"}

    def from_secret(var: str, key: str) -> dict[str, Any]:
        return {"name": var, "valueFrom": {"secretKeyRef": {"name": db_secret, "key": key}}}

    probe = {"exec": {"command": ["sh", "-c", 'pg_isready -U "$POSTGRES_USER" -d "$POSTGRES_DB"']}}
    return {
        "serviceName": f"{name}-postgres",
        "replicas": 1,
        "selector": {"matchLabels": labels},
        "template": {
            "metadata": {"labels": labels},
            "spec": {
                # Postgres never calls the Kubernetes API.
                "automountServiceAccountToken": False,
                "securityContext": {
                    "runAsUser": POSTGRES_UID,
                    "runAsGroup": POSTGRES_UID,
                    "fsGroup": POSTGRES_UID,
                    "runAsNonRoot": True,
                    "seccompProfile": {"type": "RuntimeDefault"},
                },
                "containers": [
                    {
                        "name": "postgres",
                        "image": args.postgres_image.ref,
                        "ports": [{"name": "postgres", "containerPort": POSTGRES_PORT}],
                        "env": [
                            from_secret("POSTGRES_USER", DB_USERNAME_KEY),
                            from_secret("POSTGRES_PASSWORD", DB_PASSWORD_KEY),
                            {"name": "POSTGRES_DB", "value": TRACKING_DATABASE},
                            {"name": "PGDATA", "value": "/var/lib/postgresql/data/pgdata"},
                        ],
                        "readinessProbe": {**probe, "periodSeconds": 10},
                        "livenessProbe": {**probe, "periodSeconds": 30, "failureThreshold": 5},
                        "resources": args.postgres_resources.to_k8s(),
                        # Read-only root: PGDATA is on the volume, the socket and scratch on emptyDirs.
                        "securityContext": {
                            "allowPrivilegeEscalation": False,
                            "capabilities": {"drop": ["ALL"]},
                            "readOnlyRootFilesystem": True,
                        },
                        "volumeMounts": [
                            {"name": "data", "mountPath": "/var/lib/postgresql/data"},
                            {"name": "init", "mountPath": "/docker-entrypoint-initdb.d", "readOnly": True},
                            {"name": "run", "mountPath": "/var/run/postgresql"},
                            {"name": "tmp", "mountPath": "/tmp"},
                        ],
                    }
                ],
                "volumes": [
                    {"name": "init", "configMap": {"name": f"{name}-postgres-init"}},
                    {"name": "run", "emptyDir": {}},
                    {"name": "tmp", "emptyDir": {}},
                ],
            },
        },
        "volumeClaimTemplates": [
            {
                "metadata": {"name": "data"},
                "spec": {
                    "accessModes": ["ReadWriteOnce"],
                    "storageClassName": args.storage_class,
                    "resources": {"requests": {"storage": f"{args.postgres_storage_gi}Gi"}},
                },
            }
        ],
    }


def mlflow_values(
    name: str,
    namespace: str,
    args: TrackingServerArgs,
    *,
    db_secret: str,
    admin_secret: str,
    s3_secret: str,
    s3_endpoint: str,
) -> dict[str, Any]:
    """Helm values of the MLflow chart: Postgres backend, proxied MinIO artifacts, basic auth.

    Every credential is referenced by Secret name; none is in the values.
    """
    host = postgres_host(name, namespace)
    return {
        "fullnameOverride": name,
        "replicaCount": args.replicas,
        "image": {"repository": args.image.repository, "tag": args.image.tag},
        "initImages": {"mlflowDbMigration": {"repository": args.image.repository, "tag": args.image.tag}},
        "service": {"type": "ClusterIP", "port": MLFLOW_PORT},
        "backendStore": {
            "databaseMigration": True,
            "databaseConnectionCheck": False,
            "postgres": {"enabled": True, "host": host, "port": POSTGRES_PORT, "database": TRACKING_DATABASE},
            "existingDatabaseSecret": {
                "name": db_secret,
                "usernameKey": DB_USERNAME_KEY,
                "passwordKey": DB_PASSWORD_KEY,
            },
        },
        "artifactRoot": {
            "proxiedArtifactStorage": True,
            "s3": {
                "enabled": True,
                "bucket": args.artifacts.bucket,
                "path": args.artifacts.prefix,
                "existingSecret": {
                    "name": s3_secret,
                    "keyOfAccessKeyId": S3_ACCESS_KEY_KEY,
                    "keyOfSecretAccessKey": S3_SECRET_KEY_KEY,
                },
            },
        },
        "extraEnvVars": {"MLFLOW_S3_ENDPOINT_URL": s3_endpoint},
        "extraArgs": {"exposePrometheus": PROMETHEUS_DIR},
        "auth": {
            "enabled": True,
            "existingAdminSecret": {
                "name": admin_secret,
                "usernameKey": ADMIN_USERNAME_KEY,
                "passwordKey": ADMIN_PASSWORD_KEY,
            },
            "postgres": {
                "enabled": True,
                "host": host,
                "port": POSTGRES_PORT,
                "database": AUTH_DATABASE,
                "existingSecret": {
                    "name": db_secret,
                    "usernameKey": DB_USERNAME_KEY,
                    "passwordKey": DB_PASSWORD_KEY,
                },
            },
        },
        "serviceMonitor": {"enabled": False},
        "resources": args.resources.to_k8s(),
        # Every container (the init containers too) runs as the image's non-root user with the
        # runtime's seccomp profile; MLflow writes scratch files, so its root stays writable.
        "podSecurityContext": pod_security(run_as_user=MLFLOW_UID, fs_group=MLFLOW_UID),
        "securityContext": container_security(read_only_root=False, run_as_user=MLFLOW_UID),
        "serviceAccount": {"automount": False},
    }


class TrackingServer(pulumi.ComponentResource):
    """MLflow tracking server and model registry on PostgreSQL, artifacts proxied to MinIO.

    Attributes:
        namespace: Namespace of the server.
        tracking_uri: In-cluster URL of the server (ClusterIP Service).
        artifacts_uri: ``s3://bucket/prefix`` the server proxies artifacts to.
        admin_username: Basic-auth admin user (plain).
        admin_password: Basic-auth admin password (secret).
        admin_secret_name: Secret in ``namespace`` holding both.

    """

    def __init__(
        self, name: str, args: TrackingServerArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlplatform:tracking:TrackingServer", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        labels = instance_labels("tracking", name)
        # The chart's pods set no seccomp profile, so `restricted` is warned about, not enforced.
        # Clients reach the server's container port; Postgres stays same-namespace only.
        security = service_namespace(
            name,
            args.namespace,
            IngressAllow("tracking-clients", ports=(MLFLOW_CONTAINER_PORT,), from_namespaces=args.clients),
            labels=labels,
            parent=self,
        )
        namespace = security.namespace
        in_ns = pulumi.ResourceOptions(parent=self, depends_on=[security])

        def secret(suffix: str, data: pulumi.Output[dict[str, str]]) -> k8s.core.v1.Secret:
            return k8s.core.v1.Secret(
                f"{name}-{suffix}",
                metadata={"name": f"{name}-{suffix}", "namespace": args.namespace, "labels": labels},
                type="Opaque",
                string_data=pulumi.Output.secret(cast(Any, data)),
                opts=in_ns,
            )

        db_password = random.RandomPassword(f"{name}-db-password", length=32, special=False, opts=child)
        db_secret = secret(
            "db", db_password.result.apply(lambda pw: {DB_USERNAME_KEY: "mlflow", DB_PASSWORD_KEY: pw})
        )
        admin_password = random.RandomPassword(f"{name}-admin-password", length=32, special=False, opts=child)
        self.admin_username: str = "mlp-admin"
        self.admin_password: pulumi.Output[str] = pulumi.Output.secret(admin_password.result)
        admin_secret = secret(
            "admin",
            admin_password.result.apply(
                lambda pw: {ADMIN_USERNAME_KEY: self.admin_username, ADMIN_PASSWORD_KEY: pw}
            ),
        )
        s3_secret = secret(
            "s3",
            pulumi.Output.all(args.artifacts.access_key_id, args.artifacts.secret_access_key).apply(
                lambda pair: {S3_ACCESS_KEY_KEY: pair[0], S3_SECRET_KEY_KEY: pair[1]}
            ),
        )
        self.admin_secret_name: str = f"{name}-admin"

        init = k8s.core.v1.ConfigMap(
            f"{name}-postgres-init",
            metadata={"name": f"{name}-postgres-init", "namespace": args.namespace, "labels": labels},
            data={"10-auth-database.sql": init_sql()},
            opts=in_ns,
        )
        pg_labels = {"app.kubernetes.io/name": "postgres", "app.kubernetes.io/instance": f"{name}-postgres"}
        pg_service = k8s.core.v1.Service(
            f"{name}-postgres",
            metadata={"name": f"{name}-postgres", "namespace": args.namespace, "labels": labels},
            spec={
                "type": "ClusterIP",
                "selector": pg_labels,
                "ports": [{"name": "postgres", "port": POSTGRES_PORT, "targetPort": "postgres"}],
            },
            opts=in_ns,
        )
        postgres = k8s.apps.v1.StatefulSet(
            f"{name}-postgres-statefulset",
            metadata={"name": f"{name}-postgres", "namespace": args.namespace, "labels": labels},
            spec=postgres_statefulset(name, args.namespace, args, f"{name}-db"),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[db_secret, init, pg_service]),
        )
        release = pinned_release(
            f"{name}-release",
            args.chart,
            release_name=name,
            namespace=namespace,
            values=pulumi.Output.from_input(args.artifacts.endpoint).apply(
                lambda endpoint: mlflow_values(
                    name,
                    args.namespace,
                    args,
                    db_secret=f"{name}-db",
                    admin_secret=self.admin_secret_name,
                    s3_secret=f"{name}-s3",
                    s3_endpoint=endpoint,
                )
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[postgres, admin_secret, s3_secret]),
        )
        if args.service_monitor:
            # The MLflow server's Prometheus exporter; scheme left unset (the operator's default, http).
            service_monitor(
                f"{name}-metrics",
                namespace=args.namespace,
                selector={"app.kubernetes.io/name": "mlflow", "app.kubernetes.io/instance": name},
                port="http",
                scheme=None,
                labels=labels,
                opts=pulumi.ResourceOptions(parent=self, depends_on=[release]),
            )
        self.namespace: pulumi.Output[str] = namespace
        self.tracking_uri: str = tracking_uri(name, args.namespace)
        self.artifacts_uri: str = f"s3://{args.artifacts.bucket}/{args.artifacts.prefix}"
        self.register_outputs(
            {
                "namespace": self.namespace,
                "tracking_uri": self.tracking_uri,
                "artifacts_uri": self.artifacts_uri,
                "admin_username": self.admin_username,
                "admin_password": self.admin_password,
                "admin_secret_name": self.admin_secret_name,
            }
        )
