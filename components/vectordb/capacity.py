"""Capacity planning of the vector databases: vectors x dimension x replicas -> memory and disk.

The model (stated in docs/vectordb-operations.md, whose table :func:`markdown_table` renders):

* float vectors: ``N * d * 4`` bytes; int8 scalar quantization keeps a ``N * d`` byte copy in RAM
  and the float originals on disk for rescoring;
* HNSW graph: layer 0 holds ``2 * m`` links per vector, upper layers about ``1 / (m - 1)`` of that,
  each link a 4-byte id: ``N * 2m * 4 * (1 + 1/(m-1))`` bytes, in RAM and on disk;
* payload (chunk text + metadata): ``N * payload_bytes`` on disk (not held in RAM);
* RAM per copy = (vectors searched in RAM + links) * 1.5 (segments being optimized, id maps,
  payload indexes, allocator slack: Qdrant's published rule of thumb);
* disk per copy = (float vectors + int8 copy + links + payload) * 2 (an optimizer rebuilds a
  segment beside the old one before dropping it) + one WAL per shard (Qdrant's default
  ``wal_capacity_mb`` 32 MiB, times its default of two WAL segments kept);
* cluster totals multiply by the replication factor; each pod holds ``copies / pods`` of the data.

Milvus in cluster mode keeps segments and index files in object storage and loads them into query
node memory: :func:`milvus_plan` gives the object store bytes (binlogs + index files + scheduled
backups, which copy the binlogs) and the memory each query node needs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

GIB = 1024**3
FLOAT_BYTES = 4
LINK_BYTES = 4
RAM_OVERHEAD = 1.5
OPTIMIZER_HEADROOM = 2.0
WAL_BYTES_PER_SHARD = 2 * 32 * 1024**2


@dataclass(frozen=True)
class Collection:
    """A collection to plan for.

    Attributes:
        vectors: Number of points (N).
        dimension: Vector dimension (d).
        payload_bytes: Average payload per point (text chunk and metadata).
        hnsw_m: HNSW ``m`` (links per node on upper layers; 2m on layer 0).
        int8: Whether int8 scalar quantization is on (RAM holds the int8 copy only).

    """

    vectors: int
    dimension: int
    payload_bytes: int = 1024
    hnsw_m: int = 16
    int8: bool = False

    def __post_init__(self) -> None:
        if self.vectors < 1 or self.dimension < 1 or self.hnsw_m < 2 or self.payload_bytes < 0:
            raise ValueError(f"unworkable collection {self}")

    @property
    def float_bytes(self) -> int:
        """The float32 vectors."""
        return self.vectors * self.dimension * FLOAT_BYTES

    @property
    def int8_bytes(self) -> int:
        """The int8 quantized copy (0 when quantization is off)."""
        return self.vectors * self.dimension if self.int8 else 0

    @property
    def link_bytes(self) -> int:
        """The HNSW graph."""
        per_vector = 2 * self.hnsw_m * LINK_BYTES * (1 + 1 / (self.hnsw_m - 1))
        return math.ceil(self.vectors * per_vector)

    @property
    def payload_total(self) -> int:
        """All payloads."""
        return self.vectors * self.payload_bytes


@dataclass(frozen=True)
class Plan:
    """Memory and disk of one collection on one deployment.

    Attributes:
        ram_per_copy: RAM one full copy needs (bytes).
        disk_per_copy: Disk one full copy needs (bytes).
        copies: Replication factor.
        pods: Pods sharing the copies.

    """

    ram_per_copy: int
    disk_per_copy: int
    copies: int
    pods: int

    @property
    def ram_total(self) -> int:
        """RAM over the whole cluster."""
        return self.ram_per_copy * self.copies

    @property
    def disk_total(self) -> int:
        """Disk over the whole cluster."""
        return self.disk_per_copy * self.copies

    @property
    def ram_per_pod(self) -> int:
        """RAM each pod needs when shards are spread evenly."""
        return math.ceil(self.ram_total / self.pods)

    @property
    def disk_per_pod(self) -> int:
        """Disk each pod needs when shards are spread evenly."""
        return math.ceil(self.disk_total / self.pods)


def qdrant_plan(collection: Collection, *, replicas: int, replication_factor: int, shards: int) -> Plan:
    """Memory and disk of ``collection`` on a Qdrant cluster of ``replicas`` peers.

    Raises:
        ValueError: When the replication factor exceeds the peers, or a count is below 1.

    """
    if min(replicas, replication_factor, shards) < 1:
        raise ValueError("replicas, replication_factor and shards must be at least 1")
    if replication_factor > replicas:
        raise ValueError(
            f"replication_factor {replication_factor} needs at least that many peers ({replicas})"
        )
    in_ram = collection.int8_bytes if collection.int8 else collection.float_bytes
    ram = math.ceil((in_ram + collection.link_bytes) * RAM_OVERHEAD)
    stored = collection.float_bytes + collection.int8_bytes + collection.link_bytes + collection.payload_total
    disk = math.ceil(stored * OPTIMIZER_HEADROOM) + shards * WAL_BYTES_PER_SHARD
    return Plan(ram_per_copy=ram, disk_per_copy=disk, copies=replication_factor, pods=replicas)


@dataclass(frozen=True)
class MilvusPlan:
    """Object storage and query-node memory of one collection on Milvus (cluster mode).

    Attributes:
        object_bytes: Binlogs (vectors + payload) and HNSW index files in the Milvus bucket.
        backup_bytes: Scheduled backups kept (each copies the binlogs; indexes are rebuilt).
        ram_per_query_node: Memory each query node needs for its share of the loaded index.

    """

    object_bytes: int
    backup_bytes: int
    ram_per_query_node: int


def milvus_plan(
    collection: Collection, *, query_nodes: int, replicas: int = 1, backups_kept: int = 0
) -> MilvusPlan:
    """Object store bytes and per-query-node memory of ``collection`` on Milvus.

    Args:
        collection: What is stored.
        query_nodes: Query nodes sharing the loaded segments.
        replicas: In-memory replicas of the loaded collection (``load(replica_number=...)``).
        backups_kept: Scheduled backups kept at once (retention days + the newest run).

    """
    if query_nodes < 1 or replicas < 1 or replicas > query_nodes:
        raise ValueError("query_nodes >= replicas >= 1 is required")
    binlogs = collection.float_bytes + collection.payload_total
    index = collection.float_bytes + collection.link_bytes
    loaded = (collection.int8_bytes if collection.int8 else collection.float_bytes) + collection.link_bytes
    return MilvusPlan(
        object_bytes=binlogs + index,
        backup_bytes=binlogs * backups_kept,
        ram_per_query_node=math.ceil(loaded * RAM_OVERHEAD * replicas / query_nodes),
    )


def qdrant_snapshot_bytes(collection: Collection, *, replication_factor: int) -> int:
    """Bytes of one snapshot run: every peer snapshots its local shards, so every copy is stored."""
    stored = collection.float_bytes + collection.int8_bytes + collection.link_bytes + collection.payload_total
    return stored * replication_factor


_UNITS = {"Ki": 1024, "Mi": 1024**2, "Gi": 1024**3, "Ti": 1024**4, "K": 10**3, "M": 10**6, "G": 10**9}


def quantity_bytes(quantity: str) -> int:
    """Bytes of a Kubernetes memory/storage quantity such as ``512Mi`` or ``2Gi``.

    Raises:
        ValueError: For a quantity in another form.

    """
    for unit in sorted(_UNITS, key=len, reverse=True):
        if quantity.endswith(unit) and quantity[: -len(unit)].isdigit():
            return int(quantity[: -len(unit)]) * _UNITS[unit]
    if quantity.isdigit():
        return int(quantity)
    raise ValueError(f"unsupported quantity {quantity!r}")


TABLE_ROWS: tuple[tuple[Collection, int, int, int], ...] = (
    # (collection, peers, replication factor, shards)
    (Collection(100_000, 384), 1, 1, 1),
    (Collection(1_000_000, 384), 3, 2, 6),
    (Collection(1_000_000, 384, int8=True), 3, 2, 6),
    (Collection(1_000_000, 768), 3, 2, 6),
    (Collection(10_000_000, 384, int8=True), 3, 2, 6),
    (Collection(10_000_000, 768, int8=True), 6, 2, 12),
)
"""The rows of the docs' capacity table."""

