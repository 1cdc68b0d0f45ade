"""Chart pins and Helm values checked against the pinned charts themselves.

Helm silently ignores a values key that no template reads, so a typo deploys a default. This module
reads the upstream chart files held in a charts directory (``<charts>/<chart>/<version>/`` with
``Chart.yaml``, ``values.yaml``, ``values.schema.json`` where the chart has one, ``templates/`` and
``files/`` where held) and reports:

* ``chart-values``: a values key the program passes that no template reads;
* ``chart-schema``: values that the chart's ``values.schema.json`` rejects (checked, as Helm does,
  on the chart defaults merged with the values passed);
* ``chart-pin``: a pin in :data:`components.versions.CHARTS` whose chart is not held, or whose
  name, version or appVersion disagrees with the chart's own ``Chart.yaml``.

How a template "reads" a key: the scanner walks every ``{{ ... }}`` action in order and follows

* paths reached from the values root: ``.Values.a.b``, ``$.Values.a``, ``$root.Values.a``,
  ``.context.Values.a``, ``.local.Values.a`` (any field chain through ``Values``);
* ``with`` / ``range`` rebinding of ``.`` (``range`` binds each element, written ``*``), ``else``
  restoring the outer ``.``, and variables (``$x := .Values.a``, ``range $k, $v := .Values.a``);
* ``index``/``get``/``hasKey`` with string keys: ``index .Values "kube-state-metrics" "enabled"``.

A reference used whole (``toYaml .Values.a``, ``include "x" .Values.a``, ``toYaml .`` inside
``with .Values.a``, a printed leaf) makes every key under it acceptable; a reference that is only
tested in an ``if``/``with``/``range`` header accepts that exact key, not keys below it. Keys under
a subchart's name or alias (``Chart.yaml``/``requirements.yaml`` dependencies) and ``global`` are
read by charts not held here and are accepted.
"""

from __future__ import annotations

import functools
import json
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import jsonschema
import yaml

from components.versions import CHARTS, ChartPin

CHARTS_DIR_ENV: Final = "MLP_CHARTS_DIR"

UNVERIFIABLE_PINS: Final[dict[str, str]] = {
    "dcgm-exporter": (
        "the dcgm-exporter chart is not among the held upstream charts (no dcgm-exporter/ folder); "
        "4.8.2 is the newest release in upstream's chart index, so its values cannot be checked here"
    ),
    "kserve-runtime-configs": (
        "KServe's ClusterServingRuntimes chart (split out of the controller chart in v0.17) is not among "
        "the held charts; the one value passed, kserve.servingruntime.enabled, is the switch its README names"
    ),
}
"""Pins whose chart is not held, each with the reason; any other missing chart is a finding."""

PLACEHOLDER_VERSIONS: Final = frozenset({"v0.0.0", "0.0.0", "v1.0.0-devel"})
"""``Chart.yaml`` versions that a release tool fills in at packaging time (cert-manager's
``v0.0.0``): the pin's version is then taken from the directory the chart is held under."""

WILDCARD: Final = "*"
Path_ = tuple[str, ...]


@dataclass
class ChartFinding:
    """One problem: the rule, the chart, and what is wrong."""

    rule: str
    chart: str
    message: str


@dataclass
class ChartReads:
    """What a chart's templates read.

    Attributes:
        open: Paths read whole: every key under them is acceptable.
        exact: Paths only tested (``if``/``with``/``range`` headers): that key itself is acceptable.
        subcharts: Top-level keys that belong to subcharts (names and aliases).
        fallback: Leaf paths of ``values.yaml`` accepted because the chart's templates are incomplete.

    """

    open: set[Path_] = field(default_factory=set)
    exact: set[Path_] = field(default_factory=set)
    subcharts: set[str] = field(default_factory=set)
    fallback: set[Path_] = field(default_factory=set)

    def accepts(self, key: Path_) -> bool:
        """Whether a values key (a leaf path of the values passed) is read by some template."""
        if not key or key[0] in self.subcharts or key[0] == "global":
            return True
        if key in self.fallback:
            return True
        for read in self.open:
            if len(read) <= len(key) and _match(read, key[: len(read)]):
                return True
        for read in self.open | self.exact:
            # An empty map or a list passed where templates read below it, or the exact key tested.
            if len(read) >= len(key) and _match(read[: len(key)], key):
                return True
        return False


def _match(pattern: Path_, key: Path_) -> bool:
    return all(p == WILDCARD or p == k for p, k in zip(pattern, key, strict=True))


# --- template scanning ---------------------------------------------------------------------------

