"""``mlp rag`` store operations: collections, alias, drop, backup, restore, crash-test."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import click

from mlp.common import ExitCode, exit_with, target_options

from .options import (
    AppOptions,
    alias_option,
    app_options,
    backend_option,
    emit_json,
    errors,
    json_option,
)


@click.command()
@backend_option
@app_options(target_options)
@json_option
def collections(backend: str, app_options: AppOptions, as_json: bool) -> None:
    """List collections, their point counts and the aliases pointing at them."""
    from workloads.rag.app import parse_backends

    data: dict[str, Any] = {}
    with errors(), app_options.open() as app:
        for name in parse_backends(backend):
            store = app.store(name)
            aliases = store.aliases()
            data[name] = {
                "engine": store.engine,
                "location": store.describe(),
                "collections": {c: store.count(c) for c in store.list_collections()},
                "aliases": aliases,
            }
    if as_json:
        emit_json(data)
        return
    for label, info in data.items():
        click.echo(f"{label} ({info['location']})")
        for collection, count in info["collections"].items():
            pointed = [a for a, c in info["aliases"].items() if c == collection]
            click.echo(f"  {collection}: {count} points" + (f"  <- {', '.join(pointed)}" if pointed else ""))


@click.command()
@click.argument("alias_name")
@click.argument("collection")
@backend_option
@app_options(target_options)
def alias(alias_name: str, collection: str, backend: str, app_options: AppOptions) -> None:
    """Point ALIAS_NAME at COLLECTION atomically (e.g. roll back after a re-index with --keep-old)."""
    from workloads.rag.app import parse_backends

    with errors(), app_options.open() as app:
        for name in parse_backends(backend):
            app.store(name).set_alias(alias_name, collection)
            click.echo(f"{name}: {alias_name} -> {collection}")


@click.command()
@click.argument("collection")
@backend_option
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@app_options(target_options)
def drop(collection: str, backend: str, yes: bool, app_options: AppOptions) -> None:
    """Delete COLLECTION (and aliases pointing at it)."""
    from workloads.rag.app import parse_backends

    if not yes:
        click.confirm(f"Delete collection {collection!r} ({backend})?", abort=True)
    with errors(), app_options.open() as app:
        for name in parse_backends(backend):
            store = app.store(name)
            if store.has_collection(collection):
                store.drop_collection(collection)
                click.echo(f"{name}: dropped {collection}")
            else:
                click.echo(f"{name}: no collection {collection}")


@click.command()
@backend_option
@click.option("--collection", default=None, help="Collection or alias to back up (default: the index alias).")
@click.option(
    "--kind",
    type=click.Choice(["native", "logical"]),
    default="native",
    show_default=True,
    help="native: the engine's snapshot (same engine only); logical: portable points.",
)
@click.option(
    "--out-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Directory for the archives (default: .mlp/rag/backups).",
)
@app_options(target_options)
@json_option
def backup(
    backend: str,
    collection: str | None,
    kind: str,
    out_dir: Path | None,
    app_options: AppOptions,
    as_json: bool,
) -> None:
    """Write a backup archive per backend.

    Each archive is a gzip-compressed tar whose manifest records the engine, dimension, point
    count, a digest of the point ids, probe vectors and every member's sha256; `mlp rag restore`
    checks all of them.
    """
    import time as _time

    from workloads.rag.app import parse_backends

    written = []
    with errors(), app_options.open() as app:
        directory = out_dir or app.settings.backups_path
        stamp = _time.strftime("%Y%m%dT%H%M%SZ", _time.gmtime())
        for name in parse_backends(backend):
            store = app.store(name)
            chosen = kind if (kind == "logical" or store.engine != "milvus-server") else "logical"
            archive = directory / f"{name}-{collection or app.settings.alias}-{stamp}-{chosen}.tar.gz"
            manifest = store.backup(collection or app.settings.alias, archive, kind=chosen)  # type: ignore[arg-type]
            info = {k: v for k, v in manifest.to_dict().items() if k not in ("probe", "files")}
            written.append({"backend": name, "archive": str(archive), "files": len(manifest.files), **info})
    if as_json:
        emit_json(written)
        return
    for item in written:
        click.echo(
            f"{item['backend']}: {item['count']} points of {item['collection']} -> {item['archive']} ({item['kind']})"
        )


@click.command()
@click.argument("archive", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--backend", type=click.Choice(["qdrant", "milvus"]), required=True, help="Store to restore into."
)
@click.option("--collection", required=True, help="New collection to create (must not exist).")
@click.option(
    "--switch-alias", is_flag=True, help="Point the index alias at the restored collection afterwards."
)
@app_options(alias_option, target_options)
@json_option
def restore(
    archive: Path, backend: str, collection: str, switch_alias: bool, app_options: AppOptions, as_json: bool
) -> None:
    """Restore ARCHIVE into a new collection, verified, then optionally switch the alias.

    Every archive member's sha256, the point count, the point ids and probe vectors are checked
    against the manifest written at backup time; the alias is switched only after all match. A
    damaged, truncated or forged archive, or a mismatch, exits 3 and leaves nothing behind (the
    new collection is dropped), so the same command can be retried.
    """
    with errors(), app_options.open() as app:
        store = app.store(backend)  # type: ignore[arg-type]
        report = store.restore(archive, collection)
        if switch_alias:
            store.set_alias(app.settings.alias, collection)
    data = {**report.__dict__, "ok": report.ok, "alias_switched": switch_alias}
    if as_json:
        emit_json(data)
    else:
        click.echo(
            f"Restored {report.restored}/{report.expected} points into {collection} ({report.kind}) "
            f"in {report.seconds:.2f} s" + (f"; {app.settings.alias} -> {collection}" if switch_alias else "")
        )


@click.command("crash-test")
@click.option("--backend", type=click.Choice(["qdrant", "milvus", "all"]), default="all", show_default=True)
@click.option(
    "--kills", type=click.IntRange(1, 50), default=4, show_default=True, help="SIGKILLs to deliver."
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seeds the kill times.")
@click.option(
    "--workdir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Keep the stores here for inspection (default: a temporary directory).",
)
@json_option
def crash_test(backend: str, kills: int, seed: int, workdir: Path | None, as_json: bool) -> None:
    """Kill an ingesting writer with SIGKILL at random points; verify acknowledged points survive.

    Checks that every acknowledged point is present, with no duplicates, no phantoms and intact
    vectors, on the embedded engines (Qdrant Edge, Milvus Lite). Exit code 3 on a failure.
    """
    from workloads.rag.app import parse_backends
    from workloads.rag.crashcheck import run_crash_test

    reports = []
    with tempfile.TemporaryDirectory(prefix="mlp-rag-crash-") as scratch:
        base = workdir or Path(scratch)
        for name in parse_backends(backend):
            reports.append(run_crash_test(name, base / name, kills=kills, seed=seed))
    if as_json:
        emit_json([r.to_dict() for r in reports])
    else:
        for report in reports:
            check = report.after_completion or report.after_kills
            verdict = "OK" if report.ok else "FAILED"
            click.echo(
                f"{report.engine}: {verdict} after {report.kills} kills ({report.runs} runs, "
                f"{report.after_kills.acked_points} points acknowledged before the last kill, "
                f"{check.present} present at the end) in {report.seconds:.1f} s"
            )
            if not report.ok:
                click.echo(json.dumps(report.to_dict(), indent=2), err=True)
    if not all(r.ok for r in reports):
        exit_with(ExitCode.CHECK_FAILED)
