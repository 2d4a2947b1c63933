"""Who a MedicationRequest is for and by, and what it prescribes, wherever the client put it:
`reference.identifier`, a resource `contained` in it, or another entry of the Bundle (by its
`fullUrl`)."""

from __future__ import annotations

from typing import Any

from fhir.resources.R4B.codeableconcept import CodeableConcept
from fhir.resources.R4B.identifier import Identifier
from fhir.resources.R4B.reference import Reference

from adapters.fhir.outcome import invalid_element


class Referenced:
    """The resources a reference may point to: the Bundle's entries by `fullUrl`, and the
    resources contained in the referring one (by `#id`)."""

    def __init__(self, by_url: dict[str, Any], contained: list[Any] | None = None) -> None:
        self._by_url = by_url
        self._contained = {f"#{r.id}": r for r in contained or [] if r.id}

    def within(self, contained: list[Any] | None) -> Referenced:
        return Referenced(self._by_url, contained)

    def target(self, reference: Reference | None, kind: str, expression: str) -> Any:
        if reference is None or reference.reference is None:
            return None
        found = self._contained.get(reference.reference) or self._by_url.get(reference.reference)
        if found is None or found.get_resource_type() != kind:
            raise invalid_element(
                f"{reference.reference} is no {kind} contained or in the Bundle", expression
            )
        return found

    def identifier_value(
        self, reference: Reference | None, kind: str, system: str, expression: str
    ) -> str:
        """The value of the identifier of `system` that the reference carries, or else its
        target (which must then be contained or in the Bundle)."""
        if reference is None:
            raise invalid_element(f"the {kind} is missing", expression)
        found = _value_of([reference.identifier] if reference.identifier else [], system)
        if found is None:
            target = self.target(reference, kind, f"{expression}.reference")
            found = _value_of(target.identifier or [] if target else [], system)
        if found is None:
            raise invalid_element(f"the {kind} needs an identifier of system {system}", expression)
        return found

    def medication(
        self, concept: CodeableConcept | None, reference: Reference | None, expression: str
    ) -> tuple[CodeableConcept | None, str]:
        """The medicine's code: the concept itself, or the `code` of the Medication referenced."""
        if concept is not None or reference is None:
            return concept, f"{expression}CodeableConcept"
        target = self.target(reference, "Medication", f"{expression}Reference")
        return (target.code if target else None), f"{expression}Reference"


def _value_of(identifiers: list[Identifier], system: str) -> str | None:
    return next((str(i.value) for i in identifiers if i.system == system and i.value), None)
