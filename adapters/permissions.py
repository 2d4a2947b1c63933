"""Who may ask what: the one place roles are checked, for every use case and list.

Finer checks that need the prescription (the prescriber who wrote it, the patient it is for)
stay in the use case, where they answer not_found rather than reveal that it exists.
"""

from __future__ import annotations

from typing import NamedTuple

from domain.actors import Actor, Role
from domain.errors import DomainError


class Permission(NamedTuple):
    roles: tuple[Role, ...]
    refusal: str  # the problem's detail for anyone else


def _for(*roles: Role) -> Permission:
    return Permission(roles, f"this operation is for the role {' or '.join(roles)}")


PERMISSIONS: dict[str, Permission] = {
    # use cases (adapters/service.py)
    "read": _for("prescriber", "pharmacist", "patient", "insurer"),
    "history": _for("patient", "insurer"),
    "issue": _for("prescriber"),
    "dispense": _for("pharmacist"),
    "dispensable": _for("pharmacist"),
    "withdraw": _for("pharmacist"),
    "record_adaptation": _for("pharmacist"),
    "bill": _for("pharmacist"),
    "cancel": _for("prescriber"),
    "change_consent": _for("patient", "insurer"),
    "transmit": _for("patient", "prescriber"),
    "send_to_patient": _for("prescriber"),
    # webhooks (adapters/webhooks/subscriptions.py)
    "subscribe": _for("pharmacist", "prescriber"),
    # the insurer reads the data, not the paper (adapters/document/ordonnance.py)
    "document": _for("prescriber", "patient", "pharmacist"),
    # who saw a prescription (adapters/http/access_log.py)
    "access_log": Permission(
        ("patient", "insurer"), "the access log is for the patient or the insurer"
    ),
    # read models and batches (adapters/http/lists.py, adapters/http/reconciliation.py)
    "prescriber_list": Permission(("prescriber",), "this list is for the role prescriber"),
    "patient_list": Permission(("patient",), "this list is for the role patient"),
    "pharmacy_inbox": Permission(("pharmacist",), "this list is for the role pharmacist"),
    "pharmacy_conversations": Permission(("pharmacist",), "this list is for the role pharmacist"),
    "patient_conversations": Permission(("patient",), "this list is for the role patient"),
    "reconciliation": Permission(
        ("insurer",), "reconciliation is for the insurer (Assurance Maladie)"
    ),
}


def allow(actor: Actor, use_case: str) -> None:
    """Raise `forbidden` unless the actor's role may ask for `use_case`."""
    permission = PERMISSIONS[use_case]
    if actor.role not in permission.roles:
        raise DomainError("forbidden", permission.refusal)
