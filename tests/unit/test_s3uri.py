"""One ``s3://bucket/prefix`` parser for the Qdrant snapshot runs and the Milvus backups."""

from __future__ import annotations

import pytest

from workloads import milvus_backup_ops, vectordb_ops
from workloads.s3uri import S3Prefix

LOCATIONS = [
    (S3Prefix, ValueError),
    (vectordb_ops.SnapshotsLocation, vectordb_ops.SnapshotError),
    (milvus_backup_ops.BackupsLocation, milvus_backup_ops.MilvusBackupError),
]


@pytest.mark.parametrize(("kind", "error"), LOCATIONS)
def test_bucket_and_prefix_round_trip(kind: type[S3Prefix], error: type[Exception]) -> None:
    location = kind.parse("s3://vectordb-snapshots//milvus/milvus/")
    assert type(location) is kind
    assert (location.bucket, location.prefix) == ("vectordb-snapshots", "milvus/milvus")
    assert kind.parse(location.uri) == location


@pytest.mark.parametrize(("kind", "error"), LOCATIONS)
@pytest.mark.parametrize(
    "bad",
    [
        "vectordb-snapshots/milvus",
        "s3://bucket-only",
        "s3://bucket/",
        "s3:///prefix",
        "http://x/y",
        "s3://b/p?v=1",
    ],
)
def test_a_uri_without_bucket_or_prefix_raises_the_commands_error(
    kind: type[S3Prefix], error: type[Exception], bad: str
) -> None:
    with pytest.raises(error, match=r"expected s3://<bucket>/<prefix>, got"):
        kind.parse(bad)


def test_backup_meta_keys_live_under_the_prefix() -> None:
    location = milvus_backup_ops.BackupsLocation.parse("s3://b/milvus/milvus")
    assert location.meta_key("nightly", "full_meta.json") == "milvus/milvus/nightly/meta/full_meta.json"
