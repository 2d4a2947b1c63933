"""The FHIR R4 door (`/fhir/R4`): FHIR resources mapped to the same commands and views as /v1.

FHIR is a second door, not a second model: a resource is parsed and validated, turned into the
command a /v1 body would give, decided by `adapters.service.PrescriptionService`, and its result
shown as a resource again (parse -> command -> service -> view -> resource). What a client sent
that ordo does not model (structured dosage, notes, foreign extensions) is kept verbatim with the
event that records it (`lines_as_sent`), so a read gives it back unchanged.

Resources are parsed and emitted with `fhir.resources`' R4B models: R4B (4.3.0) keeps the R4
(4.0.1) structure of MedicationRequest, MedicationDispense, Bundle, OperationOutcome, Parameters
and CapabilityStatement element for element, and its validators check the structure (unknown
elements, cardinalities, resourceType) and the primitive datatypes (dateTime, decimal, code...).
This package knows nothing of HTTP: `adapters.http.fhir` serves it.
"""
