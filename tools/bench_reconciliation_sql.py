"""The set-based SQL reference of scripts/bench_reconciliation: the same outcomes, computed by
PostgreSQL alone over the staged invoices and the read models' tables (benchmark only).

Staging parses the file with the same parser as ordo (the invalid lines are told there, as
checking a FINESS or a CIP13 key is no SQL's business) and COPYs one row per invoice and one
per invoice line. Reconciling is then one transaction of INSERT … SELECT: every rule of
docs/rules.md in the contract's order as one CASE, over joins of the staged invoices with
`ordo_view_prescriptions` (is the number known), `ordo_view_dispensings` (what each pharmacy
handed over, standing dispensings only) and two tables the benchmark extracts once, untimed,
from the prescriptions' states, where the read models keep the prescribed lines and the
billings recorded through the API only inside the MessagePack state. It writes the batch's
items (outcome, no detail) and claims (with the paid lines of `matched` invoices) into ordo's
own reconciliation tables.

Set-based simplifications, exact on the generator's files (the counts are checked): packs, not
units (the benchmark has no catalogue); an invoice counts as paid for the later invoices of the
same pharmacy and prescription when it passes every check but its own over-billing (one that is
itself `over_billed` still counts); products are compared by code, not by system and label.
ruff: noqa: S608 - SQL names our own scratch schema; values are COPYed or bound
"""

from __future__ import annotations

import time
from pathlib import Path

import msgspec
import psycopg

from adapters.reconciliation.ndjson import Rejected, parse_line
from adapters.reconciliation.tables import POSTGRES, BatchSql
from domain.reconciliation.records import PrescriptionRecord

BATCH = "sql-reference"
_records = msgspec.msgpack.Decoder(PrescriptionRecord)

SCRATCH = """
DROP TABLE IF EXISTS {s}.bench_sql_invoices, {s}.bench_sql_lines;
CREATE UNLOGGED TABLE {s}.bench_sql_invoices (line bigint PRIMARY KEY, finess text,
    invoice_number text, number text, valid boolean NOT NULL);
CREATE UNLOGGED TABLE {s}.bench_sql_lines (line bigint NOT NULL, line_no int NOT NULL,
    code text, quantity int NOT NULL, amount_cents int NOT NULL);
"""
EXTRACTED = """
CREATE TABLE {s}.bench_sql_prescribed (prescription_id text, line_no int, system text,
    code text, PRIMARY KEY (prescription_id, line_no));
CREATE TABLE {s}.bench_sql_recorded (prescription_id text, finess text, invoice_number text,
    line_no int, quantity int, amount_cents int);
"""
EXTRACTED_INDEX = """
CREATE INDEX ON {s}.bench_sql_recorded (prescription_id, finess, invoice_number);
ANALYZE {s}.bench_sql_prescribed; ANALYZE {s}.bench_sql_recorded;
"""

# One row per prescribed line an invoice bills (its lines summed), with what it is checked
# against: the prescribed line, what the invoice's pharmacy handed over of it.
BILLED = """
CREATE TEMP TABLE billed ON COMMIT DROP AS
WITH handed AS (
    SELECT prescription_id, finess, line_no, sum(quantity) AS given,
           array_agg(product_code) AS codes
    FROM {s}.ordo_view_dispensings GROUP BY prescription_id, finess, line_no
), pharmacies AS (
    SELECT DISTINCT prescription_id, finess FROM handed
), recorded AS (
    SELECT DISTINCT prescription_id, finess, invoice_number FROM {s}.bench_sql_recorded
), invoice AS (
    SELECT i.line, i.finess, i.invoice_number, i.number, i.valid,
           p.prescription_id IS NOT NULL AS known, ph.finess IS NOT NULL AS dispensed,
           r.finess IS NOT NULL AS recorded
    FROM {s}.bench_sql_invoices i
    LEFT JOIN {s}.ordo_view_prescriptions p ON p.prescription_id = i.number
    LEFT JOIN pharmacies ph ON ph.prescription_id = i.number AND ph.finess = i.finess
    LEFT JOIN recorded r ON r.prescription_id = i.number AND r.finess = i.finess
                        AND r.invoice_number = i.invoice_number
), claimed AS (
    SELECT line, row_number() OVER (PARTITION BY finess, invoice_number ORDER BY line) AS nth
    FROM invoice WHERE valid AND known
), each_line AS (
    SELECT l.line, l.line_no, l.quantity, l.amount_cents, coalesce(h.given, 0) AS given,
           w.line_no IS NULL
           OR (NOT coalesce(w.system <> 'DCI' AND w.code = l.code, false)
               AND NOT coalesce(l.code = ANY(h.codes), false)) AS other_product
    FROM {s}.bench_sql_lines l JOIN {s}.bench_sql_invoices i ON i.line = l.line
    LEFT JOIN {s}.bench_sql_prescribed w
           ON w.prescription_id = i.number AND w.line_no = l.line_no
    LEFT JOIN handed h
           ON h.prescription_id = i.number AND h.finess = i.finess AND h.line_no = l.line_no
    WHERE i.valid
), per_line AS (
    SELECT line, line_no, sum(quantity) AS quantity, sum(amount_cents) AS amount_cents,
           bool_or(other_product) AS other_product, max(given) AS given
    FROM each_line GROUP BY line, line_no
)
SELECT i.line, i.finess, i.invoice_number, i.number, i.valid, i.known, i.dispensed,
       i.recorded, coalesce(c.nth, 0) AS nth, b.line_no, b.quantity, b.amount_cents,
       b.other_product AS wrong_product, b.given
FROM invoice i
LEFT JOIN claimed c ON c.line = i.line
LEFT JOIN per_line b ON b.line = i.line AND i.valid AND i.known
"""
BILLED_INDEX = "CREATE INDEX ON billed (line); ANALYZE billed"

