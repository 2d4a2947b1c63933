"""The decisions: pure functions from a prescription's state to the events they cause, or a
refusal, one module per use case (issuing, dispensing, corrections, billing, lifecycle,
sending).

Each function checks the request's own shape first (422 `invalid_request`: unknown line,
zero quantity), then the prescription's state (409: cancelled, expired, nothing left). A
refusal raises `DomainError` and produces no event, so a refused request records nothing.
"""
