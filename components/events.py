"""Argo Events: a new dataset in MinIO (or a webhook call) starts a training run on KFP.

* The controller comes from the official chart (``components.versions``), its image at the release
  whose CRDs and API schema the offline plan validates against.
* An ``EventBus`` (JetStream) carries events from sources to sensors.
* An ``EventSource`` listens for ``s3:ObjectCreated:*`` notifications on the ``datasets`` bucket
  (MinIO's bucket-notification API, with the events service's own MinIO user), and a second one
  serves a webhook (``POST /dataset``) inside the cluster.
* A ``Sensor`` runs a Kubernetes Job trigger for either event: the Job runs the workload image's
  ``mlp pipeline run`` against the stack's outputs (mounted from a ConfigMap), which compiles the
  training pipeline and submits it to KFP. The object key that fired the event travels into the
  Job as ``MLP_DATASET_KEY`` (``mlp pipeline run`` reads it as ``--dataset-key``: preprocess reads
  ``s3://<datasets bucket>/<key>``) and as an annotation. The Job gets the MLflow user from a
  Secret in this namespace (``secretKeyRef``), never as plain values.
* The namespace has Pod Security labels and default-deny ingress; the webhook port is open to
  the namespaces listed in ``webhook_clients``.

Custom resources are plain dicts (the SDKs of Argo nest webhook fields under ``webhookContext``,
which is not the real format).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final, cast

import pulumi
import pulumi_kubernetes as k8s

from components.helm import pinned_release
from components.security import IngressAllow, container_security, pod_security, service_namespace
from components.storage import ContainerResources, instance_labels
from components.tracking import (
    TRACKING_PASSWORD_KEY,
    TRACKING_SECRET,
    TRACKING_USERNAME_KEY,
    TrackingCredentials,
    tracking_credentials_secret,
)
from components.versions import CHARTS, IMAGES, ChartPin, ImagePin

API_VERSION: Final = "argoproj.io/v1alpha1"
EVENT_BUS: Final = "default"
JETSTREAM_VERSION: Final = "2.10.10"
"""A JetStream version listed in the chart's ``configs.jetstream.versions``."""
WEBHOOK_PORT: Final = 12000
WEBHOOK_PATH: Final = "/dataset"
DATASET_KEY_ENV: Final = "MLP_DATASET_KEY"
DATASET_KEY_ANNOTATION: Final = "mlplatform.io/dataset-key"
OUTPUTS_MOUNT: Final = "/etc/mlp"
OUTPUTS_FILE: Final = "outputs.json"
ACCESS_KEY_KEY: Final = "accessKey"
SECRET_KEY_KEY: Final = "secretKey"
MINIO_EVENT: Final = "dataset"
WEBHOOK_EVENT: Final = "dataset"
ARGO_EVENTS_UID: Final = 9731
"""Non-root uid of the Argo Events image (controller, event sources, sensors)."""
NO_ESCALATION: Final[dict[str, Any]] = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}
"""Container ``securityContext`` for images whose user is fixed by the image (the NATS bus)."""
CONTROLLER_RESOURCES: Final = ContainerResources(
    cpu_request="50m", memory_request="128Mi", memory_limit="512Mi"
)
ADAPTER_RESOURCES: Final = ContainerResources(cpu_request="20m", memory_request="64Mi", memory_limit="256Mi")
"""Each EventSource and Sensor pod."""
BUS_RESOURCES: Final = ContainerResources(cpu_request="100m", memory_request="256Mi", memory_limit="1Gi")
BUS_SIDECAR_RESOURCES: Final = ContainerResources(
    cpu_request="10m", memory_request="32Mi", memory_limit="128Mi"
)


