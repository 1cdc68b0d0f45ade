"""The chart check on small synthetic charts: template reads, subcharts, schema, pins."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.versions import ChartPin
from stacks.plan.charts_check import chart_findings, chart_reads, check_pin, check_release, check_values

TEMPLATE = """
{{- $root := . -}}
apiVersion: v1
kind: Deployment
metadata:
  name: {{ .Values.nameOverride | default "x" }}
spec:
  replicas: {{ $.Values.replicaCount }}
  {{- with .Values.podSecurityContext }}
  securityContext: {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.service }}
  port: {{ .port }}
  {{- if .annotations }}annotations: yes{{ end }}
  {{- else }}
  other: {{ .fallbackOnly }}
  {{- end }}
  {{- range $name, $cfg := .Values.configs }}
  {{ $name }}: {{ $cfg.file }}
  {{- end }}
  {{- range .Values.extraPorts }}
  - {{ .containerPort }}
  {{- end }}
  enabled: {{ index .Values "kube-thing" "enabled" }}
  helper: {{ include "chart.helper" .Values.helperTree }}
  ctx: {{ .context.Values.contextKey }} {{ $root.Values.rootKey.leaf }}
  {{- if .Values.gate }}gated{{ end }}
"""


def make_chart(
    root: Path,
    name: str = "demo",
    version: str = "1.2.3",
    *,
    app_version: str = "v4.5.6",
    chart_yaml: dict[str, Any] | None = None,
    values: dict[str, Any] | None = None,
    schema: dict[str, Any] | None = None,
    template: str = TEMPLATE,
) -> Path:
    chart_dir = root / name / version
    (chart_dir / "templates").mkdir(parents=True)
    meta = {"apiVersion": "v2", "name": name, "version": version, "appVersion": app_version}
    meta.update(chart_yaml or {})
    (chart_dir / "Chart.yaml").write_text(yaml.safe_dump(meta))
    (chart_dir / "values.yaml").write_text(yaml.safe_dump(values or {}))
    (chart_dir / "templates" / "deployment.yaml").write_text(template)
    if schema is not None:
        (chart_dir / "values.schema.json").write_text(json.dumps(schema))
    return chart_dir


def unknown(chart_dir: Path, values: dict[str, Any]) -> list[str]:
    chart_reads.cache_clear()
    return [f.message.split()[2] for f in check_values(chart_dir, values, "demo") if f.rule == "chart-values"]


def test_keys_read_by_templates_pass(tmp_path: Path) -> None:
    chart = make_chart(tmp_path)
    values = {
        "nameOverride": "n",
        "replicaCount": 2,
        "podSecurityContext": {"runAsNonRoot": True, "anything": {"below": 1}},  # toYaml . in with
        "service": {"port": 80, "annotations": "yes"},  # exact key tested in an if
        "configs": {"one": {"file": "a.yaml"}},  # range $k, $v: each element's .file
        "extraPorts": [{"containerPort": 1}],  # a list is a leaf
        "kube-thing": {"enabled": True},  # index .Values "kube-thing" "enabled"
        "helperTree": {"deep": {"er": 1}},  # include "x" .Values.helperTree: whole subtree
        "contextKey": 1,
        "rootKey": {"leaf": 2},
        "gate": True,
    }
    assert unknown(chart, values) == []


@pytest.mark.parametrize(
    ("values", "bad"),
    [
        ({"replicaCont": 2}, "replicaCont"),
        ({"service": {"prot": 80}}, "service.prot"),  # with rebinding reads only .port/.annotations
        ({"configs": {"one": {"fiel": "a"}}}, "configs.one.fiel"),
        ({"kube-thing": {"enable": True}}, "kube-thing.enable"),
        ({"rootKey": {"leaf2": 1}}, "rootKey.leaf2"),
        ({"gate": {"sub": 1}}, "gate.sub"),  # only tested in an if: keys below are not read
        ({"fallbackOnly": 1}, "fallbackOnly"),  # read relative to service in else: no
    ],
)
def test_keys_no_template_reads_fail(tmp_path: Path, values: dict[str, Any], bad: str) -> None:
    assert unknown(make_chart(tmp_path), values) == [bad]


def test_subchart_keys_and_global_are_accepted(tmp_path: Path) -> None:
    chart = make_chart(
        tmp_path, chart_yaml={"dependencies": [{"name": "postgresql"}, {"name": "redis", "alias": "cache"}]}
    )
    assert unknown(chart, {"postgresql": {"auth": {"x": 1}}, "cache": {"y": 1}, "global": {"z": 1}}) == []
    assert unknown(chart, {"redis": {"y": 1}}) == ["redis.y"]  # aliased: only the alias


def test_chart_without_template_reads_falls_back_to_values_yaml(tmp_path: Path) -> None:
    chart = make_chart(tmp_path, values={"kserve": {"controller": {"image": "x"}}}, template="kind: x\n")
    assert unknown(chart, {"kserve": {"controller": {"image": "y"}}}) == []
    assert unknown(chart, {"kserve": {"controler": {"image": "y"}}}) == ["kserve.controler.image"]


def test_files_directory_is_scanned_like_templates(tmp_path: Path) -> None:
    chart = make_chart(tmp_path, template="kind: x\n")
    (chart / "files").mkdir()
    (chart / "files" / "conf.tpl").write_text("{{ .Values.fromFiles.key }}")
    assert unknown(chart, {"fromFiles": {"key": 1}}) == []
    assert unknown(chart, {"fromFiles": {"other": 1}}) == ["fromFiles.other"]


def test_schema_rejections_are_findings(tmp_path: Path) -> None:
    schema = {
        "type": "object",
        "properties": {"replicaCount": {"type": "integer", "minimum": 1}, "nameOverride": {"type": "string"}},
        "required": ["nameOverride"],
    }
    chart = make_chart(tmp_path, values={"nameOverride": "default"}, schema=schema)
    chart_reads.cache_clear()
    # Defaults are merged in as Helm does, so the required key from values.yaml counts.
    assert check_values(chart, {"replicaCount": 2}, "demo") == []
    assert check_values(chart, {"nameOverride": "[secret]"}, "demo") == []  # placeholders are skipped
    found = check_values(chart, {"replicaCount": 0}, "demo")
    assert [f.rule for f in found] == ["chart-schema"]
    assert "replicaCount" in found[0].message


def test_pin_matching_chart_yaml_passes(tmp_path: Path) -> None:
    make_chart(tmp_path)
    assert check_pin("demo", ChartPin("demo", "1.2.3", "https://x", "v4.5.6"), tmp_path) == []
    # An oci:// pin is named by its last segment; "component vX" app versions compare the version.
    assert check_pin("demo", ChartPin("oci://r/charts/demo", "1.2.3", "", "demo 4.5.6"), tmp_path) == []


@pytest.mark.parametrize(
    ("pin", "words"),
    [
        (ChartPin("demo", "1.2.3", "https://x", "v9.9.9"), "appVersion"),
        (ChartPin("demo", "1.2.4", "https://x", "v4.5.6"), "not held"),
        (ChartPin("other", "1.2.3", "https://x", "v4.5.6"), "no chart of that name"),
    ],
)
def test_pin_disagreeing_with_chart_fails(tmp_path: Path, pin: ChartPin, words: str) -> None:
    make_chart(tmp_path)
    found = check_pin("demo", pin, tmp_path)
    assert [f.rule for f in found] == ["chart-pin"]
    assert words in found[0].message


def test_chart_yaml_name_and_version_mismatch(tmp_path: Path) -> None:
    make_chart(tmp_path, chart_yaml={"name": "renamed", "version": "1.2.9"})
    messages = [f.message for f in check_pin("demo", ChartPin("demo", "1.2.3", "r", "v4.5.6"), tmp_path)]
    assert len(messages) == 2
    assert "Chart.yaml says renamed" in messages[0] and "Chart.yaml says 1.2.9" in messages[1]


def test_placeholder_chart_version_is_taken_from_the_held_directory(tmp_path: Path) -> None:
    make_chart(tmp_path, version="v1.21.1", chart_yaml={"version": "v0.0.0", "appVersion": "v0.0.0"})
    assert check_pin("demo", ChartPin("demo", "v1.21.1", "r", "v1.21.1"), tmp_path) == []


def test_unverifiable_pin_needs_its_allowlist_entry(tmp_path: Path) -> None:
    (tmp_path / "x").mkdir()
    assert check_pin("dcgm-exporter", ChartPin("dcgm-exporter", "4.8.2", "r", "4.8.2"), tmp_path) == []
    assert check_pin("unlisted", ChartPin("unlisted", "1.0.0", "r", "1.0.0"), tmp_path) != []


def test_release_values_checked_and_plan_hook(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    charts = tmp_path / "charts"
    make_chart(charts)
    chart_reads.cache_clear()
    assert [f.rule for f in check_release("demo", "1.2.3", {"typo": 1}, charts)] == ["chart-values"]
    assert check_release("missing", "1.0", {"typo": 1}, charts) == []  # reported by the pin check

    class M:
        kind = "helm-release"
        filename = "helmrelease-ns-demo.yaml"
        document = {"chart": "demo", "version": "1.2.3", "values": {"typo": 1}}

    monkeypatch.setenv("MLP_CHARTS_DIR", str(charts))
    found, note = chart_findings([M()], tmp_path)
    assert note is None
    assert ("helmrelease-ns-demo.yaml", "chart-values") in {(f, r) for f, r, _ in found}
    monkeypatch.setenv("MLP_CHARTS_DIR", str(tmp_path / "absent"))
    assert chart_findings([M()], tmp_path) == ([], chart_findings([M()], tmp_path)[1])
    assert "no charts directory" in str(chart_findings([M()], tmp_path)[1])
