"""The platform layer's components under recording mocks: scraping, secrets by reference."""

from __future__ import annotations

from components.kubeflow import pipelines


def test_kfp_declares_the_scrapes_the_row_needs() -> None:
    import pulumi

    from stacks.plan.harness import clean, run_program

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
