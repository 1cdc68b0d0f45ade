"""``mlp vectordb milvus-restore``: restore a milvus-backup backup, then check every collection's rows."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import click

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
from workloads.milvus_backup_ops import DEFAULT_BACKUPS_URI
from workloads.target import TargetError

BACKUPS_URI_ENV = "MLP_MILVUS_BACKUPS_URI"
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


def _output(target: Any, key: str, env: str, flag: str) -> str:
    if target.outputs is not None:
        try:
            value = target.outputs.require(key)
        except TargetError as error:
            raise BadInput(str(error)) from None
        return str(value.get_secret_value() if hasattr(value, "get_secret_value") else value)
    value = os.environ.get(env)
    if not value:
        raise BadInput(
            f"the local target has no stack outputs: set {env} or pass {flag}, or use --target <stack>"
        )
    return value


@click.command("milvus-restore")
@target_options
@click.option("--backup", required=True, help="Backup name (scheduled ones are scheduled_<yyyymmddHHMMSS>).")
@click.option(
    "--suffix",
    default="_restored",
    show_default=True,
    help="Restore each collection as <collection><suffix>; live collections are never overwritten.",
)
@click.option(
    "--backups-uri",
    envvar=BACKUPS_URI_ENV,
    default=DEFAULT_BACKUPS_URI,
    show_default=True,
    help="Where the backup CronJob writes, s3://<bucket>/<root>.",
)
@click.option(
    "--s3-endpoint", help="Object store endpoint instead of the stack's (e.g. http://localhost:9000)."
)
@click.option("--milvus-uri", help="Milvus URI instead of the stack's (e.g. http://localhost:19530).")
@click.option("--token", envvar="MILVUS_TOKEN", help="Milvus token user:password instead of the stack's.")
@click.option("--tool", help="milvus-backup binary [default: milvus-backup on PATH].")
@click.option(
    "--milvus-root-path",
    default="milvus",
    show_default=True,
    help="Milvus' root path in its bucket (the release name) for a restore run from here.",
)
@click.option(
    "--render-job",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the in-cluster restore (ConfigMap + Job YAML) here and restore nothing; "
    "`kubectl apply -f` it, then run again with --verify-only.",
)
@click.option("--verify-only", is_flag=True, help="Skip the restore; only check the restored collections.")
@json_option
def milvus_restore(
    target: str,
    outputs_file: str | None,
    backup: str,
    suffix: str,
    backups_uri: str,
    s3_endpoint: str | None,
    milvus_uri: str | None,
    token: str | None,
    tool: str | None,
    milvus_root_path: str,
    render_job: Path | None,
    verify_only: bool,
    as_json: bool,
) -> None:
    """Restore a Milvus backup with milvus-backup, then verify it collection by collection.

    The restore runs `milvus-backup restore -n BACKUP -s SUFFIX --rebuild_index` (credentials from
    the environment: MILVUS_PASSWORD is taken from the token, MINIO_ACCESS_KEY/MINIO_SECRET_KEY and
    MINIO_BACKUP_ACCESS_KEY/MINIO_BACKUP_SECRET_KEY must be set), or, with --render-job, is
    written as a Job to run in the cluster. The check reads the row counts the backup recorded
    (its meta in object storage, with the stack's S3 credentials or AWS_ACCESS_KEY_ID/
    AWS_SECRET_ACCESS_KEY), loads each restored collection if needed and compares count(*).

    Exit codes: 0 restored and verified, 1 failed (tool error, unreachable), 2 bad input,
    3 verification failed (fewer or more rows, not loaded, missing; or a malformed backup meta),
    4 no such backup.
    """
    from workloads import milvus_backup_ops as ops

    if not _NAME.match(backup):
        raise BadInput(f"--backup {backup!r}: backup names are letters, digits and '_'")
    if not re.fullmatch(r"[A-Za-z0-9_]+", suffix):
        raise BadInput(
            f"--suffix {suffix!r}: use letters, digits and '_' (e.g. _restored); it may not be empty"
        )
    try:
        location = ops.BackupsLocation.parse(backups_uri)
    except ops.MilvusBackupError as error:
        raise BadInput(f"--backups-uri: {error}") from None

    if render_job is not None:
        import yaml

        from stacks.milvus_restore import stack_restore_manifests

        manifests = stack_restore_manifests(backup, suffix)
        render_job.write_text(yaml.safe_dump_all(manifests, sort_keys=True))
        click.echo(
            f"wrote {render_job}: kubectl apply -f {render_job}, then rerun with --verify-only", err=True
        )
        return

    resolved = resolve_target(target, outputs_file)
    endpoint = s3_endpoint or _output(resolved, keys.S3_ENDPOINT, "MLP_S3_ENDPOINT", "--s3-endpoint")
    s3 = _s3_client(resolved, endpoint)
    try:
        recorded = ops.recorded_counts(ops.read_backup_meta(s3, location, backup))
    except ops.BackupNotFound as error:
        raise NotFound(str(error)) from None
    except ops.BackupMetaError as error:
        raise CheckFailed(f"backup {backup}: {error}") from None
    except ops.MilvusBackupError as error:
        raise Failed(str(error)) from None

    uri = milvus_uri or _output(resolved, keys.MILVUS_URI, "MILVUS_URI", "--milvus-uri")
    secret = token or _output(resolved, keys.MILVUS_TOKEN, "MILVUS_TOKEN", "--token")
    if not verify_only:
        binary = tool or shutil.which("milvus-backup")
        if not binary:
            raise BadInput(
                "milvus-backup is not installed here: pass --tool PATH, or --render-job FILE to run the restore "
                "in the cluster and then --verify-only"
            )
        from stacks.milvus_restore import restore_command, tool_config

        milvus = urlparse(uri)
        store = urlparse(endpoint)
        config = tool_config(
            milvus_host=milvus.hostname or "localhost",
            milvus_port=milvus.port or 19530,
            s3_host=store.hostname or "localhost",
            s3_port=store.port or (443 if store.scheme == "https" else 80),
            s3_ssl=store.scheme == "https",
            milvus_bucket="milvus",
            milvus_root_path=milvus_root_path,
            backup_bucket=location.bucket,
            backup_root_path=location.prefix,
        )
        try:
            ops.run_tool_restore(
                lambda path: restore_command(backup, suffix, tool=binary, config=path),
                config,
                env={"MILVUS_PASSWORD": secret.partition(":")[2]},
            )
        except ops.MilvusBackupError as error:
            raise Failed(str(error)) from None

    from pymilvus import MilvusClient

    try:
        client = MilvusClient(uri=uri, token=secret)
        checks = ops.verify_restore(client, recorded, suffix)
    except Exception as error:  # pymilvus connection / RPC errors
        raise Failed(f"cannot check the restored collections in {uri}: {error}") from None
    failed = [c for c in checks if not c.ok]
    if as_json:
        emit_json({"backup": backup, "suffix": suffix, "collections": [c.to_dict() for c in checks]})
    else:
        for c in checks:
            state = "ok" if c.ok else f"FAILED: {c.problem}"
            click.echo(
                f"{c.db}.{c.restored_as}: {c.actual if c.actual is not None else '-'}/{c.expected} rows, {state}"
            )
    if failed:
        raise CheckFailed(f"{len(failed)} of {len(checks)} restored collections do not match backup {backup}")


def _s3_client(resolved: Any, endpoint: str) -> Any:
    import boto3
    from botocore.config import Config

    if resolved.outputs is not None:
        try:
            key_id = str(resolved.outputs.require(keys.S3_ACCESS_KEY_ID))
            secret = resolved.outputs.require(keys.S3_SECRET_ACCESS_KEY)
        except TargetError as error:
            raise BadInput(str(error)) from None
        secret = secret.get_secret_value() if hasattr(secret, "get_secret_value") else str(secret)
    else:
        key_id, secret = os.environ.get("AWS_ACCESS_KEY_ID", ""), os.environ.get("AWS_SECRET_ACCESS_KEY", "")
        if not key_id or not secret:
            raise BadInput(
                "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (a user that reads the backups bucket)"
            )
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
        region_name="us-east-1",
        config=Config(s3={"addressing_style": "path"}, signature_version="s3v4"),
    )
