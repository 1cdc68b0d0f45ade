"""Small pieces the serving components share: labels, container resources, security contexts."""

from __future__ import annotations

from typing import Any

from components.security import container_security, pod_security
from components.storage import ContainerResources, instance_labels

__all__ = ["ContainerResources", "instance_labels", "restricted_container", "restricted_pod", "resources"]


def resources(cpu: str, memory: str, memory_limit: str) -> dict[str, dict[str, str]]:
    """A container ``resources`` block: CPU and memory requests, a memory limit (no CPU throttling)."""
    return ContainerResources(cpu_request=cpu, memory_request=memory, memory_limit=memory_limit).to_k8s()


def restricted_container() -> dict[str, Any]:
    """A container ``securityContext`` the ``restricted`` Pod Security profile admits."""
    return container_security(read_only_root=True)


def restricted_pod() -> dict[str, Any]:
    """A pod ``securityContext`` the ``restricted`` Pod Security profile admits."""
    return pod_security()
