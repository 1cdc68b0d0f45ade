"""Capacity planning: the docs' table comes from the code, and the shipped stacks cover the planned size.

Every number is derived from components/vectordb/capacity.py, the component defaults and the stack
files; nothing here is hand-written.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from components.storage import s3_access
from components.vectordb import capacity
from components.vectordb.milvus import MilvusArgs
from components.vectordb.qdrant import QdrantArgs
from stacks.config import load_stack_file

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "vectordb-operations.md"
SCALED_STACKS = ("aks", "eks")


def test_docs_table_is_the_one_the_code_renders() -> None:
    text = DOC.read_text()
    assert capacity.TABLE_BEGIN in text and capacity.TABLE_END in text
    documented = text.split(capacity.TABLE_BEGIN, 1)[1].split(capacity.TABLE_END, 1)[0].strip()
    assert documented == capacity.markdown_table()


def test_table_rows_follow_the_model() -> None:
    """Sanity of the model itself: more copies or dimensions never need less, int8 saves RAM."""
    base = capacity.Collection(1_000_000, 384)
    one = capacity.qdrant_plan(base, replicas=3, replication_factor=1, shards=6)
    two = capacity.qdrant_plan(base, replicas=3, replication_factor=2, shards=6)
    assert two.disk_total == 2 * one.disk_total and two.ram_total == 2 * one.ram_total
    wide = capacity.qdrant_plan(
        capacity.Collection(1_000_000, 768), replicas=3, replication_factor=2, shards=6
    )
    assert wide.ram_per_copy > two.ram_per_copy
    quantized = capacity.qdrant_plan(
        capacity.Collection(1_000_000, 384, int8=True), replicas=3, replication_factor=2, shards=6
    )
    assert quantized.ram_per_copy < two.ram_per_copy < quantized.disk_per_copy
    # float vectors alone are N*d*4 bytes; the RAM figure includes them (no quantization)
    assert two.ram_per_copy > base.vectors * base.dimension * 4
    with pytest.raises(ValueError, match="needs at least that many peers"):
        capacity.qdrant_plan(base, replicas=1, replication_factor=2, shards=1)


def test_quantities() -> None:
    assert capacity.quantity_bytes("2Gi") == 2 * capacity.GIB
    assert capacity.quantity_bytes("512Mi") == 512 * 1024**2
    with pytest.raises(ValueError):
        capacity.quantity_bytes("2 GB")


@pytest.mark.parametrize("stack", SCALED_STACKS)
def test_shipped_stack_is_scaled_out(stack: str) -> None:
    cfg = load_stack_file(stack)
    qdrant, milvus = cfg.vectordb.qdrant, cfg.vectordb.milvus
    assert qdrant.replicas >= 3
    assert qdrant.shard_number >= 2 and qdrant.replication_factor >= 2
    assert milvus.mode == "cluster"
    assert min(milvus.query_nodes, milvus.proxies) >= 2


@pytest.mark.parametrize("stack", SCALED_STACKS)
def test_qdrant_peers_cover_the_planned_collection(stack: str) -> None:
    cfg = load_stack_file(stack).vectordb.qdrant
    plan = capacity.qdrant_plan(
        capacity.PLANNED_COLLECTION,
        replicas=cfg.replicas,
        replication_factor=cfg.replication_factor,
        shards=cfg.shard_number,
    )
    limits = QdrantArgs(namespace="-", storage_class="-").resources
    assert plan.disk_per_pod <= cfg.storage_size_gi * capacity.GIB, (
        f"{stack}: each Qdrant peer needs {plan.disk_per_pod / capacity.GIB:.1f} GiB of disk, "
        f"storageSizeGi is {cfg.storage_size_gi}"
    )
    assert plan.ram_per_pod <= capacity.quantity_bytes(limits.memory_limit)


@pytest.mark.parametrize("stack", SCALED_STACKS)
def test_milvus_and_object_storage_cover_the_planned_collection(stack: str) -> None:
    cfg = load_stack_file(stack)
    milvus, qdrant = cfg.vectordb.milvus, cfg.vectordb.qdrant
    plan = capacity.milvus_plan(
        capacity.PLANNED_COLLECTION,
        query_nodes=milvus.query_nodes,
        backups_kept=milvus.backup_retention_days + 1,
    )
    limits = MilvusArgs(namespace="-", storage_class="-", s3=s3_access("minio")).resources
    assert plan.ram_per_query_node <= capacity.quantity_bytes(limits.memory_limit)
    snapshots = (qdrant.snapshot_retention_days + 1) * capacity.qdrant_snapshot_bytes(
        capacity.PLANNED_COLLECTION, replication_factor=qdrant.replication_factor
    )
    needed = plan.object_bytes + plan.backup_bytes + snapshots
    assert needed <= cfg.storage.size_gi * capacity.GIB, (
        f"{stack}: MinIO needs {needed / capacity.GIB:.1f} GiB for the planned collection, "
        f"storage.sizeGi is {cfg.storage.size_gi}"
    )
