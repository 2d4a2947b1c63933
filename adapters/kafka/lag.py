"""How far behind the Kafka side is: the relay behind the log, the workers behind the topic.

`ordo projections status` asks the broker itself (the consumer group's committed offsets
against each partition's end), so the answer holds even when no worker is running, which
is exactly when an operator needs it.
"""

from __future__ import annotations

from dataclasses import dataclass

from kafka import KafkaConsumer, TopicPartition
from kafka.admin import KafkaAdminClient

from adapters.config import KafkaSettings


@dataclass(frozen=True)
class PartitionLag:
    partition: int
    committed: int | None  # None: the group has committed nothing on this partition yet
    start: int  # where a group without a commit begins (auto_offset_reset=earliest)
    end: int

    @property
    def lag(self) -> int:
        return max(self.end - (self.start if self.committed is None else self.committed), 0)


def group_lag(settings: KafkaSettings) -> list[PartitionLag]:
    """Per partition of the topic: the group's committed offset, the log end, the difference."""
    admin = KafkaAdminClient(bootstrap_servers=settings.bootstrap, client_id="ordo-status")
    try:
        committed = admin.list_group_offsets({settings.group: None}).get(settings.group, {})
    finally:
        admin.close()
    # No group_id: this consumer only reads offsets, it never joins (or rebalances) the group.
    reader = KafkaConsumer(bootstrap_servers=settings.bootstrap, client_id="ordo-status")
    try:
        partitions = sorted(reader.partitions_for_topic(settings.topic) or ())
        topic_partitions = [TopicPartition(settings.topic, p) for p in partitions]
        ends = reader.end_offsets(topic_partitions)
        starts = reader.beginning_offsets(topic_partitions)
    finally:
        reader.close()
    return [
        PartitionLag(
            tp.partition,
            committed[tp].offset if tp in committed else None,
            starts[tp],
            ends[tp],
        )
        for tp in topic_partitions
    ]
