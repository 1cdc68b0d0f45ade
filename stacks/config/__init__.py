"""Stack configuration: the only reader of ``pulumi.Config``.

Every key lives under the ``mlplatform`` namespace and is declared in ``Pulumi.yaml``. The package
splits the job in four:

- :mod:`stacks.config.models`: one strict pydantic model per section (unknown keys rejected);
- :mod:`stacks.config.checks`: cross-field rules over every section that parsed;
- :mod:`stacks.config.errors`: ``ConfigIssue``/``ConfigError`` and the translation of pydantic errors;
- :mod:`stacks.config.loading`: parsing from the Pulumi runtime or a ``Pulumi.<stack>.yaml`` file.

Area-specific models and rules (serving, platform services, MIG, ...) live in their own modules here
and are hooked into ``PlatformConfig`` and ``cross_checks``. Import the public names from this package.
"""

from stacks.config.base import ConfigModel
from stacks.config.checks import cross_checks, pool_gpu
from stacks.config.errors import ConfigError, ConfigIssue, model_in
from stacks.config.loading import (
    load_config,
    load_stack_file,
    parse_config,
    project_root,
    stack_file_config,
    without_namespace,
)
from stacks.config.models import (
    AKS_RESERVED_POOL_NAMES,
    NAMESPACE,
    NVIDIA_AMI_TYPES,
    OPEN_CIDRS,
    SUPPORTED_K8S_MINORS,
    AksConfig,
    AksPlatformPoolConfig,
    AksSystemPoolConfig,
    EksConfig,
    EksSystemNodeGroupConfig,
    GpuConfig,
    GpuPoolConfig,
    LocalConfig,
    MigConfig,
    MilvusConfig,
    MpsConfig,
    ObservabilityConfig,
    PlatformConfig,
    QdrantConfig,
    SharingConfig,
    StorageConfig,
    TimeSlicingConfig,
    VectorDbConfig,
)

__all__ = [
    "AKS_RESERVED_POOL_NAMES",
    "NAMESPACE",
    "NVIDIA_AMI_TYPES",
    "OPEN_CIDRS",
    "SUPPORTED_K8S_MINORS",
    "AksConfig",
    "AksPlatformPoolConfig",
    "AksSystemPoolConfig",
    "ConfigError",
    "ConfigIssue",
    "ConfigModel",
    "EksConfig",
    "EksSystemNodeGroupConfig",
    "GpuConfig",
    "GpuPoolConfig",
    "LocalConfig",
    "MigConfig",
    "MilvusConfig",
    "MpsConfig",
    "ObservabilityConfig",
    "PlatformConfig",
    "QdrantConfig",
    "SharingConfig",
    "StorageConfig",
    "TimeSlicingConfig",
    "VectorDbConfig",
    "cross_checks",
    "load_config",
    "load_stack_file",
    "model_in",
    "parse_config",
    "pool_gpu",
    "project_root",
    "stack_file_config",
    "without_namespace",
]
