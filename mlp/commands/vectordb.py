"""``mlp vectordb``: list Qdrant snapshot runs in object storage and restore collections from them."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any

import click

from mlp.commands.vectordb_milvus import milvus_restore
from mlp.common import (
    BadInput,
    CheckFailed,
    Failed,
    NotFound,
    emit_json,
    json_option,
    resolve_target,
    target_options,
)
from stacks import outputs as keys
from workloads.target import TargetError
from workloads.vectordb_ops import DEFAULT_SNAPSHOTS_URI

SNAPSHOTS_URI_ENV = "MLP_QDRANT_SNAPSHOTS_URI"

_LOCAL_ENV = {
    keys.QDRANT_API_KEY: "QDRANT_API_KEY",
    keys.S3_ACCESS_KEY_ID: "AWS_ACCESS_KEY_ID",
    keys.S3_SECRET_ACCESS_KEY: "AWS_SECRET_ACCESS_KEY",
}


def _connection_options(command: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(
        [
            click.option(
                "--snapshots-uri",
                envvar=SNAPSHOTS_URI_ENV,
                default=None,
                help="Where the snapshot job writes, s3://<bucket>/<prefix> "
                f"[default: the stack's qdrantSnapshotsUri, else {DEFAULT_SNAPSHOTS_URI}].",
            ),
            click.option(
                "--s3-endpoint",
                help="Object store endpoint to use instead of the stack's in-cluster one "
                "(e.g. http://localhost:9000 with `kubectl -n mlp-data port-forward svc/minio 9000`).",
            ),
        ]
    ):
        command = option(command)
    return command


def _require(target: Any) -> Callable[[str], Any]:
    """Look up a stack output; credentials fall back to their environment variables.

    The local target has no outputs at all; an outputs file written by ``mlp plan`` (or shared
    without ``--show-secrets``) leaves the secret ones out, so the same variables fill them.
    """
    if target.outputs is not None:

        def from_outputs(key: str) -> Any:
            try:
                return target.outputs.require(key)
            except TargetError as error:
                var = _LOCAL_ENV.get(key)
                if var and os.environ.get(var):
                    return os.environ[var]
                hint = f"; set {var}, or export the outputs with --show-secrets" if var else ""
                raise BadInput(f"{error}{hint}") from None

        return from_outputs

    def from_env(key: str) -> Any:
        var = _LOCAL_ENV.get(key)
        value = os.environ.get(var) if var else None
        if value is None:
            hint = f"set {var}" if var else "pass --qdrant-url and --s3-endpoint"
            raise click.UsageError(
                f"the local target has no stack outputs for {key!r}: {hint}, or use --target <stack>"
            )
        return value

    return from_env


def _location(uri: str | None, target: Any) -> Any:
    """``--snapshots-uri``, else the stack's ``qdrantSnapshotsUri`` output, else the default."""
    from workloads import vectordb_ops as ops

    stack_uri = target.outputs.qdrant_snapshots_uri if target.outputs is not None else None
    try:
        return ops.SnapshotsLocation.parse(uri or stack_uri or DEFAULT_SNAPSHOTS_URI)
    except ops.SnapshotError as error:
        raise click.BadParameter(str(error), param_hint="--snapshots-uri") from None


def _size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


@click.group()
def vectordb() -> None:
    """Vector database operations: snapshot runs in object storage, restore.

    A CronJob snapshots every Qdrant collection on every peer and uploads the files to the
    platform's object storage (see docs/vectordb-operations.md). These commands read those runs
    and restore collections from them, using the stack's outputs for endpoints and credentials.
    """


@vectordb.group()
def snapshots() -> None:
    """Qdrant snapshot runs written by the scheduled snapshot job."""


@snapshots.command("list")
@target_options
@_connection_options
@json_option
def list_snapshots(
    target: str, outputs_file: str | None, s3_endpoint: str | None, snapshots_uri: str | None, as_json: bool
) -> None:
    """List snapshot runs, newest first: status, collections, nodes, size.

    Exit codes: 0 listed, 1 storage unreachable or unreadable, 4 no runs yet.
    """
    from workloads import vectordb_ops as ops

    resolved = resolve_target(target, outputs_file)
    require = _require(resolved)
    location = _location(snapshots_uri, resolved)
    conn = ops.Connection(
        qdrant_url="",
        qdrant_api_key="",
        s3_endpoint=s3_endpoint or require(keys.S3_ENDPOINT),
        s3_access_key_id=require(keys.S3_ACCESS_KEY_ID),
        s3_secret_access_key=require(keys.S3_SECRET_ACCESS_KEY),
    )
    try:
        runs = ops.list_runs(conn.s3(), location)
    except ops.SnapshotError as error:
        raise Failed(str(error)) from None
    if as_json:
        emit_json({"location": location.uri, "runs": [r.to_dict() for r in runs]})
    else:
        from rich.console import Console
        from rich.table import Table

        table = Table(title=f"Qdrant snapshot runs in {location.uri}", title_justify="left")
        for column in ("run", "status", "collections", "nodes", "files", "size", "failures"):
            table.add_column(column)
        for run in runs:
            style = {"complete": "green", "partial": "yellow"}.get(run.status, "red")
            table.add_row(
                run.run_id,
                f"[{style}]{run.status}[/]",
                ", ".join(run.collections) or "-",
                str(len(run.nodes)),
                str(len(run.snapshots)),
                _size(run.total_size),
                str(len(run.failures)),
            )
        Console().print(table)
    if not runs:
        raise NotFound(f"no snapshot runs under {location.uri} yet")