_ACTION = re.compile(r"\{\{-?\s*(.*?)\s*-?\}\}", re.S)
_TOKEN = re.compile(
    r"""(?P<str>"(?:[^"\\]|\\.)*"|`[^`]*`)
      |(?P<var>\$[A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
      |(?P<num>-?\d+(?:\.\d+)?)
      |(?P<dot>\.(?:[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)?)
      |(?P<word>[A-Za-z_][A-Za-z0-9_]*)
      |(?P<assign>:?=)
      |(?P<op>[()|,])""",
    re.X,
)
_KEY_FUNCS: Final = frozenset({"index", "get", "hasKey", "pluck"})
_HEADERS: Final = frozenset({"if", "with", "range"})


@dataclass
class _Tok:
    kind: str
    text: str
    after_paren: bool = False


@dataclass
class _Frame:
    keyword: str
    dot: Path_ | None
    outer_dot: Path_ | None
    vars: dict[str, Path_ | None]


def _tokens(action: str) -> list[_Tok]:
    out: list[_Tok] = []
    for m in _TOKEN.finditer(action):
        kind = m.lastgroup or "op"
        after_paren = kind == "dot" and m.start() > 0 and action[m.start() - 1] == ")"
        out.append(_Tok(kind, m.group(), after_paren))
    return out


class _Scanner:
    """Walks one template file's actions and records the values paths it reads."""

    def __init__(self, reads: ChartReads) -> None:
        self.reads = reads
        self.stack: list[_Frame] = [_Frame("file", None, None, {})]

    @property
    def frame(self) -> _Frame:
        return self.stack[-1]

    def resolve(self, tok: _Tok) -> Path_ | None:
        """The values path a reference token denotes, or None when it is not a values path."""
        if tok.after_paren:
            return None
        if tok.kind == "var":
            head, *fields = tok.text.split(".")
            if "Values" in fields:
                return tuple(fields[fields.index("Values") + 1 :])
            if head == "$":
                return None
            base = self.frame.vars.get(head)
            return None if base is None else base + tuple(fields)
        if tok.kind == "dot":
            fields = [f for f in tok.text.split(".") if f]
            if "Values" in fields:
                return tuple(fields[fields.index("Values") + 1 :])
            dot = self.frame.dot
            return None if dot is None else dot + tuple(fields)
        return None

    def record(self, path: Path_ | None, *, exact: bool) -> None:
        if not path:
            return  # the whole values root never opens every key
        (self.reads.exact if exact else self.reads.open).add(path)

    def refs(self, toks: list[_Tok], *, exact: bool) -> None:
        """Record every reference in a token list; ``index X "a"`` chains are resolved first."""
        i = 0
        while i < len(toks):
            tok = toks[i]
            if tok.kind == "word" and tok.text in _KEY_FUNCS and i + 1 < len(toks):
                base = self.resolve(toks[i + 1])
                j = i + 2
                keys: list[str] = []
                while j < len(toks) and toks[j].kind == "str":
                    keys.append(toks[j].text[1:-1])
                    j += 1
                if base is not None and keys:
                    self.record(base + tuple(keys), exact=exact)
                    i = j
                    continue
            if tok.kind in ("var", "dot"):
                self.record(self.resolve(tok), exact=exact)
            i += 1

    def assignment(self, toks: list[_Tok]) -> list[_Tok]:
        """Bind ``$x := <single reference>``; return the tokens that remain to be recorded."""
        if len(toks) >= 3 and toks[0].kind == "var" and toks[1].kind == "assign":
            rest = toks[2:]
            if len(rest) == 1:
                self.frame.vars[toks[0].text] = self.resolve(rest[0])
                return []
            self.frame.vars[toks[0].text] = None
            return rest
        return toks

    def action(self, text: str) -> None:
        if text.startswith("/*"):
            return
        toks = _tokens(text)
        if not toks:
            return
        first = toks[0].text if toks[0].kind == "word" else ""
        if first == "end":
            if len(self.stack) > 1:
                self.stack.pop()
            return
        if first == "else":
            frame = self.frame
            frame.dot = frame.outer_dot
            if len(toks) > 1 and toks[1].text in _HEADERS:
                self.header(toks[1].text, toks[2:], frame, push=False)
            return
        if first in _HEADERS:
            frame = _Frame(first, self.frame.dot, self.frame.dot, dict(self.frame.vars))
            self.stack.append(frame)
            self.header(first, toks[1:], frame, push=True)
            return
        if first in ("define", "block"):
            self.stack.append(_Frame(first, None, None, {}))
            if first == "block":
                self.refs(toks[2:], exact=False)
            return
        self.refs(self.assignment(toks), exact=False)

    def header(self, keyword: str, toks: list[_Tok], frame: _Frame, *, push: bool) -> None:
        names: list[str] = []
        while toks and toks[0].kind == "var" and len(toks) > 1 and toks[1].text in (",", ":=", "="):
            names.append(toks[0].text)
            toks = toks[2:] if toks[1].text != "," else toks[2:]
        single = self.resolve(toks[0]) if len(toks) == 1 and toks[0].kind in ("var", "dot") else None
        # Header references are resolved in the outer scope.
        saved = frame.dot
        frame.dot = frame.outer_dot
        self.refs(toks, exact=True)
        frame.dot = saved
        if keyword == "if":
            return
        bound = None if single is None else (single + (WILDCARD,) if keyword == "range" else single)
        frame.dot = bound
        if names:
            frame.vars[names[-1]] = bound
            if keyword == "range" and len(names) == 2:
                frame.vars[names[0]] = None

    def scan(self, text: str) -> None:
        for m in _ACTION.finditer(text):
            self.action(m.group(1).strip())


