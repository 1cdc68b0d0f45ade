"""Turn a program run into plain data: the resource list, Kubernetes manifests, Helm releases."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from stacks.plan.harness import ProgramRun, Registration, clean, is_secret

HELM_RELEASE = "kubernetes:helm.sh/v3:Release"
_OPAQUE_K8S = ("kubernetes:helm.sh/", "kubernetes:yaml/", "kubernetes:kustomize/", "pulumi:providers:")


@dataclass
class Manifest:
    """One rendered object.

    Attributes:
        filename: File name under ``manifests/``.
        resource: Logical name of the Pulumi resource that declares it.
        document: The object (secret values replaced by ``"[secret]"``).
        kind: ``object`` for Kubernetes objects, ``helm-release`` for chart installs.
    """

    filename: str
    resource: str
    document: dict[str, Any]
    kind: str


def resource_entries(run: ProgramRun) -> list[dict[str, Any]]:
    """One plain object per registration, sorted by type and name: type, name, parent, custom, inputs (secrets hidden)."""
    return [
        {
            "type": reg.type,
            "name": reg.name,
            "parent": reg.parent,
            "custom": reg.custom,
            "inputs": canonical(clean(reg.inputs)),
        }
        for reg in sorted(run.registrations, key=lambda r: (r.type, r.name))
    ]


def is_kubernetes_object(reg: Registration) -> bool:
    """Whether a registration is a Kubernetes object the plan can render and validate."""
    return reg.custom and reg.type.startswith("kubernetes:") and not reg.type.startswith(_OPAQUE_K8S)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9.-]+", "-", text.lower()).strip("-")[:80]


def manifests(run: ProgramRun) -> list[Manifest]:
    """Every Kubernetes object and Helm release the program declares, sorted by file name.

    Files are named after what they declare, ``<kind>-<namespace>-<name>.yaml`` (``helmrelease``
    for chart installs; ``cluster`` for cluster-scoped objects), so two plans of the same stack
    write the same tree; a clash (two resources declaring the same object) keeps both, the
    second with its Pulumi resource name appended.
    """
    out: list[Manifest] = []
    for reg in run.registrations:
        if is_kubernetes_object(reg):
            document = _k8s_document(clean(reg.inputs))
            kind = document.get("kind", reg.type.rsplit(":", 1)[-1])
            meta = document.get("metadata") or {}
            stem = _stem(kind, meta.get("namespace"), meta.get("name") or reg.name)
            out.append(Manifest(stem, reg.name, document, "object"))
        elif reg.type == HELM_RELEASE:
            document = helm_release_document(reg)
            stem = _stem("helmrelease", document.get("namespace"), document.get("helmRelease") or reg.name)
            out.append(Manifest(stem, reg.name, document, "helm-release"))
    out.sort(key=lambda m: (m.filename, m.resource))
    seen: set[str] = set()
    for manifest in out:
        name = manifest.filename
        if name in seen:
            name = f"{name}--{_slug(manifest.resource)}"
        seen.add(name)
        manifest.filename = f"{name}.yaml"
    return out


def _stem(kind: str, namespace: Any, name: Any) -> str:
    return f"{_slug(str(kind))}-{_slug(str(namespace or 'cluster'))}-{_slug(str(name))}"


def canonical(value: Any) -> Any:
    """Maps with their keys sorted, recursively (recorded inputs come back in no fixed order)."""
    if isinstance(value, dict):
        return {key: canonical(value[key]) for key in sorted(value, key=str)}
    if isinstance(value, list):
        return [canonical(item) for item in value]
    return value


def _k8s_document(inputs: dict[str, Any]) -> dict[str, Any]:
    """Order the object's fields as people write them: apiVersion, kind, metadata, the rest sorted."""
    inputs = canonical(inputs)
    head: dict[str, Any] = {key: inputs[key] for key in ("apiVersion", "kind", "metadata") if key in inputs}
    tail = {key: value for key, value in inputs.items() if key not in head}
    return {**head, **tail}


def helm_release_document(reg: Registration) -> dict[str, Any]:
    """A readable description of a Helm release: chart, version, repository, namespace, values."""
    inputs = clean(reg.inputs)
    repo = (inputs.get("repositoryOpts") or {}).get("repo", "")
    return {
        "helmRelease": inputs.get("name") or reg.name,
        "chart": inputs.get("chart"),
        "version": inputs.get("version"),
        "repository": repo,
        "namespace": inputs.get("namespace"),
        "createNamespace": inputs.get("createNamespace", False),
        "values": canonical(inputs.get("values") or {}),
    }


def secret_values(run: ProgramRun) -> set[str]:
    """Every plaintext secret value seen in the run (at least 8 characters), to hunt for leaks."""
    found: set[str] = set()

    def walk(value: Any) -> None:
        if is_secret(value):
            inner = value.get("value")
            if isinstance(inner, str) and len(inner) >= 8:
                found.add(inner)
            walk(inner)
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list | tuple):
            for item in value:
                walk(item)

    for reg in run.registrations:
        walk(reg.inputs)
        walk(reg.outputs)
    return found
