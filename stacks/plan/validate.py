"""Validate rendered Kubernetes objects offline, strictly.

* Built-in kinds are checked against the schemas that ``kubernetes-validate`` ships for the
  stack's Kubernetes version, in their strict variant (unknown fields are errors), and every error
  is reported, not only the first.
* Custom resources are checked against the ``openAPIV3Schema`` of their official CRD, read from a
  CRD directory. Unknown fields are errors there too (as ``kubectl --validate=strict`` would say),
  except under ``x-kubernetes-preserve-unknown-fields``.
* Some projects ship CRDs without a structural schema (Katib, Argo Events, Kubeflow Pipelines).
  For Katib and Argo Events the upstream API schemas in the same directory are used instead.
* A custom resource whose CRD is not found is reported as unvalidated, never as valid.
"""

from __future__ import annotations

import functools
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import jsonschema
import yaml
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7, DRAFT202012

from components.versions import DEFAULT_KUBERNETES_VERSION

CRD_DIR_ENV = "MLP_CRD_DIR"
Status = Literal["valid", "invalid", "unvalidated"]


def default_crd_dir() -> Path:
    """``$MLP_CRD_DIR``, else the user cache that ``mlp crds fetch`` fills."""
    env = os.environ.get(CRD_DIR_ENV)
    if env:
        return Path(env)
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return cache / "mlplatform" / "crds"


@dataclass
class Result:
    """The outcome of validating one object.

    Attributes:
        status: ``valid``, ``invalid`` or ``unvalidated`` (no schema found).
        errors: One line per problem, with the JSON path.
        schema: Where the schema came from.
    """

    status: Status
    errors: list[str] = field(default_factory=list)
    schema: str = ""


