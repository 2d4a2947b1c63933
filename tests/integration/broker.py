"""A Kafka broker of a test's own, to stop and start at will (an outage the test controls).

It runs the Apache Kafka jars `scripts/services` fetched (`.services/kafka/libs`, or
ORDO_TEST_KAFKA_LIBS) as one KRaft node on free ports, with its data under the test's
directory, so stopping it disturbs no other test and no other engineer's broker.
"""

from __future__ import annotations

import base64
import os
import socket
import struct
import subprocess
import uuid
from pathlib import Path

from tests.integration.servers import REPO, wait_for
from tools.harness import free_port

KAFKA_LIBS = Path(os.environ.get("ORDO_TEST_KAFKA_LIBS", REPO / ".services" / "kafka" / "libs"))


def kafka_jars_present() -> bool:
    return any(KAFKA_LIBS.glob("kafka_2.13-*.jar"))


class PrivateBroker:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port, self.controller_port = free_port(), free_port()
        self.config = directory / "server.properties"
        self.process: subprocess.Popen[bytes] | None = None
        directory.mkdir(parents=True, exist_ok=True)
        self._write_config()
        self._java("kafka.tools.StorageTool", "format", "--cluster-id", _cluster_id(), "--config")

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        with (self.directory / "kafka.log").open("ab") as log:
            self.process = subprocess.Popen(
                [*self._java_command(), "kafka.Kafka", str(self.config)],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_for(self.answers, seconds=90, what=f"the private broker on {self.bootstrap}")

    def stop(self) -> None:
        """A clean shutdown, as an operator's restart: the clients see their connections close."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=60)
        self.process = None

    def answers(self) -> bool:
        """Whether it serves a Metadata request that lists itself (started, unfenced)."""
        return _metadata_lists_a_broker(self.port)

    def _java_command(self) -> list[str]:
        return [
            "java",
            "-Xms128m",
            "-Xmx384m",
            "-XX:+UseG1GC",
            "-Djava.awt.headless=true",
            f"-Dkafka.logs.dir={self.directory}",
            "-cp",
            f"{KAFKA_LIBS}/*",
        ]

    def _java(self, main: str, *args: str) -> None:
        subprocess.run(
            [*self._java_command(), main, *args, str(self.config)],
            check=True,
            capture_output=True,
        )

    def _write_config(self) -> None:
        port, controller = self.port, self.controller_port
        self.config.write_text(
            "\n".join(
                [
                    "process.roles=broker,controller",
                    "node.id=1",
                    f"controller.quorum.voters=1@127.0.0.1:{controller}",
                    f"listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller}",
                    f"advertised.listeners=PLAINTEXT://127.0.0.1:{port}",
                    "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
                    "inter.broker.listener.name=PLAINTEXT",
                    "controller.listener.names=CONTROLLER",
                    f"log.dirs={self.directory / 'data'}",
                    "num.partitions=3",
                    "offsets.topic.replication.factor=1",
                    "offsets.topic.num.partitions=3",
                    "transaction.state.log.replication.factor=1",
                    "transaction.state.log.min.isr=1",
                    "share.coordinator.state.topic.replication.factor=1",
                    "share.coordinator.state.topic.min.isr=1",
                    "group.initial.rebalance.delay.ms=0",
                    "",
                ]
            )
        )


def _cluster_id() -> str:
    # As org.apache.kafka.common.Uuid.randomUuid: URL-safe base64, never starting with "-".
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not text.startswith("-"):
            return text


def _metadata_lists_a_broker(port: int) -> bool:
    """Metadata v4 (the oldest a 4.x broker keeps), all topics, no auto-creation."""
    client = b"ordo-tests"
    body = struct.pack(">hhih", 3, 4, 7, len(client)) + client + struct.pack(">i?", -1, False)
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=3) as sock:
            sock.sendall(struct.pack(">i", len(body)) + body)
            data = b""
            while len(data) < 4 or len(data) < 4 + struct.unpack(">i", data[:4])[0]:
                chunk = sock.recv(65536)
                if not chunk:
                    return False
                data += chunk
    except OSError:
        return False
    (brokers,) = struct.unpack_from(">i", data, 12)  # after size, correlation id, throttle
    return bool(brokers > 0)