def _iter_template_files(chart_dir: Path) -> Iterator[Path]:
    for sub in ("templates", "files"):
        base = chart_dir / sub
        if base.is_dir():
            yield from sorted(p for p in base.rglob("*") if p.is_file())


def _load_yaml(path: Path) -> Any:
    if not path.is_file():
        return None
    return yaml.safe_load(path.read_text(encoding="utf-8"))


UNHELD_DEPENDENCIES: Final[dict[str, frozenset[str]]] = {
    # milvus declares its subcharts in requirements.yaml, which is not among the held files;
    # the names are the ones the held charts' SOURCES.md lists for it.
    "milvus": frozenset({"etcd", "minio", "pulsar", "pulsarv3", "kafka", "tei"}),
}
"""Subchart keys of charts whose dependency list is not held, by chart name."""


def subchart_keys(chart_dir: Path) -> set[str]:
    """Names and aliases of the chart's dependencies (``Chart.yaml`` and ``requirements.yaml``)."""
    keys: set[str] = set(UNHELD_DEPENDENCIES.get(chart_dir.parent.name, ()))
    for name in ("Chart.yaml", "requirements.yaml"):
        doc = _load_yaml(chart_dir / name) or {}
        for dep in doc.get("dependencies") or []:
            if isinstance(dep, dict):
                key = dep.get("alias") or dep.get("name")  # an alias replaces the name in values
                if key:
                    keys.add(str(key))
    return keys


def leaf_paths(values: Any, prefix: Path_ = ()) -> Iterator[Path_]:
    """Every leaf path of a values tree (lists and empty maps are leaves)."""
    if isinstance(values, Mapping) and values:
        for key, value in values.items():
            yield from leaf_paths(value, (*prefix, str(key)))
    elif prefix:
        yield prefix


@functools.lru_cache(maxsize=64)
def chart_reads(chart_dir: Path) -> ChartReads:
    """Scan a held chart's templates (and ``files/``) for the values paths they read.

    When the chart holds neither ``templates/`` nor ``files/`` with any values reference, the
    leaf paths of its ``values.yaml`` are accepted instead (the templates are not held).
    """
    reads = ChartReads(subcharts=subchart_keys(chart_dir))
    for path in _iter_template_files(chart_dir):
        _Scanner(reads).scan(path.read_text(encoding="utf-8", errors="replace"))
    if not reads.open and not reads.exact:
        reads.fallback = set(leaf_paths(_load_yaml(chart_dir / "values.yaml") or {}))
    return reads


# --- values, schema and pins ---------------------------------------------------------------------

_PLACEHOLDERS: Final = ("[secret]", "[unknown]")


def _merge(base: Any, over: Any) -> Any:
    """Helm's coalescing of user values over chart defaults (``null`` removes a default)."""
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for key, value in over.items():
            if value is None:
                out.pop(key, None)
            else:
                out[key] = _merge(base.get(key), value)
        return out
    return over


def chart_name(pin_or_chart: ChartPin | str) -> str:
    """The chart's own name: the last segment of an ``oci://`` reference, else the chart name."""
    chart = pin_or_chart.chart if isinstance(pin_or_chart, ChartPin) else pin_or_chart
    return chart.rstrip("/").rsplit("/", 1)[-1]


def check_values(chart_dir: Path, values: Mapping[str, Any], label: str) -> list[ChartFinding]:
    """Unknown keys and schema errors of the values passed to one held chart."""
    findings: list[ChartFinding] = []
    reads = chart_reads(chart_dir)
    for key in leaf_paths(values):
        if not reads.accepts(key):
            findings.append(
                ChartFinding(
                    "chart-values",
                    label,
                    f"values key {'.'.join(key)} is read by no template of {label}: a typo or a "
                    "key of another chart version (Helm would ignore it)",
                )
            )
    schema_file = chart_dir / "values.schema.json"
    if schema_file.is_file():
        schema = json.loads(schema_file.read_text(encoding="utf-8"))
        merged = _merge(_load_yaml(chart_dir / "values.yaml") or {}, dict(values))
        validator_cls = jsonschema.validators.validator_for(schema)
        for error in sorted(validator_cls(schema).iter_errors(merged), key=lambda e: list(e.absolute_path)):
            if error.instance in _PLACEHOLDERS:
                continue  # a secret or unknown the plan cannot see; the chart gets the real value
            where = ".".join(str(p) for p in error.absolute_path) or "(root)"
            findings.append(
                ChartFinding("chart-schema", label, f"values.schema.json rejects {where}: {error.message}")
            )
    return findings