@dataclass(frozen=True)
class DatasetEventsArgs:
    """Arguments of :class:`DatasetEvents`.

    Attributes:
        namespace: Namespace to create and run in.
        s3_host_port: ``host:port`` of MinIO.
        bucket: The bucket whose new objects start training.
        access_key_id: The events service's MinIO access key id.
        secret_access_key: Its secret key (a Pulumi secret).
        outputs_json: The stack outputs the trigger Job reads (no secret in them).
        tracking: The MLflow user the trigger Job gets from a Secret (None: none).
        webhook_clients: Namespaces whose pods may call the webhook.
        trigger_command: Command of the trigger Job's container.
        chart: Argo Events chart pin.
        controller_image: Controller image pin.
        workload_image: Image of the trigger Job.

    """

    namespace: str
    s3_host_port: str
    bucket: str
    access_key_id: pulumi.Input[str]
    secret_access_key: pulumi.Input[str]
    outputs_json: pulumi.Input[str]
    tracking: TrackingCredentials | None = None
    webhook_clients: tuple[str, ...] = ("kubeflow", "mlp-workloads")
    trigger_command: tuple[str, ...] = (
        "mlp",
        "pipeline",
        "run",
        "--outputs-file",
        f"{OUTPUTS_MOUNT}/{OUTPUTS_FILE}",
        "--json",
    )
    chart: ChartPin = field(default_factory=lambda: CHARTS["argo-events"])
    controller_image: ImagePin = field(default_factory=lambda: IMAGES["argo-events"])
    workload_image: ImagePin = field(default_factory=lambda: IMAGES["workloads"])


def chart_values(args: DatasetEventsArgs) -> dict[str, Any]:
    """Helm values of the Argo Events chart: the controller at the pinned image, its metrics on."""
    return {
        "crds": {"install": True, "keep": True},
        "global": {
            "image": {"repository": args.controller_image.repository, "tag": args.controller_image.tag},
            "securityContext": pod_security(run_as_user=ARGO_EVENTS_UID, fs_group=ARGO_EVENTS_UID),
        },
        "controller": {
            "metrics": {"enabled": True},
            "containerSecurityContext": container_security(),
            "resources": CONTROLLER_RESOURCES.to_k8s(),
        },
    }


def pod_template() -> dict[str, Any]:
    """The ``template`` part EventSources and Sensors share: restricted contexts, requests, limits."""
    return {
        "securityContext": pod_security(run_as_user=ARGO_EVENTS_UID, fs_group=ARGO_EVENTS_UID),
        "container": {"securityContext": container_security(), "resources": ADAPTER_RESOURCES.to_k8s()},
    }


def event_bus_spec() -> dict[str, Any]:
    """EventBus spec: a 3-replica JetStream bus, every container bounded and unprivileged.

    The NATS containers keep the image's user (root owns their data volume), so they get no
    escalation, no capabilities and the runtime seccomp profile, not a forced uid.
    """
    container = {"securityContext": NO_ESCALATION, "resources": BUS_SIDECAR_RESOURCES.to_k8s()}
    return {
        "jetstream": {
            "version": JETSTREAM_VERSION,
            "replicas": 3,
            "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
            "containerTemplate": {"securityContext": NO_ESCALATION, "resources": BUS_RESOURCES.to_k8s()},
            "reloaderContainerTemplate": container,
            "metricsContainerTemplate": container,
        }
    }


def minio_source_spec(args: DatasetEventsArgs, secret_name: str) -> dict[str, Any]:
    """EventSource spec: object-created notifications of the datasets bucket."""
    return {
        "eventBusName": EVENT_BUS,
        "template": pod_template(),
        "minio": {
            MINIO_EVENT: {
                "bucket": {"name": args.bucket},
                "endpoint": args.s3_host_port,
                "events": ["s3:ObjectCreated:Put", "s3:ObjectCreated:CompleteMultipartUpload"],
                "insecure": True,
                "accessKey": {"name": secret_name, "key": ACCESS_KEY_KEY},
                "secretKey": {"name": secret_name, "key": SECRET_KEY_KEY},
            }
        },
    }


def webhook_url(source_name: str, namespace: str) -> str:
    """In-cluster URL of the webhook (the Service the controller creates for the EventSource)."""
    return f"http://{source_name}-eventsource-svc.{namespace}.svc.cluster.local:{WEBHOOK_PORT}{WEBHOOK_PATH}"


def webhook_source_spec(source_name: str, namespace: str) -> dict[str, Any]:
    """EventSource spec: ``POST /dataset`` with a JSON body ``{"key": "<object key>"}``."""
    return {
        "eventBusName": EVENT_BUS,
        "template": pod_template(),
        "service": {"ports": [{"port": WEBHOOK_PORT, "targetPort": WEBHOOK_PORT}]},
        "webhook": {
            WEBHOOK_EVENT: {
                "endpoint": WEBHOOK_PATH,
                "method": "POST",
                "port": str(WEBHOOK_PORT),
                "url": webhook_url(source_name, namespace),
            }
        },
    }


