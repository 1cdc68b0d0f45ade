"""The platform layer's components under recording mocks: scraping, secrets by reference."""

from __future__ import annotations

import pytest

from components.kubeflow import pipelines
from stacks.plan.harness import clean, run_program


def test_kfp_declares_the_scrapes_the_row_needs() -> None:
    import pulumi

    def program() -> None:
        pipelines.KubeflowPipelines(
            "kfp",
            pipelines.PipelinesArgs(
                s3_host="minio", s3_port=9000, bucket="pipelines", access_key_id="id", secret_access_key="key"
            ),
            opts=pulumi.ResourceOptions(),
        )

    run = run_program(program, stack="test")
    monitors = {
        r.name: clean(r.inputs)["spec"] for r in run.registrations if r.type.endswith(":ServiceMonitor")
    }
    selectors = {name: spec["selector"]["matchLabels"] for name, spec in monitors.items()}
    assert selectors == {
        "kfp-api-metrics": {"app": "ml-pipeline"},
        "kfp-workflow-controller-metrics": {"app": "workflow-controller"},
    }
    # The workflow controller serves its metrics over TLS with a self-signed certificate.
    [controller] = monitors["kfp-workflow-controller-metrics"]["endpoints"]
    assert controller["scheme"] == "https" and controller["tlsConfig"] == {"insecureSkipVerify": True}
    [api] = monitors["kfp-api-metrics"]["endpoints"]
    assert api["scheme"] == "http" and "tlsConfig" not in api


@pytest.mark.slow
def test_disabled_services_are_not_declared_and_export_nothing() -> None:
    from stacks import outputs
    from stacks.config import parse_config, project_root, stack_file_config, without_namespace
    from stacks.program import program

    raw = dict(stack_file_config("dev", project_root()))
    raw["mlplatform:platform"] = {
        "kfp": {"enabled": False},
        "katib": {"enabled": False},
        "events": {"enabled": False},
        "mlflow": {"enabled": True, "replicas": 3},
    }
    parse_config(without_namespace(raw), "dev")
    run = run_program(program, stack="dev", config=raw)
    types = {r.type for r in run.registrations}
    assert "mlplatform:tracking:TrackingServer" in types
    assert not types & {
        "mlplatform:kubeflow:Pipelines",
        "mlplatform:kubeflow:Katib",
        "mlplatform:events:DatasetEvents",
    }
    assert outputs.MLFLOW_TRACKING_URI in run.exports
    assert not {outputs.KFP_ENDPOINT, outputs.KATIB_NAMESPACE, outputs.DATASET_WEBHOOK_URL} & set(run.exports)
    [release] = [r for r in run.registrations if r.name == "mlflow-release"]
    assert clean(release.inputs)["values"]["replicaCount"] == 3


def test_kubeflow_namespace_gets_pod_security_labels_and_default_deny_once() -> None:
    """The upstream bundles create `kubeflow`; the platform labels it and fences it, exactly once."""
    from components.security import platform_namespace_labels
    from stacks.config import load_stack_file
    from stacks.plan.harness import run_program
    from stacks.program import build, export_all

    cfg = load_stack_file("dev")
    run = run_program(lambda: export_all(build(cfg)), stack="dev")
    patches = [r for r in run.registrations if r.type == "kubernetes:core/v1:NamespacePatch"]
    assert [p.inputs["metadata"]["name"] for p in patches] == ["kubeflow"]
    assert patches[0].inputs["metadata"]["labels"] == platform_namespace_labels("kubeflow")
    policies = {
        r.inputs["metadata"]["name"]
        for r in run.registrations
        if r.type == "kubernetes:networking.k8s.io/v1:NetworkPolicy"
        and r.inputs["metadata"]["namespace"] == "kubeflow"
    }
    assert {"default-deny-ingress", "allow-pipelines-api", "allow-webhooks"} <= policies
