"""Knative Serving with Kourier as its networking layer, from the pinned upstream release manifests.

Knative publishes its install as release manifests (no official chart), so they are applied with
``yaml.v2.ConfigFile`` from the release URL in ``components.versions``: the CRDs, then the core,
then Kourier. The three ConfigMaps the platform owns are patched afterwards (server-side apply,
only the keys set here): ``config-network`` (Kourier as the ingress class), ``config-domain``
(the InferenceService domain) and ``config-autoscaler`` (scale to zero). Under Pulumi's mocks a
``ConfigFile`` is one opaque registration, so the plan shows each bundle with its pinned URL, and
renders and validates the ConfigMap patches.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import pulumi
import pulumi_kubernetes as k8s

from components.serving.common import instance_labels
from components.versions import release_asset_url

NAMESPACE: Final = "knative-serving"
"""Namespace the serving-core manifest creates and puts its ConfigMaps in."""
KOURIER_NAMESPACE: Final = "kourier-system"
"""Namespace the Kourier manifest creates for its gateway."""
KOURIER_INGRESS_CLASS: Final = "kourier.ingress.networking.knative.dev"
KOURIER_INTERNAL_SERVICE: Final = f"kourier-internal.{KOURIER_NAMESPACE}.svc.cluster.local"
"""The cluster-local gateway Service of Kourier."""
PATCH_FORCE: Final = {"pulumi.com/patchForce": "true"}
"""Take ownership of the patched keys from the field manager that applied the release manifest."""


@dataclass(frozen=True)
class KnativeArgs:
    """Settings of Knative Serving.

    Attributes:
        domain: Domain of the routes (``config-domain``).
        scale_to_zero: Allow revisions to scale to zero (``config-autoscaler``).
        scale_to_zero_grace_period: How long the last pod stays after traffic stops, e.g. ``60s``.

    """

    domain: str
    scale_to_zero: bool = True
    scale_to_zero_grace_period: str = "60s"


def config_patches(args: KnativeArgs) -> dict[str, dict[str, str]]:
    """The keys of Knative's ConfigMaps the platform sets, by ConfigMap name."""
    return {
        "config-network": {"ingress-class": KOURIER_INGRESS_CLASS},
        "config-domain": {args.domain: ""},
        "config-autoscaler": {
            "enable-scale-to-zero": "true" if args.scale_to_zero else "false",
            "scale-to-zero-grace-period": args.scale_to_zero_grace_period,
        },
    }


class Knative(pulumi.ComponentResource):
    """Knative Serving (CRDs, core) and Kourier from the pinned release, plus the platform's settings.

    Attributes:
        manifests: The ``ConfigFile`` of each release bundle, in apply order.
        patches: The ConfigMap patches.
        local_gateway_service: Host of the cluster-local gateway (for KServe's ingress config).

    """

    def __init__(self, name: str, args: KnativeArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlplatform:serving:Knative", name, None, opts)
        bundles = (
            ("crds", "knative-serving", "serving-crds.yaml"),
            ("core", "knative-serving", "serving-core.yaml"),
            ("kourier", "net-kourier", "kourier.yaml"),
        )
        self.manifests: list[k8s.yaml.v2.ConfigFile] = []
        for suffix, release, asset in bundles:
            self.manifests.append(
                k8s.yaml.v2.ConfigFile(
                    f"{name}-{suffix}",
                    file=release_asset_url(release, asset),
                    opts=pulumi.ResourceOptions(parent=self, depends_on=list(self.manifests[-1:])),
                )
            )
        after = pulumi.ResourceOptions(parent=self, depends_on=list(self.manifests))
        labels = instance_labels("serving", name)
        self.patches: list[k8s.core.v1.ConfigMapPatch] = [
            k8s.core.v1.ConfigMapPatch(
                f"{name}-{config_map}",
                metadata={
                    "name": config_map,
                    "namespace": NAMESPACE,
                    "labels": labels,
                    "annotations": PATCH_FORCE,
                },
                data=data,
                opts=after,
            )
            for config_map, data in config_patches(args).items()
        ]
        self.local_gateway_service = KOURIER_INTERNAL_SERVICE
        self.register_outputs(
            {
                "files": [release_asset_url(r, a) for _, r, a in bundles],
                "local_gateway_service": KOURIER_INTERNAL_SERVICE,
            }
        )