def _norm(version: str) -> str:
    return str(version).strip().removeprefix("v")


def check_pin(name: str, pin: ChartPin, charts_dir: Path) -> list[ChartFinding]:
    """Whether one pin matches the chart held under ``charts_dir`` (name, version, appVersion)."""
    chart = chart_name(pin)
    label = f"{chart}@{pin.version}"
    chart_dir = charts_dir / chart / pin.version
    if not (chart_dir / "Chart.yaml").is_file():
        if name in UNVERIFIABLE_PINS:
            return []
        held = sorted(p.name for p in (charts_dir / chart).iterdir()) if (charts_dir / chart).is_dir() else []
        hint = f" (held versions: {', '.join(held)})" if held else " (no chart of that name is held)"
        return [
            ChartFinding(
                "chart-pin",
                label,
                f"pin {name!r}: chart {chart} {pin.version} is not held{hint}; pin a held release or "
                "list the pin in UNVERIFIABLE_PINS with the reason",
            )
        ]
    meta = _load_yaml(chart_dir / "Chart.yaml") or {}
    findings: list[ChartFinding] = []
    if meta.get("name") != chart:
        findings.append(
            ChartFinding(
                "chart-pin", label, f"pin {name!r} names chart {chart}, Chart.yaml says {meta.get('name')}"
            )
        )
    version = str(meta.get("version", ""))
    placeholder = version in PLACEHOLDER_VERSIONS
    if not placeholder and _norm(version) != _norm(pin.version):
        findings.append(
            ChartFinding(
                "chart-pin", label, f"pin {name!r} is version {pin.version}, Chart.yaml says {version}"
            )
        )
    app = str(meta.get("appVersion", ""))
    pinned_app = pin.app_version.split()[-1] if pin.app_version else ""
    if app and not (placeholder and app in PLACEHOLDER_VERSIONS) and _norm(app) != _norm(pinned_app):
        findings.append(
            ChartFinding(
                "chart-pin",
                label,
                f"pin {name!r} says appVersion {pin.app_version}, the chart ships {app}",
            )
        )
    return findings


def check_pins(charts_dir: Path, pins: Mapping[str, ChartPin] = CHARTS) -> list[ChartFinding]:
    """Every pin checked against the held charts."""
    findings: list[ChartFinding] = []
    for name, pin in sorted(pins.items()):
        findings += check_pin(name, pin, charts_dir)
    return findings


def check_release(
    chart: str, version: str, values: Mapping[str, Any], charts_dir: Path
) -> list[ChartFinding]:
    """Check the values of one Helm release (its chart as the plan recorded it)."""
    name = chart_name(chart)
    chart_dir = charts_dir / name / version
    label = f"{name}@{version}"
    if not (chart_dir / "Chart.yaml").is_file():
        return []  # reported once by the pin check (held or explicitly unverifiable)
    return check_values(chart_dir, values, label)


def default_charts_dir(root: Path | None = None) -> Path | None:
    """``$MLP_CHARTS_DIR``, else ``../shared/charts`` beside the project; None when neither exists."""
    env = os.environ.get(CHARTS_DIR_ENV)
    if env:
        return Path(env)
    if root is not None:
        beside = root.resolve().parent / "shared" / "charts"
        if beside.is_dir():
            return beside
    return None


def chart_findings(rendered: Sequence[Any], root: Path) -> tuple[list[tuple[str, str, str]], str | None]:
    """The plan's chart check: every pin, and the values of every rendered Helm release.

    Args:
        rendered: The plan's manifests (objects with ``kind``, ``filename`` and ``document``).
        root: The project root (the charts directory defaults to ``../shared/charts`` beside it).

    Returns:
        ``(file, rule, message)`` findings, and a note when no charts directory was found
        (the check could not run; ``mlp plan --strict`` fails on it).

    """
    charts_dir = default_charts_dir(root)
    if charts_dir is None or not charts_dir.is_dir():
        return [], (
            f"chart check: no charts directory (set ${CHARTS_DIR_ENV} or put the held charts in "
            "../shared/charts): chart pins and values unchecked"
        )
    found = [("components/versions.py", f.rule, f"{f.chart}: {f.message}") for f in check_pins(charts_dir)]
    for manifest in rendered:
        if manifest.kind != "helm-release":
            continue
        doc = manifest.document
        for f in check_release(
            str(doc.get("chart")), str(doc.get("version")), doc.get("values") or {}, charts_dir
        ):
            found.append((manifest.filename, f.rule, f.message))
    return found, None