TABLE_BEGIN = "<!-- capacity-table:begin (rendered by components/vectordb/capacity.py) -->"
TABLE_END = "<!-- capacity-table:end -->"


def _gib(n: int) -> str:
    return f"{n / GIB:.1f}"


def markdown_table() -> str:
    """The capacity table of docs/vectordb-operations.md, rendered from :data:`TABLE_ROWS`."""
    lines = [
        "| vectors | dim | int8 | peers | replication | shards | RAM/copy GiB | disk/copy GiB "
        "| RAM total GiB | disk total GiB | RAM/pod GiB | disk/pod GiB |",
        "|---:|---:|:--:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for collection, peers, factor, shards in TABLE_ROWS:
        plan = qdrant_plan(collection, replicas=peers, replication_factor=factor, shards=shards)
        lines.append(
            f"| {collection.vectors:,} | {collection.dimension} | {'yes' if collection.int8 else 'no'} "
            f"| {peers} | {factor} | {shards} | {_gib(plan.ram_per_copy)} | {_gib(plan.disk_per_copy)} "
            f"| {_gib(plan.ram_total)} | {_gib(plan.disk_total)} | {_gib(plan.ram_per_pod)} "
            f"| {_gib(plan.disk_per_pod)} |"
        )
    return "\n".join(lines)


PLANNED_COLLECTION = Collection(vectors=1_000_000, dimension=384, payload_bytes=1024)
"""What the shipped aks/eks stacks are sized for: 1M MiniLM (384-d) chunks of ~1 KiB text, float
vectors (no quantization), HNSW m=16 — in each engine."""
