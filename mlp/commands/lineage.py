"""``mlp lineage``: where a registered model version came from."""

from __future__ import annotations

import click

from mlp.common import BadInput, Failed, NotFound, json_option, resolve_target, target_options


@click.command()
@click.argument("ref", metavar="MODEL@ALIAS|MODEL/VERSION")
@target_options
@json_option
def lineage(ref: str, target: str, outputs_file: str | None, as_json: bool) -> None:
    """Show the lineage of a registered model version.

    REF is `<model>@<alias>` (e.g. `breast-cancer-classifier@champion`) or `<model>/<version>`.
    Prints the data hash, MLflow and pipeline run ids, tuning study, parameters, metrics, quality
    gate and git commit recorded when the version was registered.

    Exit codes: 0 found, 1 the registry could not be read, 2 a malformed REF, 4 no such model
    version (or no local MLflow database yet).
    """
    from rich.console import Console
    from rich.table import Table

    from workloads import registry

    resolved = resolve_target(target, outputs_file)
    if resolved.is_local and not (resolved.home / "mlflow.db").exists():
        raise NotFound(
            f"no local MLflow database in {resolved.home}: run `mlp demo` or `mlp pipeline run` first"
        )
    try:
        registry.parse_model_ref(ref)
    except registry.RegistryError as error:
        raise BadInput(str(error)) from None
    try:
        found = registry.lineage(ref, resolved.mlflow_tracking_uri)
    except registry.RegistryError as error:
        raise NotFound(str(error)) from None
    except Exception as error:  # noqa: BLE001 - SQLAlchemy/MLflow errors of a damaged store
        raise Failed(
            f"cannot read the model registry at {resolved.mlflow_tracking_uri}: {type(error).__name__}: "
            f"{str(error).splitlines()[0] if str(error) else ''} (a damaged local database: move "
            f"{resolved.home / 'mlflow.db'} aside and rerun `mlp demo`)"
        ) from None
    if as_json:
        click.echo(registry.dumps(found.to_dict()))
        return
    console = Console()
    table = Table(title=f"{found.model_name} v{found.version}", show_header=False, title_justify="left")
    table.add_column("field", style="bold cyan")
    table.add_column("value", overflow="fold")
    rows = [
        ("aliases", ", ".join(found.aliases) or "-"),
        ("created", found.created),
        ("data hash", found.data_hash),
        ("git commit", found.git_commit),
        ("mlflow run", f"{found.run_id} ({found.experiment})"),
        ("pipeline run", f"{found.pipeline_run_id} ({found.pipeline_run_name})"),
        ("tuning run", found.tuning_run_id or "-"),
        ("model source", found.source),
        ("params", ", ".join(f"{k}={v}" for k, v in sorted(found.params.items()))),
        (
            "metrics",
            ", ".join(f"{k}={v:.4f}" for k, v in sorted(found.metrics.items()) if k != "train_log_loss"),
        ),
        ("gate", f"{found.gate['metric']} >= {found.gate['threshold']} -> {found.gate['passed']}"),
        ("promotion", found.gate["promotion"]),
    ]
    if found.tuning.get("metrics"):
        best = {k: v for k, v in found.tuning["metrics"].items() if k.startswith("best_")}
        rows.append(("tuning", ", ".join(f"{k}={v:.4f}" for k, v in best.items())))
    for name, value in rows:
        table.add_row(name, value)
    console.print(table)
