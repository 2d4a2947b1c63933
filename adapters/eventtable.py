# ruff: noqa: S608 - SQL is built from our own table names; every value is a bound parameter.
"""The event table's SQL on PostgreSQL, in one place: its layout, the group append, the reads.

The table is eventsourcing's application-recorder layout (`ordo_events`: originator_id,
originator_version, topic, state, notification_id), so the library's own readers, the projection
runner, the Kafka relay and reconciliation keep reading it. Beside it, two tables written in the
same transaction as the events they belong to: the idempotency records (the first answer to a
request carrying an `Idempotency-Key`) and the invoice claims (a pharmacy's invoice number, taken
once). A database written by a release that kept both as one-event streams in the event table
has them copied into these tables once at start (`adapters.legacy`); log readers skip their topics.
While tracing, the group append also records each event's W3C traceparent
(`ordo_event_traces`, by log position), which the Kafka relay forwards and then deletes.

Every writer of these three tables takes `LOCK TABLE ordo_events IN EXCLUSIVE MODE` first (the
group append below, the library-based `ordo_append` of `adapters.librarylog` that tools use, and
the one-off copy of the legacy streams at start): so notification ids become visible in the
order they are issued (a reader following the log never skips a committed event), and the
version checks made under the lock are authoritative.
"""

from __future__ import annotations

from dataclasses import dataclass

EVENTS_TABLE = "ordo_events"
IDEMPOTENCY_TABLE = "ordo_idempotency"
CLAIMS_TABLE = "ordo_invoice_claims"
# The W3C traceparent of each event appended while tracing, until the relay publishes it.
TRACES_TABLE = "ordo_event_traces"
# One row per one-off data migration the store ran at start (`adapters.legacy`).
MIGRATIONS_TABLE = "ordo_migrations"
# eventsourcing's channel: the table's name, whatever the schema.
CHANNEL = EVENTS_TABLE


# The hash chain's previous hash before the first event (`adapters.chain.GENESIS`).
GENESIS_SQL = "decode(repeat('00', 32), 'hex')"


def quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def literal(text: str) -> str:
    """A SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


@dataclass(frozen=True)
class EventTableSql:
    """The statements on one schema's event table (the schema is ordo's `?schema=` option)."""

    schema: str

    @property
    def events(self) -> str:
        return f"{quoted(self.schema)}.{EVENTS_TABLE}"

    @property
    def idempotency(self) -> str:
        return f"{quoted(self.schema)}.{IDEMPOTENCY_TABLE}"

    @property
    def claims(self) -> str:
        return f"{quoted(self.schema)}.{CLAIMS_TABLE}"

    @property
    def migrations(self) -> str:
        return f"{quoted(self.schema)}.{MIGRATIONS_TABLE}"

    @property
    def traces(self) -> str:
        return f"{quoted(self.schema)}.{TRACES_TABLE}"

    @property
    def sequence(self) -> str:
        """The positions' sequence: the one PostgreSQL names for the `bigserial` column."""
        return f"{quoted(self.schema)}.{EVENTS_TABLE}_notification_id_seq"

    @property
    def group_function(self) -> str:
        return f"{quoted(self.schema)}.ordo_append_group"

    def create(self) -> list[str]:
        """Idempotent DDL, run by every server at start-up under one advisory lock."""
        return [
            # Exactly eventsourcing's PostgresApplicationRecorder table and index.
            f"CREATE TABLE IF NOT EXISTS {self.events} ("
            "originator_id text NOT NULL, originator_version bigint NOT NULL, topic text, "
            "state bytea, notification_id bigserial, "
            "PRIMARY KEY (originator_id, originator_version)) WITH ("
            "autovacuum_enabled = true, autovacuum_vacuum_threshold = 100000000, "
            "autovacuum_vacuum_scale_factor = 0.5, autovacuum_analyze_threshold = 1000, "
            "autovacuum_analyze_scale_factor = 0.01)",
            f"CREATE UNIQUE INDEX IF NOT EXISTS {EVENTS_TABLE}_notification_id_idx "
            f"ON {self.events} (notification_id ASC)",
            f"CREATE TABLE IF NOT EXISTS {self.idempotency} ("
            "key text PRIMARY KEY, fingerprint text NOT NULL, result bytea NOT NULL, "
            "recorded_at timestamptz NOT NULL DEFAULT now(), position bigint)",
            self._add_record_position(),
            f"CREATE TABLE IF NOT EXISTS {self.claims} ("
            "finess text NOT NULL, invoice_number text NOT NULL, prescription_id text NOT NULL, "
            "dispensation_id text NOT NULL, PRIMARY KEY (finess, invoice_number))",
            f"CREATE TABLE IF NOT EXISTS {self.migrations} (name text PRIMARY KEY, "
            "ran_at timestamptz NOT NULL DEFAULT now(), records bigint NOT NULL, "
            "claims bigint NOT NULL)",
            f"CREATE TABLE IF NOT EXISTS {self.traces} ("
            "position bigint PRIMARY KEY, traceparent text NOT NULL)",
            self._drop_group_function_without_hash(),
            self._group_function_ddl(),
        ]

    def _add_record_position(self) -> str:
        """Where a record's command's first event landed: a table created before it was kept
        gains the column, NULL in its rows (taking the table's lock only then)."""
        schema = self.schema.replace("'", "''")
        return f"""
DO $$ BEGIN
    IF NOT EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema = '{schema}'
                   AND table_name = '{IDEMPOTENCY_TABLE}' AND column_name = 'position') THEN
        ALTER TABLE {self.idempotency} ADD COLUMN position bigint;
    END IF;
END $$"""

    def _drop_group_function_without_hash(self) -> str:
        """A release before the hash chain defined the group append without `log_hash` in its
        result, which CREATE OR REPLACE cannot change."""
        schema = self.schema.replace("'", "''")
        return f"""
DO $$ BEGIN
    IF EXISTS (SELECT 1 FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
               WHERE n.nspname = '{schema}' AND p.proname = 'ordo_append_group'
               AND pg_get_function_result(p.oid) NOT LIKE '%log_hash%') THEN
        DROP FUNCTION {self.group_function};
    END IF;
END $$"""

    def _group_function_ddl(self) -> str:
        """One call appends a group of commands in one transaction (one lock, one NOTIFY, one
        WAL flush at commit), each with its own optimistic-concurrency outcome.

        A command is refused when one of its streams is not at the version it decided on, or
        its idempotency key or invoice number is already taken; the others' rows are inserted.
        The caller never puts two commands touching one stream, key or invoice number in one
        group (the second would be decided against a state the first changes), so the checks
        are set-based. The returned rows are the inserted events with their log positions and
        hashes (`_insert_chained`): a command is committed iff its events are among them. An
        idempotency record is inserted once its command's events are, with the position of the
        first of them."""
        return f"""
CREATE OR REPLACE FUNCTION {self.group_function}(
    expected_cmds int[], expected_ids text[], expected_versions bigint[],
    event_cmds int[], ids text[], versions bigint[], topics text[], states bytea[],
    key_cmds int[], keys text[], fingerprints text[], results bytea[],
    claim_cmds int[], claim_finess text[], claim_numbers text[],
    claim_prescriptions text[], claim_dispensations text[])
RETURNS TABLE (stream text, stream_version bigint, log_position bigint, log_hash bytea)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    refused int[];
    previous bytea;
    stream_bytes bytea;
    topic_bytes bytea;
    positions bigint[] := '{{}}';
    hashes bytea[] := '{{}}';
BEGIN
    LOCK TABLE {self.events} IN EXCLUSIVE MODE;
    SELECT coalesce(array_agg(r.cmd), '{{}}') INTO refused FROM (
        SELECT x.cmd FROM unnest(expected_cmds, expected_ids, expected_versions)
            AS x(cmd, id, version)
        WHERE x.version <> coalesce((SELECT max(e.originator_version) FROM {self.events} e
                                     WHERE e.originator_id = x.id), 0)
        UNION
        SELECT k.cmd FROM unnest(key_cmds, keys) AS k(cmd, key)
        JOIN {self.idempotency} i ON i.key = k.key
        UNION
        SELECT c.cmd FROM unnest(claim_cmds, claim_finess, claim_numbers) AS c(cmd, finess, num)
        JOIN {self.claims} ic ON ic.finess = c.finess AND ic.invoice_number = c.num
    ) AS r;
    INSERT INTO {self.claims} (finess, invoice_number, prescription_id, dispensation_id)
        SELECT c.finess, c.num, c.prescription_id, c.dispensation_id
        FROM unnest(claim_cmds, claim_finess, claim_numbers, claim_prescriptions,
                    claim_dispensations) AS c(cmd, finess, num, prescription_id, dispensation_id)
        WHERE c.cmd <> ALL (refused);
    IF EXISTS (SELECT 1 FROM unnest(event_cmds) AS c(cmd) WHERE c.cmd <> ALL (refused)) THEN
        NOTIFY {CHANNEL};
    END IF;
    {self._insert_chained()}
    {self._insert_records()}
END $$"""

    def _insert_chained(self) -> str:
        """In `ordo_append_group`, under the table's lock: the rows inserted and the hash chain
        (`adapters.chain`) extended once for the group. The head's hash is read once; each row
        of a command not refused, in the group's order, takes the next position and its hash
        (the canonical bytes are `ordo_event_head`'s, written out: PL/pgSQL does not inline a
        SQL function, and calling it took two thirds of a row's chaining). A refused command's
        rows keep a NULL position and are not inserted."""
        return f"""SELECT e.hash INTO previous FROM {self.events} e
        ORDER BY e.notification_id DESC LIMIT 1;
    previous := coalesce(previous, {GENESIS_SQL});
    FOR i IN 1 .. coalesce(cardinality(ids), 0) LOOP
        CONTINUE WHEN event_cmds[i] = ANY (refused);
        stream_bytes := convert_to(ids[i], 'UTF8');
        topic_bytes := convert_to(topics[i], 'UTF8');
        previous := sha256(previous || int4send(octet_length(stream_bytes)) || stream_bytes
            || int8send(versions[i]) || int4send(octet_length(topic_bytes)) || topic_bytes
            || coalesce(states[i], ''));
        positions[i] := nextval({literal(self.sequence)});
        hashes[i] := previous;
    END LOOP;
    RETURN QUERY
    INSERT INTO {self.events} AS t
        (notification_id, originator_id, originator_version, topic, state, hash)
        SELECT * FROM unnest(positions, ids, versions, topics, states, hashes)
            AS e(position, id, version, topic, state, hash)
        WHERE e.position IS NOT NULL
    RETURNING t.originator_id, t.originator_version, t.notification_id, t.hash;"""

    def _insert_records(self) -> str:
        """In `ordo_append_group`, once the events are inserted: the idempotency records of the
        commands not refused, each with the log position of its command's first event."""
        return f"""INSERT INTO {self.idempotency} (key, fingerprint, result, position)
        SELECT k.key, k.fingerprint, k.result,
            (SELECT min(t.notification_id)
             FROM unnest(event_cmds, ids, versions) AS x(cmd, id, version)
             JOIN {self.events} t
                 ON t.originator_id = x.id AND t.originator_version = x.version
             WHERE x.cmd = k.cmd)
        FROM unnest(key_cmds, keys, fingerprints, results) AS k(cmd, key, fingerprint, result)
        WHERE k.cmd <> ALL (refused);"""

    @property
    def append_group(self) -> str:
        return (
            f"SELECT stream, stream_version, log_position, log_hash FROM {self.group_function}("
            "$1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)"
        )

    @property
    def stream_after(self) -> str:
        """A stream's events after a version: all of them from 0, only the new ones from a
        cached state's version."""
        return (
            f"SELECT topic, state FROM {self.events} "
            "WHERE originator_id = $1 AND originator_version > $2 ORDER BY originator_version"
        )

    @property
    def streams_after(self) -> str:
        """`stream_after` for several streams at once ($1 the streams, $2 the versions): each
        row names its stream's place in the arrays (from 1), in version order.

        A lateral subquery, sorted so that the planner keeps it one (it would flatten a plain
        join): one index lookup per stream, whatever the table's statistics say. As a join,
        a table not yet analysed was scanned whole for every statement."""
        return (
            "SELECT q.i, e.topic, e.state FROM unnest($1::text[], $2::bigint[]) "
            "WITH ORDINALITY AS q(stream, after_version, i) CROSS JOIN LATERAL ("
            f"SELECT topic, state, originator_version FROM {self.events} "
            "WHERE originator_id = q.stream AND originator_version > q.after_version "
            "ORDER BY originator_version) e ORDER BY q.i, e.originator_version"
        )

    @property
    def record_traces(self) -> str:
        """The traceparents of a group's traced events, by log position."""
        return (
            f"INSERT INTO {self.traces} (position, traceparent) "
            "SELECT * FROM unnest($1::bigint[], $2::text[])"
        )

    @property
    def traces_between(self) -> str:
        """The traceparents of the events after a position, up to another (both given)."""
        return (
            f"SELECT position, traceparent FROM {self.traces} "
            "WHERE position > $1 AND position <= $2"
        )

    @property
    def forget_traces(self) -> str:
        """Once the events up to a position are published, their traceparents are not needed."""
        return f"DELETE FROM {self.traces} WHERE position <= $1"

    @property
    def idempotency_record(self) -> str:
        return f"SELECT fingerprint, result, position FROM {self.idempotency} WHERE key = $1"

    @property
    def logged(self) -> str:
        """One event of the log, with its hash."""
        return f"SELECT topic, state, hash FROM {self.events} WHERE notification_id = $1"

    @property
    def invoice_claim(self) -> str:
        return (
            f"SELECT prescription_id, dispensation_id FROM {self.claims} "
            "WHERE finess = $1 AND invoice_number = $2"
        )

    @property
    def migration_ran(self) -> str:
        return f"SELECT 1 FROM {self.migrations} WHERE name = $1"

    @property
    def lock_events(self) -> str:
        return f"LOCK TABLE {self.events} IN EXCLUSIVE MODE"

    @property
    def legacy_rows(self) -> str:
        """The legacy record and claim streams (`adapters.legacy`): one scan, once."""
        return (
            f"SELECT notification_id, topic, state FROM {self.events} WHERE topic = ANY($1::text[])"
        )

    @property
    def copy_record(self) -> str:
        return (
            f"INSERT INTO {self.idempotency} (key, fingerprint, result) VALUES ($1, $2, $3) "
            "ON CONFLICT (key) DO NOTHING"
        )

    @property
    def copy_claim(self) -> str:
        return (
            f"INSERT INTO {self.claims} (finess, invoice_number, prescription_id, "
            "dispensation_id) VALUES ($1, $2, $3, $4) ON CONFLICT (finess, invoice_number) "
            "DO NOTHING"
        )

    @property
    def mark_migrated(self) -> str:
        return f"INSERT INTO {self.migrations} (name, records, claims) VALUES ($1, $2, $3)"

    @property
    def notifications(self) -> str:
        return (
            f"SELECT notification_id, topic, state FROM {self.events} "
            "WHERE notification_id > $1 ORDER BY notification_id LIMIT $2"
        )

    @property
    def head(self) -> str:
        return f"SELECT max(notification_id) FROM {self.events}"

    @property
    def exists(self) -> str:
        """Not null once the event table is created."""
        literal = self.events.replace("'", "''")
        return f"SELECT to_regclass('{literal}')"