@vectordb.command()
@target_options
@_connection_options
@click.option(
    "--run", "run_id", default="latest", show_default=True, help="Run id to restore from, or `latest`."
)
@click.option(
    "--collection",
    "collections",
    multiple=True,
    help="Collection to restore (repeatable); every collection of the run by default.",
)
@click.option(
    "--node", type=int, help="Node whose snapshots to use; required when the run has several nodes."
)
@click.option(
    "--as",
    "restore_as",
    help="New collection for a single restored collection [default: <collection>_<run-id>].",
)
@click.option(
    "--switch-alias/--no-switch-alias",
    default=True,
    show_default=True,
    help="Point the alias named after the collection at the restored one once its count is verified.",
)
@click.option(
    "--method",
    type=click.Choice(["upload", "recover"]),
    default="upload",
    show_default=True,
    help="upload: stream the file through this machine; recover: let Qdrant fetch a presigned S3 URL "
    "(Qdrant must reach the S3 endpoint).",
)
@click.option(
    "--qdrant-url", help="Qdrant URL to restore into instead of the stack's (e.g. http://localhost:6333)."
)
@click.option("--api-key", envvar="QDRANT_API_KEY", help="Qdrant API key instead of the stack's.")
@click.option("--dry-run", is_flag=True, help="Show what would be restored and stop.")
@click.option("--yes", is_flag=True, help="Do not ask before replacing collections.")
@json_option
def restore(
    target: str,
    outputs_file: str | None,
    s3_endpoint: str | None,
    snapshots_uri: str | None,
    run_id: str,
    collections: tuple[str, ...],
    node: int | None,
    restore_as: str | None,
    switch_alias: bool,
    method: str,
    qdrant_url: str | None,
    api_key: str | None,
    dry_run: bool,
    yes: bool,
    as_json: bool,
) -> None:
    """Restore Qdrant collections from a snapshot run.

    Each snapshot goes into a new collection (<collection>_<run-id>, or --as), never over an
    existing one; its exact point count must match the count the snapshot job recorded, and only
    then is the alias named after the collection switched to it (--no-switch-alias leaves
    aliases alone). A failed restore drops the new collection. With several Qdrant peers, every node has its own snapshot of its local shards: restore each
    node with --node N into peer N (--qdrant-url of that pod).

    Exit codes: 0 restored, 1 failed (unreachable, rejected by Qdrant), 2 bad usage,
    3 verification failed (corrupt file, count mismatch; rolled back), 4 no such run or collection.
    """
    from workloads import vectordb_ops as ops

    if restore_as and len(collections) != 1:
        raise click.UsageError("--as needs exactly one --collection")
    resolved = resolve_target(target, outputs_file)
    require = _require(resolved)
    location = _location(snapshots_uri, resolved)
    conn = ops.connection_from_outputs(
        require, qdrant_url=qdrant_url, qdrant_api_key=api_key, s3_endpoint=s3_endpoint
    )
    s3 = conn.s3()
    try:
        run = ops.find_run(ops.list_runs(s3, location), run_id)
        files = ops.plan_restore(run, collections, node)
    except ops.SnapshotError as error:
        raise NotFound(str(error)) from None

    plan: list[dict[str, Any]] = [
        {
            "collection": f.collection,
            "restore_as": restore_as or ops.default_restore_name(f),
            "alias": f.collection if switch_alias else None,
            "node": f.node,
            "key": f.key,
            "size": f.size,
        }
        for f in files
    ]
    if dry_run:
        if as_json:
            emit_json({"run": run.run_id, "qdrant": conn.qdrant_url, "plan": plan})
        else:
            for item in plan:
                click.echo(
                    f"would restore {item['collection']} (node {item['node']}, {_size(item['size'])}) "
                    f"as {item['restore_as']} into {conn.qdrant_url}"
                )
        return
    if not yes:
        names = ", ".join(item["restore_as"] for item in plan)
        click.confirm(f"Restore {names} into {conn.qdrant_url} from run {run.run_id}?", abort=True, err=True)

    qdrant = conn.qdrant()
    chosen: ops.RestoreMethod = "recover" if method == "recover" else "upload"
    results = []
    try:
        from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

        # --json keeps stdout machine-readable: the progress bars are not drawn then.
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            disable=as_json,
        ) as bar:
            for snapshot in files:
                moves = 1 if method == "recover" else 2  # download, then upload
                task = bar.add_task(
                    f"{snapshot.collection} (node {snapshot.node})", total=snapshot.size * moves
                )
                result = ops.restore_snapshot(
                    s3,
                    location.bucket,
                    snapshot,
                    qdrant,
                    restore_as=restore_as,
                    alias=snapshot.collection if switch_alias else None,
                    method=chosen,
                    progress=functools.partial(bar.advance, task),
                )
                bar.update(task, completed=snapshot.size * moves)
                results.append(result)
    except ops.RestoreVerificationError as error:
        raise CheckFailed(str(error)) from None
    except (ops.SnapshotError, ops.QdrantError) as error:
        raise Failed(str(error)) from None

    if as_json:
        emit_json({"run": run.run_id, "restored": [r.to_dict() for r in results]})
        return
    for r in results:
        points = "?" if r.points is None else str(r.points)
        click.echo(
            f"restored {r.collection} as {r.restored_as}: {points} points in {r.seconds:.1f}s ({r.method})"
        )


vectordb.add_command(milvus_restore)
