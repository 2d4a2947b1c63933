"""`scripts/bench_hapi`: ordo against HAPI FHIR's JPA server on the same PostgreSQL (not a test:
it takes minutes). Results go to BENCHMARKS.md (`--write BENCHMARKS.md --section hapi`).

    scripts/bench_hapi [--source DIR|URL] [--tag image/v8.8.0-1] [--war ROOT.war]
                       [--clients 1,32] [--seconds 15] [--write BENCHMARKS.md]

It checks out hapi-fhir-jpaserver-starter at the tag of its HAPI FHIR 8.8.0 release (cloned
from the public repository unless `--source` names another), builds it with `mvn -q
-DskipTests package` (Maven's cache: ~/.m2; the checkout and the war: .services/hapi/), starts a
private throwaway PostgreSQL cluster with scripts/services' settings, then runs one server at a
time on it, ordo's `ordo serve` (/fhir/R4, a scratch schema) and HAPI's war (/fhir, a database
of its own): it seeds one-line prescriptions through each one's FHIR door, then sends the same
calls with tools/bench's load generator (closed-loop clients): register a one-line
MedicationRequest, read a seeded line, record a one-pack MedicationDispense.

By job: `calls` (the bodies and the calls), `hapi` (source, build, process), `report` (the
table and the block of BENCHMARKS.md), `cli` (the whole run).
"""
