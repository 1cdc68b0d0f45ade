"""Config of the model-serving add-ons: KServe's deployment mode, autoscaling, ingress, KEDA.

The section is ``mlplatform:serving``. Its cross-field rules (:func:`check_serving`) reject every
combination that would install but never serve, naming the key and the fix, before any resource
is declared: scale-to-zero or request-based autoscaling in RawDeployment without KEDA, Serverless
without a Knative networking layer, a networking layer without Knative, and so on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field

from stacks.config.base import ConfigModel

if TYPE_CHECKING:
    from stacks.config.errors import ConfigIssue


DeploymentMode = Literal["Serverless", "RawDeployment"]
NetworkLayer = Literal["kourier", "none"]


class ServingIngressConfig(ConfigModel):
    """How InferenceServices are reached."""

    network_layer: NetworkLayer = Field(
        "none",
        description=(
            "Serverless only: Knative's networking layer (kourier). RawDeployment uses none "
            "(plain Services, and Ingress objects when className is set)."
        ),
    )
    class_name: str = Field(
        "",
        pattern=r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?)?$",
        description=(
            "RawDeployment only: IngressClass of the Ingress objects KServe creates for each "
            "InferenceService; empty: no Ingress, services are reachable inside the cluster only."
        ),
    )
    domain: str = Field(
        "serving.local",
        pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)+$",
        description="DNS domain of InferenceService hosts, e.g. models.example.com.",
    )
    url_scheme: Literal["http", "https"] = Field("http", description="Scheme of the URLs KServe reports.")


class ServingAutoscalingConfig(ConfigModel):
    """How predictors scale."""

    scale_to_zero: bool = Field(
        False,
        description=(
            "Let idle predictors scale to zero replicas (Knative KPA in Serverless; KEDA in "
            "RawDeployment, where requests that arrive at zero replicas are not buffered)."
        ),
    )
    request_based: bool = Field(
        False,
        description=(
            "Scale on request load (concurrency/RPS) instead of CPU: native in Serverless, "
            "needs KEDA in RawDeployment."
        ),
    )
    scale_to_zero_grace_period: str = Field(
        "60s",
        pattern=r"^\d+s$",
        description="Serverless: how long the last replica stays after traffic stops, e.g. 60s.",
    )


class KedaConfig(ConfigModel):
    """KEDA (event-driven autoscaling)."""

    enabled: bool = Field(False, description="Install KEDA (used by KServe in RawDeployment).")


class ServingConfig(ConfigModel):
    """Model serving: cert-manager, KServe, and Knative or KEDA depending on the mode."""

    enabled: bool = Field(True, description="Install cert-manager and KServe.")
    deployment_mode: DeploymentMode = Field(
        "RawDeployment",
        description="KServe's default mode: Serverless (Knative) or RawDeployment (Deployments + HPA/KEDA).",
    )
    serving_runtimes: bool = Field(
        True, description="Install KServe's ClusterServingRuntimes (sklearn, xgboost, huggingface...)."
    )
    ingress: ServingIngressConfig = Field(
        default_factory=ServingIngressConfig, description="How InferenceServices are reached."
    )
    autoscaling: ServingAutoscalingConfig = Field(
        default_factory=ServingAutoscalingConfig, description="How predictors scale."
    )
    keda: KedaConfig = Field(default_factory=KedaConfig, description="KEDA.")


def check_serving(serving: ServingConfig) -> list[ConfigIssue]:
    """Every combination of serving settings that cannot work, each with its key and fix.

    Args:
        serving: The parsed ``serving`` section.

    Returns:
        The issues found (empty when the settings are consistent or serving is disabled).

    """
    # Imported here: errors imports models, and models imports this module for ServingConfig.
    from stacks.config.errors import ConfigIssue

    if not serving.enabled:
        return []
    issues: list[ConfigIssue] = []
    mode = serving.deployment_mode
    ingress, scaling = serving.ingress, serving.autoscaling
    if mode == "Serverless":
        if ingress.network_layer == "none":
            issues.append(
                ConfigIssue(
                    "serving.ingress.networkLayer",
                    "Serverless needs a Knative networking layer to route requests, and none is set",
                    "set serving.ingress.networkLayer: kourier, or use serving.deploymentMode: RawDeployment",
                )
            )
        if ingress.class_name:
            issues.append(
                ConfigIssue(
                    "serving.ingress.className",
                    f"className '{ingress.class_name}' is for RawDeployment Ingress objects; Serverless "
                    "routes through the Knative networking layer",
                    "remove serving.ingress.className (or use serving.deploymentMode: RawDeployment)",
                )
            )
    else:
        if ingress.network_layer != "none":
            issues.append(
                ConfigIssue(
                    "serving.ingress.networkLayer",
                    f"networkLayer '{ingress.network_layer}' is a Knative networking layer, and "
                    "RawDeployment installs no Knative",
                    "set serving.ingress.networkLayer: none (and serving.ingress.className for an "
                    "Ingress), or use serving.deploymentMode: Serverless",
                )
            )
        if scaling.scale_to_zero and not serving.keda.enabled:
            issues.append(
                ConfigIssue(
                    "serving.autoscaling.scaleToZero",
                    "scale-to-zero in RawDeployment needs KEDA (the HPA cannot go below one replica)",
                    "set serving.keda.enabled: true, or serving.deploymentMode: Serverless, or "
                    "serving.autoscaling.scaleToZero: false",
                )
            )
        if scaling.request_based and not serving.keda.enabled:
            issues.append(
                ConfigIssue(
                    "serving.autoscaling.requestBased",
                    "request-based autoscaling in RawDeployment needs KEDA (the HPA scales on CPU/memory)",
                    "set serving.keda.enabled: true, or serving.deploymentMode: Serverless, or "
                    "serving.autoscaling.requestBased: false",
                )
            )
    return issues