# Per invoice: each check, then the first that applies (docs/rules.md, in the contract's order).
DECIDED = """
CREATE TEMP TABLE decided ON COMMIT DROP AS
WITH checked AS (
    SELECT line, finess, invoice_number, number, valid, known, nth, dispensed, recorded,
           bool_or(wrong_product) AS wrong_product, bool_or(quantity > given) AS too_many
    FROM billed
    GROUP BY line, finess, invoice_number, number, valid, known, nth, dispensed, recorded
), as_billed AS (
    SELECT b.line, b.line_no, b.quantity, b.amount_cents FROM billed b
    WHERE b.recorded AND b.nth = 1
), as_recorded AS (
    SELECT c.line, r.line_no, r.quantity, r.amount_cents
    FROM checked c JOIN {s}.bench_sql_recorded r
      ON r.prescription_id = c.number AND r.finess = c.finess
     AND r.invoice_number = c.invoice_number
    WHERE c.recorded AND c.nth = 1
), amounts AS (
    SELECT coalesce(b.line, r.line) AS line
    FROM as_billed b FULL JOIN as_recorded r
      ON r.line = b.line AND r.line_no = b.line_no AND r.quantity = b.quantity
     AND r.amount_cents = b.amount_cents
    WHERE b.line IS NULL OR r.line IS NULL GROUP BY 1
), payable AS (
    SELECT b.line, b.quantity, b.given,
           sum(CASE WHEN a.line IS NULL THEN b.quantity ELSE 0 END) OVER (
               PARTITION BY b.number, b.finess, b.line_no ORDER BY b.line
               ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS paid
    FROM billed b JOIN checked c ON c.line = b.line
    LEFT JOIN amounts a ON a.line = b.line
    WHERE c.nth = 1 AND c.dispensed AND NOT c.wrong_product AND NOT c.too_many
), over AS (
    SELECT line FROM payable GROUP BY line HAVING bool_or(paid > 0 AND paid + quantity > given)
)
SELECT c.line, c.finess, c.invoice_number, c.number, c.nth,
    CASE WHEN NOT c.valid THEN 'invalid'
         WHEN NOT c.known THEN 'unknown_prescription'
         WHEN c.nth > 1 THEN 'duplicate_invoice'
         WHEN NOT c.dispensed THEN 'no_dispensation'
         WHEN c.wrong_product THEN 'product_mismatch'
         WHEN c.too_many THEN 'quantity_mismatch'
         WHEN o.line IS NOT NULL THEN 'over_billed'
         WHEN a.line IS NOT NULL THEN 'amount_mismatch'
         ELSE 'matched' END AS outcome
FROM checked c
LEFT JOIN over o ON o.line = c.line
LEFT JOIN amounts a ON a.line = c.line
"""