def tracking_env(args: DatasetEventsArgs) -> list[dict[str, Any]]:
    """The MLflow user as environment variables read from :data:`TRACKING_SECRET` (if any)."""
    if args.tracking is None:
        return []
    return [
        {"name": var, "valueFrom": {"secretKeyRef": {"name": TRACKING_SECRET, "key": key}}}
        for var, key in (
            ("MLFLOW_TRACKING_USERNAME", TRACKING_USERNAME_KEY),
            ("MLFLOW_TRACKING_PASSWORD", TRACKING_PASSWORD_KEY),
        )
    ]


def trigger_job(args: DatasetEventsArgs, *, service_account: str, outputs_config_map: str) -> dict[str, Any]:
    """The Job the Sensor creates: ``mlp pipeline run`` on the stack's outputs."""
    security = {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "runAsNonRoot": True,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "generateName": "train-on-dataset-",
            "namespace": args.namespace,
            "annotations": {DATASET_KEY_ANNOTATION: ""},
        },
        "spec": {
            "backoffLimit": 2,
            "ttlSecondsAfterFinished": 86400,
            "template": {
                "spec": {
                    "serviceAccountName": service_account,
                    "restartPolicy": "Never",
                    "containers": [
                        {
                            "name": "submit",
                            "image": args.workload_image.ref,
                            "command": list(args.trigger_command),
                            # env[0] is filled by the Sensor (see sensor_spec); keep it first.
                            "env": [{"name": DATASET_KEY_ENV, "value": ""}, *tracking_env(args)],
                            "resources": {
                                "requests": {"cpu": "100m", "memory": "512Mi"},
                                "limits": {"memory": "1Gi"},
                            },
                            "securityContext": security,
                            "volumeMounts": [
                                {"name": "outputs", "mountPath": OUTPUTS_MOUNT, "readOnly": True}
                            ],
                        }
                    ],
                    "volumes": [{"name": "outputs", "configMap": {"name": outputs_config_map}}],
                }
            },
        },
    }


def sensor_spec(
    args: DatasetEventsArgs,
    *,
    minio_source: str,
    webhook_source: str,
    service_account: str,
    outputs_config_map: str,
) -> dict[str, Any]:
    """Sensor spec: one Job trigger per dependency, each passing the object key into the Job."""
    job = trigger_job(args, service_account=service_account, outputs_config_map=outputs_config_map)
    sources = {
        "new-object": (minio_source, MINIO_EVENT, "notification.0.s3.object.key"),
        "webhook": (webhook_source, WEBHOOK_EVENT, "body.key"),
    }

    # sjson paths: a dot inside the annotation key is escaped.
    escaped_annotation = DATASET_KEY_ANNOTATION.replace(".", "\\.")

    def trigger(dependency: str, data_key: str) -> dict[str, Any]:
        parameters = [
            {
                "src": {"dependencyName": dependency, "dataKey": data_key},
                "dest": "spec.template.spec.containers.0.env.0.value",
            },
            {
                "src": {"dependencyName": dependency, "dataKey": data_key},
                "dest": f"metadata.annotations.{escaped_annotation}",
            },
        ]
        return {
            "template": {
                "name": f"train-on-{dependency}",
                "conditions": dependency,
                "k8s": {"operation": "create", "source": {"resource": job}, "parameters": parameters},
            },
            "retryStrategy": {"steps": 3},
        }

    return {
        "eventBusName": EVENT_BUS,
        "template": {**pod_template(), "serviceAccountName": service_account},
        "dependencies": [
            {"name": dependency, "eventSourceName": source, "eventName": event}
            for dependency, (source, event, _) in sources.items()
        ],
        "triggers": [trigger(dependency, data_key) for dependency, (_, _, data_key) in sources.items()],
    }


