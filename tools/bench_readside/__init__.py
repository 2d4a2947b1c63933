"""`scripts/bench_readside`: read-side and Kafka benchmarks on PostgreSQL (not tests).

  scripts/bench_readside [--only project,rebuild,lag,kafka] [--events 200000]
                         [--rebuild-events 1000000] [--rates 1000] [--seconds 20]
                         [--write BENCHMARKS.md]

project: N events (a busy day: issued, transmitted, dispensed in one or two visits, ~3.5
  events per prescription) appended to a scratch schema, then the projection runner (as
  `ordo project` runs it) applies them from 0 to head: events/s; baseline: asyncpg COPY of
  the rows it wrote into tables like the views'. The same on SQLite (embedded default).
rebuild: `ordo projections rebuild` over a log of --rebuild-events events.
lag: `ordo serve --workers 2` (projection in process), an open-loop rate of one-pack
  dispensings; for a few per second, the time from the 201 to the dispensation showing in
  GET /v1/prescribers/me/prescriptions (polled every 10 ms).
kafka: the relay from the N-event log to acknowledged (baseline: kafka-python producer
  sending the same messages), `ordo worker` ×1 and ×2 from that topic (fresh group each)
  until the views hold everything, and the lag above with serve + relay + 1 worker.
PostgreSQL: ORDO_TEST_DATABASE_URL; Kafka: ORDO_TEST_KAFKA_BOOTSTRAP (`scripts/services env`).

By job: `log` (the busy day's log, scratch schemas and topics), `projection` (project and
rebuild), `lag` (the lists' lag under load), `relay` (Kafka: relay and workers), `report`
(the table, BENCHMARKS.md), `cli` (the command); the load and the servers are `tools.bench`'s.
"""
