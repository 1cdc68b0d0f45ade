"""Cross-field rules of the ``vectordb`` section: backup and snapshot schedules, Qdrant replication."""

from __future__ import annotations

from components.vectordb.snapshot import validate_schedule
from stacks.config.errors import ConfigIssue
from stacks.config.models import VectorDbConfig


def check_vectordb(vectordb: VectorDbConfig) -> list[ConfigIssue]:
    """Problems of the vector database settings, each with its key path and a fix."""
    issues: list[ConfigIssue] = []
    milvus, qdrant = vectordb.milvus, vectordb.qdrant
    for path, schedule in (
        ("vectordb.milvus.backupSchedule", milvus.backup_schedule),
        ("vectordb.qdrant.snapshotSchedule", qdrant.snapshot_schedule),
    ):
        problem = validate_schedule(schedule)
        if problem:
            issues.append(
                ConfigIssue(
                    path,
                    f"'{schedule}' is not a cron schedule: {problem}",
                    'write five fields "minute hour day month weekday" (UTC), e.g. "30 3 * * *", or @daily',
                )
            )
    if qdrant.enabled and qdrant.replication_factor > qdrant.replicas:
        issues.append(
            ConfigIssue(
                "vectordb.qdrant.replicationFactor",
                f"{qdrant.replication_factor} copies of each shard need at least that many peers, "
                f"but replicas is {qdrant.replicas}",
                "raise vectordb.qdrant.replicas or lower replicationFactor",
            )
        )
    return issues
