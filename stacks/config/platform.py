"""Config of the ML platform services: Kubeflow Pipelines, Katib, the MLflow server, Argo Events.

The section is ``mlplatform:platform``; every key is read by ``stacks/addons_platform.py``.
:func:`check_platform` rejects a set of services that would install but could not work together
(a dataset trigger with no pipelines to start, pipelines with no tracking server to register
into), naming the key and the fix.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

if TYPE_CHECKING:
    from stacks.config.errors import ConfigIssue


class ConfigModel(BaseModel):
    """The same strict base as :class:`stacks.config.models.ConfigModel` (camelCase, no unknown keys).

    Not imported from there: ``models`` imports this module for ``PlatformServicesConfig``, so
    importing back would be circular.
    """

    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=True, frozen=True)


class KfpConfig(ConfigModel):
    """Kubeflow Pipelines (standalone)."""

    enabled: bool = Field(
        True, description="Install Kubeflow Pipelines (needs mlflow: the pipeline registers there)."
    )


class KatibConfig(ConfigModel):
    """Katib (standalone)."""

    enabled: bool = Field(True, description="Install Katib (hyperparameter tuning on the cluster).")


class MlflowConfig(ConfigModel):
    """The MLflow tracking server and its PostgreSQL backend store."""

    enabled: bool = Field(True, description="Install the MLflow server with its in-cluster PostgreSQL.")
    replicas: int = Field(
        1, ge=1, le=10, description="MLflow server pods (stateless: runs and registry live in PostgreSQL)."
    )
    postgres_storage_gi: int = Field(
        10,
        ge=1,
        le=4096,
        description="Size of the PostgreSQL volume in GiB (runs, params, metrics, registry).",
    )


class EventsConfig(ConfigModel):
    """Argo Events: a new object in the datasets bucket (or the webhook) starts a training run."""

    enabled: bool = Field(
        True, description="Install Argo Events and the dataset -> training chain (needs kfp)."
    )


class PlatformServicesConfig(ConfigModel):
    """Which ML platform services a stack runs, and their sizes."""

    kfp: KfpConfig = Field(default_factory=KfpConfig, description="Kubeflow Pipelines.")
    katib: KatibConfig = Field(default_factory=KatibConfig, description="Katib.")
    mlflow: MlflowConfig = Field(default_factory=MlflowConfig, description="MLflow tracking server.")
    events: EventsConfig = Field(default_factory=EventsConfig, description="Argo Events dataset trigger.")


def check_platform(platform: PlatformServicesConfig) -> list[ConfigIssue]:
    """Service combinations that would install but not work, each with its key and a fix."""
    from stacks.config.errors import ConfigIssue

    issues: list[ConfigIssue] = []
    if platform.events.enabled and not platform.kfp.enabled:
        issues.append(
            ConfigIssue(
                "platform.events.enabled",
                "the dataset trigger starts Kubeflow Pipelines runs, and kfp is disabled",
                "set platform.kfp.enabled: true, or platform.events.enabled: false",
            )
        )
    if platform.kfp.enabled and not platform.mlflow.enabled:
        issues.append(
            ConfigIssue(
                "platform.kfp.enabled",
                "the training pipeline registers its model in MLflow, and mlflow is disabled",
                "set platform.mlflow.enabled: true, or platform.kfp.enabled: false",
            )
        )
    return issues