def _strict(schema: Any) -> Any:
    """Copy a schema, forbidding properties it does not declare (kubectl --validate=strict)."""
    if isinstance(schema, list):
        return [_strict(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _strict(v) for k, v in schema.items()}
    if out.get("nullable") is True and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    if (
        "properties" in out
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
        and not any(k in out for k in ("allOf", "anyOf", "oneOf"))
    ):
        out["additionalProperties"] = False
    return out


def _errors(validator: jsonschema.protocols.Validator, obj: Any) -> list[str]:
    found = []
    for err in sorted(validator.iter_errors(obj), key=lambda e: list(map(str, e.absolute_path))):
        path = ".".join(str(p) for p in err.absolute_path) or "(root)"
        found.append(f"{path}: {err.message[:300]}")
    return found


_K8S_PACKAGE_DIR = "kubernetes-json-schema"


@functools.lru_cache(maxsize=8)
def _k8s_schema_dir(version: str) -> Path | None:
    import kubernetes_validate

    base = Path(kubernetes_validate.__file__).parent / _K8S_PACKAGE_DIR
    candidate = base / f"v{version}.0-local-strict"
    return candidate if candidate.is_dir() else None


def builtin_schema_versions() -> list[str]:
    """Kubernetes minor versions with bundled schemas."""
    import kubernetes_validate

    base = Path(kubernetes_validate.__file__).parent / _K8S_PACKAGE_DIR
    found = {m.group(1) for p in base.iterdir() if (m := re.match(r"v(\d+\.\d+)\.0-local$", p.name))}
    return sorted(found, key=lambda v: tuple(map(int, v.split("."))))


@functools.lru_cache(maxsize=8)
def _k8s_registry(version: str) -> Registry:
    directory = _k8s_schema_dir(version)
    assert directory is not None
    definitions = json.loads((directory / "_definitions.json").read_text())
    registry: Registry[Any] = Registry().with_resource(
        "_definitions.json", Resource.from_contents(definitions, DRAFT202012)
    )
    return registry


def _builtin_file(version: str, api_version: str, kind: str) -> Path | None:
    directory = _k8s_schema_dir(version)
    if directory is None:
        return None
    group_version = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    path = directory / f"{kind.lower()}-{group_version}.json"
    return path if path.exists() else None


@dataclass(frozen=True)
class _CrdSchema:
    schema: dict[str, Any]
    source: str
    structural: bool


# (apiVersion, kind) -> (file under the CRD dir, definition name) for CRDs without a structural schema.
API_SCHEMAS: dict[tuple[str, str], tuple[str, str]] = {
    ("kubeflow.org/v1beta1", "Experiment"): ("katib/openapi-spec.json", "v1beta1.Experiment"),
    ("kubeflow.org/v1beta1", "Trial"): ("katib/openapi-spec.json", "v1beta1.Trial"),
    ("kubeflow.org/v1beta1", "Suggestion"): ("katib/openapi-spec.json", "v1beta1.Suggestion"),
    ("argoproj.io/v1alpha1", "EventSource"): (
        "argo-events/schema.json",
        "io.argoproj.events.v1alpha1.EventSource",
    ),
    ("argoproj.io/v1alpha1", "Sensor"): ("argo-events/schema.json", "io.argoproj.events.v1alpha1.Sensor"),
    ("argoproj.io/v1alpha1", "EventBus"): ("argo-events/schema.json", "io.argoproj.events.v1alpha1.EventBus"),
}


def _describes_spec(schema: dict[str, Any]) -> bool:
    """Whether a CRD schema says anything about ``spec`` beyond "keep whatever is there"."""
    properties = schema.get("properties")
    if not properties:
        return False
    spec = properties.get("spec")
    if spec is None:
        return True  # kinds without a spec (e.g. data-only CRs) are fully described by the rest
    return (
        "properties" in spec
        or "additionalProperties" in spec
        or not spec.get("x-kubernetes-preserve-unknown-fields")
    )


@functools.lru_cache(maxsize=4)
def _index_crds(crd_dir_name: str) -> dict[tuple[str, str], _CrdSchema]:
    """Every (apiVersion, kind) the CRD files under a directory define (parsed once per process)."""
    crd_dir = Path(crd_dir_name)
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    index: dict[tuple[str, str], _CrdSchema] = {}
    for path in sorted(crd_dir.rglob("*.y*ml")):
        try:
            docs = list(yaml.load_all(path.read_text(), Loader=loader))  # noqa: S506 - a safe loader
        except yaml.YAMLError:
            continue
        for doc in docs:
            if not isinstance(doc, dict) or doc.get("kind") != "CustomResourceDefinition":
                continue
            spec = doc.get("spec", {})
            group, kind = spec.get("group"), spec.get("names", {}).get("kind")
            for version in spec.get("versions", []):
                schema = (version.get("schema") or {}).get("openAPIV3Schema")
                if not schema:
                    continue
                rel = path.relative_to(crd_dir).as_posix()
                index[(f"{group}/{version['name']}", kind)] = _CrdSchema(schema, rel, _describes_spec(schema))
    return index


class Validator:
    """Validates objects for one Kubernetes version against bundled schemas and a CRD directory.

    Args:
        kubernetes_version: ``1.NN``; the newest bundled schema not newer than it is used.
        crd_dir: Directory searched recursively for CRD YAML files and upstream API schemas.
    """

    def __init__(self, kubernetes_version: str, crd_dir: Path | None = None) -> None:
        available = builtin_schema_versions()
        want = tuple(map(int, kubernetes_version.split(".")[:2]))
        usable = [v for v in available if tuple(map(int, v.split("."))) <= want]
        if not usable:
            raise ValueError(
                f"no bundled Kubernetes schemas for {kubernetes_version} (have {available[0]}–{available[-1]})"
            )
        self.schema_version = usable[-1]
        self.crd_dir = crd_dir
        self._crds = _index_crds(str(crd_dir)) if crd_dir and crd_dir.is_dir() else {}

    @property
    def crd_count(self) -> int:
        """How many (apiVersion, kind) pairs the CRD directory defines."""
        return len(self._crds)

    def crd_kinds(self) -> list[tuple[str, str, bool, str]]:
        """(apiVersion, kind, has a structural spec schema, source file) for each CRD kind."""
        return sorted((api, kind, s.structural, s.source) for (api, kind), s in self._crds.items())

    def validate(self, obj: dict[str, Any]) -> Result:
        """Validate one object and say how."""
        api_version, kind = obj.get("apiVersion"), obj.get("kind")
        if not isinstance(api_version, str) or not isinstance(kind, str):
            return Result("invalid", ["(root): apiVersion and kind are required"], "")
        builtin = _builtin_file(self.schema_version, api_version, kind)
        if builtin is not None:
            schema = json.loads(builtin.read_text())
            validator = jsonschema.Draft202012Validator(schema, registry=_k8s_registry(self.schema_version))
            errors = _errors(validator, obj)
            source = f"kubernetes {self.schema_version} (strict)"
            return Result("invalid" if errors else "valid", errors, source)
        return self._validate_custom(obj, api_version, kind)

    def _validate_custom(self, obj: dict[str, Any], api_version: str, kind: str) -> Result:
        crd = self._crds.get((api_version, kind))
        api = API_SCHEMAS.get((api_version, kind))
        errors: list[str] = []
        metadata = obj.get("metadata") or {}
        name = metadata.get("name")
        if not isinstance(name, str) or not re.fullmatch(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?", name):
            errors.append(f"metadata.name: {name!r} is not a valid Kubernetes object name")
        if crd is not None and crd.structural:
            validator = jsonschema.Draft7Validator(_strict(_with_object_root(crd.schema)))
            errors += _errors(validator, obj)
            return Result("invalid" if errors else "valid", errors, f"CRD {crd.source}")
        if api is not None and self.crd_dir is not None and (self.crd_dir / api[0]).exists():
            errors += self._validate_api_schema(obj, *api)
            return Result("invalid" if errors else "valid", errors, f"API schema {api[0]}#{api[1]}")
        if crd is not None:
            return Result("unvalidated", [f"CRD {crd.source} has no structural schema for spec"], crd.source)
        return Result("unvalidated", [f"no CRD found for {api_version} {kind}"], "")

    def _validate_api_schema(self, obj: dict[str, Any], file: str, definition: str) -> list[str]:
        assert self.crd_dir is not None, "API schemas are looked up only when a CRD directory is set"
        document, uri, pointer = _api_document(str(self.crd_dir / file))
        registry = Registry().with_resource(uri, Resource.from_contents(document, DRAFT7))
        target = {"$ref": f"{uri}#{pointer}/{definition}"}
        validator = jsonschema.Draft7Validator(target, registry=registry)
        # The API schemas describe metadata as a full ObjectMeta; unknown-field strictness applies.
        return _errors(validator, obj)


_OBJECT_ROOT: dict[str, Any] = {
    "apiVersion": {"type": "string"},
    "kind": {"type": "string"},
    "metadata": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
}


def _with_object_root(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema with apiVersion/kind/metadata at the root, which the API server always allows.

    Some CRDs (Istio's) describe only ``spec`` and ``status``; strictness must not reject the
    object's own header because of that.
    """
    properties = schema.get("properties") or {}
    missing = {k: v for k, v in _OBJECT_ROOT.items() if k not in properties}
    return {**schema, "properties": {**properties, **missing}} if missing else schema


@functools.lru_cache(maxsize=4)
def _api_document(path: str) -> tuple[dict[str, Any], str, str]:
    document = _strict(json.loads(Path(path).read_text()))  # _strict builds a new tree
    document.pop("$id", None)
    document.pop("oneOf", None)
    pointer = "/components/schemas" if "components" in document else "/definitions"
    return document, f"urn:mlplatform:{Path(path).name}", pointer


def validate_custom_resource(
    obj: dict[str, Any], crd_dir: Path, kubernetes_version: str = DEFAULT_KUBERNETES_VERSION
) -> list[str]:
    """Errors of one custom resource against its CRD or API schema; raises if it cannot be checked.

    A convenience for workloads tests (e.g. the Katib Experiment the tuning module renders).
    """
    result = Validator(kubernetes_version, crd_dir).validate(obj)
    if result.status == "unvalidated":
        raise LookupError("; ".join(result.errors))
    return result.errors