class DatasetEvents(pulumi.ComponentResource):
    """Argo Events with the dataset -> training chain: EventBus, two EventSources, one Sensor.

    Attributes:
        namespace: Namespace of the controller and the chain.
        webhook_url: In-cluster URL of the dataset webhook.

    """

    def __init__(
        self, name: str, args: DatasetEventsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlplatform:events:DatasetEvents", name, None, opts)
        labels = instance_labels("events", name)
        # JetStream and the controller's pods set no seccomp profile: baseline enforced,
        # restricted warned. The EventBus and the sources talk inside the namespace.
        security = service_namespace(
            name,
            args.namespace,
            IngressAllow("dataset-webhook", ports=(WEBHOOK_PORT,), from_namespaces=args.webhook_clients),
            labels=labels,
            parent=self,
        )
        in_ns = pulumi.ResourceOptions(parent=self, depends_on=[security])
        release = pinned_release(
            f"{name}-release",
            args.chart,
            release_name=name,
            namespace=security.namespace,
            values=chart_values(args),
            opts=in_ns,
        )
        s3_secret_name = f"{name}-minio"
        s3_secret = k8s.core.v1.Secret(
            f"{name}-minio",
            metadata={"name": s3_secret_name, "namespace": args.namespace, "labels": labels},
            type="Opaque",
            string_data=pulumi.Output.secret(
                cast(
                    Any,
                    pulumi.Output.all(args.access_key_id, args.secret_access_key).apply(
                        lambda pair: {ACCESS_KEY_KEY: pair[0], SECRET_KEY_KEY: pair[1]}
                    ),
                )
            ),
            opts=in_ns,
        )
        outputs_name = f"{name}-stack-outputs"
        outputs_map = k8s.core.v1.ConfigMap(
            outputs_name,
            metadata={"name": outputs_name, "namespace": args.namespace, "labels": labels},
            data={OUTPUTS_FILE: args.outputs_json},
            opts=in_ns,
        )
        tracking_deps: list[pulumi.Resource] = []
        if args.tracking is not None:
            tracking_deps.append(
                tracking_credentials_secret(
                    f"{name}-mlflow-credentials", args.namespace, args.tracking, labels=labels, opts=in_ns
                )
            )
        # The Sensor's pods create the trigger Jobs: a ServiceAccount allowed exactly that.
        sa_name = f"{name}-sensor"
        sa = k8s.core.v1.ServiceAccount(
            sa_name, metadata={"name": sa_name, "namespace": args.namespace, "labels": labels}, opts=in_ns
        )
        role = k8s.rbac.v1.Role(
            f"{name}-sensor-jobs",
            metadata={"name": f"{name}-sensor-jobs", "namespace": args.namespace, "labels": labels},
            rules=[
                {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["create", "get", "list", "watch"]}
            ],
            opts=in_ns,
        )
        binding = k8s.rbac.v1.RoleBinding(
            f"{name}-sensor-jobs-binding",
            metadata={"name": f"{name}-sensor-jobs", "namespace": args.namespace, "labels": labels},
            role_ref={"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": f"{name}-sensor-jobs"},
            subjects=[{"kind": "ServiceAccount", "name": sa_name, "namespace": args.namespace}],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[role, sa]),
        )

        # Custom resources only after the chart (and so its CRDs and controller) is in place.
        def custom(suffix: str, kind: str, spec: dict[str, Any], deps: list[pulumi.Resource]) -> None:
            k8s.apiextensions.CustomResource(
                f"{name}-{suffix}",
                api_version=API_VERSION,
                kind=kind,
                metadata={
                    "name": suffix if kind == "EventBus" else f"{name}-{suffix}",
                    "namespace": args.namespace,
                    "labels": labels,
                },
                spec=spec,
                opts=pulumi.ResourceOptions(parent=self, depends_on=[release, *deps]),
            )

        minio_source, webhook_source = f"{name}-minio-source", f"{name}-webhook"
        custom(EVENT_BUS, "EventBus", event_bus_spec(), [])
        custom("minio-source", "EventSource", minio_source_spec(args, s3_secret_name), [s3_secret])
        custom("webhook", "EventSource", webhook_source_spec(webhook_source, args.namespace), [])
        custom(
            "sensor",
            "Sensor",
            sensor_spec(
                args,
                minio_source=minio_source,
                webhook_source=webhook_source,
                service_account=sa_name,
                outputs_config_map=outputs_name,
            ),
            [binding, outputs_map, *tracking_deps],
        )
        self.namespace: str = args.namespace
        self.webhook_url: str = webhook_url(webhook_source, args.namespace)
        self.register_outputs({"namespace": self.namespace, "webhook_url": self.webhook_url})
