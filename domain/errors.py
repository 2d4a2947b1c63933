"""Why a command was refused, in the contract's own words.

The codes are fixed by the external contract (contract.md, "Errors"): LGO and LAP software
branch on them, so they are a closed set here and the HTTP adapter maps each to a status.
"""

from __future__ import annotations

from typing import Literal

ErrorCode = Literal[
    "invalid_request",
    "not_found",
    "forbidden",
    "already_dispensed",
    "quantity_exceeds_remaining",
    "prescription_cancelled",
    "prescription_expired",
    "already_billed",
    "billing_exceeds_dispensed",
    "idempotency_key_reused",
    "quantity_exceeds_allowed_now",
    "narcotic_overlap",
    "withdrawal_window_closed",
    "invoice_number_used",
    "dispensation_withdrawn",
    "substitution_not_allowed",
    "unknown_product",
    "conversation_closed",
    "substitution_excluded",
    "non_substitution_reason_invalid",
    "lot_required",
    "designated_pharmacy_only",
    "hospital_use_only",
    "exceptional_supply_not_allowed",
]


class DomainError(Exception):
    """A command the rules refuse. Nothing is recorded when it is raised."""

    def __init__(
        self,
        code: ErrorCode,
        detail: str,
        *,
        field: str | None = None,
        max_quantity: int | None = None,
    ) -> None:
        super().__init__(detail)
        self.code: ErrorCode = code
        self.detail = detail
        self.field = field
        # quantity_exceeds_allowed_now / narcotic_overlap / designated_pharmacy_only /
        # exceptional_supply_not_allowed: the most that may be given now.
        self.max_quantity = max_quantity

    def __repr__(self) -> str:
        return f"DomainError({self.code!r}, {self.detail!r}, field={self.field!r})"


def invalid(detail: str, field: str) -> DomainError:
    """A request that names something impossible (an unknown line, a zero quantity)."""
    return DomainError("invalid_request", detail, field=field)