WRITTEN = """
INSERT INTO {s}.ordo_reconciliation_items (batch_id, line, invoice_number, outcome, detail)
SELECT '{batch}', line, invoice_number, outcome, '' FROM decided;
INSERT INTO {s}.ordo_reconciled_invoices
    (finess, invoice_number, batch_id, line, outcome, prescription_id, paid_lines)
SELECT d.finess, d.invoice_number, '{batch}', d.line, d.outcome, d.number,
       CASE WHEN d.outcome = 'matched' THEN (
           SELECT string_agg(concat_ws(',', b.line_no, b.quantity, b.amount_cents), ','
                             ORDER BY b.line_no)
           FROM billed b WHERE b.line = d.line) END
FROM decided d WHERE d.nth = 1 AND d.outcome NOT IN ('unknown_prescription', 'invalid');
"""


def stage(conn: psycopg.Connection, schema: str, invoices: Path) -> float:
    """The file parsed (as ordo parses it) and COPYed: one row per invoice, one per line."""
    started = time.perf_counter()
    s = f'"{schema}"'
    conn.execute(SCRATCH.format(s=s))
    rows: list[tuple[object, ...]] = []
    with (
        conn.cursor().copy(f"COPY {s}.bench_sql_invoices FROM STDIN") as heads,
        invoices.open("rb") as handle,
    ):
        for at, raw in enumerate(handle, start=1):
            parsed = parse_line(raw.rstrip(b"\n"), at)
            if isinstance(parsed, Rejected):
                heads.write_row((at, None, parsed.invoice_number, None, False))
                continue
            invoice = parsed.invoice
            heads.write_row((at, invoice.finess, invoice.invoice_number, parsed.number, True))
            rows.extend(
                (at, item.line_no, item.product.code, item.quantity, item.amount_cents)
                for item in invoice.lines
            )
    _copy(conn, f"{s}.bench_sql_lines", rows)
    conn.execute(f"CREATE INDEX ON {s}.bench_sql_lines (line)")
    conn.execute(f"ANALYZE {s}.bench_sql_invoices; ANALYZE {s}.bench_sql_lines")
    return time.perf_counter() - started


def _copy(conn: psycopg.Connection, table: str, rows: list[tuple[object, ...]]) -> None:
    with conn.cursor().copy(f"COPY {table} FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def extract_states(conn: psycopg.Connection, schema: str) -> None:
    """The prescribed lines and recorded billings, out of the states, once per schema."""
    s = f'"{schema}"'
    found = conn.execute("SELECT to_regclass(%s)", (f"{schema}.bench_sql_recorded",)).fetchone()
    if found and found[0]:
        return
    prescribed: list[tuple[object, ...]] = []
    recorded: list[tuple[object, ...]] = []
    with conn.cursor() as states:
        for (state,) in states.execute(f"SELECT state FROM {s}.ordo_view_prescriptions"):
            record = _records.decode(state)
            pid = record.prescription_id
            for line in record.lines:
                product = line.prescribed.product
                prescribed.append((pid, line.prescribed.line_no, product.system, product.code))
            for d in record.dispensations:
                if d.withdrawn_at is None and d.invoice_number is not None:
                    for b in d.billed_lines:
                        row = (pid, d.finess, d.invoice_number, b.line_no, b.quantity)
                        recorded.append((*row, b.amount_cents))
    conn.execute(EXTRACTED.format(s=s))
    _copy(conn, f"{s}.bench_sql_prescribed", prescribed)
    _copy(conn, f"{s}.bench_sql_recorded", recorded)
    conn.execute(EXTRACTED_INDEX.format(s=s))


def reconcile(conn: psycopg.Connection, schema: str) -> tuple[float, dict[str, int]]:
    """The SQL's time and its counts per outcome, written to ordo's reconciliation tables."""
    s = f'"{schema}"'
    sql = BatchSql(POSTGRES, schema)
    for statement in [*sql.create_tables(), *sql.create_indexes()]:
        conn.execute(statement)
    conn.commit()
    started = time.perf_counter()
    with conn.transaction():
        conn.execute(BILLED.format(s=s))
        conn.execute(BILLED_INDEX)
        conn.execute(DECIDED.format(s=s))
        conn.execute(WRITTEN.format(s=s, batch=BATCH))
    seconds = time.perf_counter() - started
    rows = conn.execute(
        f"SELECT outcome, count(*) FROM {s}.ordo_reconciliation_items "
        "WHERE batch_id = %s GROUP BY outcome",
        (BATCH,),
    ).fetchall()
    return seconds, {str(outcome): int(n) for outcome, n in rows}
