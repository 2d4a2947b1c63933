"""`scripts/bench`: load benchmarks of the ordo API (not tests). Results go to BENCHMARKS.md.

    scripts/bench dispensing [--seconds 15] [--clients 1,32] [--backends sqlite,postgres]
                             [--workers N[,M...]] [--py-spy] [--write BENCHMARKS.md]

For each backend it starts a fresh `ordo serve` (SQLite in a temp dir, PostgreSQL in a
scratch schema), issues prescriptions through the API, then runs closed-loop clients that
POST one-pack dispensings on random prescriptions. On PostgreSQL it also sends the event
store's own append straight to the database with asyncpg (the locked SQL baseline), and with
--py-spy it samples one server process under load.

By job: `options` (the command line), `load` (who asks, the HTTP clients, the loops),
`sampler` (CPU, PostgreSQL sessions, py-spy), `servers` (the API servers and PostgreSQL),
`runs` (the API runs), `baseline` (the SQL baseline), `report` (the tables, BENCHMARKS.md),
`cli` (the whole run). `scripts/bench webhooks` measures the webhooks' deliverer instead
(tools/bench/webhooks.py).
"""
