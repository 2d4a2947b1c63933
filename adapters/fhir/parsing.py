"""From request bytes to a validated FHIR resource, or a 400 that names the element.

The JSON is read by msgspec (malformed JSON, bad UTF-8), bounded (nesting depth, entries of a
Bundle), then validated against R4B's structure of the resource type the route expects: first by
msgspec Structs made from `fhir.resources`' models (adapters.fhir.structure), and what they do not
accept by the models themselves, which refuse unknown elements, wrong datatypes and a wrong
`resourceType` with the element's FHIRPath in `expression`.
"""

from __future__ import annotations

from typing import Any

import msgspec
from pydantic import BaseModel, ValidationError

from adapters.fhir.outcome import FhirError
from adapters.fhir.structure import Valid, checked

MAX_DEPTH = 48  # the deepest a MedicationRequest goes is about 12 (extension in extension...)
MAX_ENTRIES = 200  # lines of one prescription or one dispensing, as /v1 allows


def bad_structure(diagnostics: str, expression: str | None = None) -> FhirError:
    return FhirError(400, "invalid_request", diagnostics, expression)


def json_of(raw: bytes) -> dict[str, Any]:
    """The body as a JSON object no deeper than `MAX_DEPTH`."""
    try:
        data = msgspec.json.decode(raw)
    except msgspec.DecodeError as error:
        raise bad_structure(f"the body is not valid JSON: {error}") from None
    except RecursionError:
        raise bad_structure("the body is not valid JSON: nested too deeply") from None
    except UnicodeDecodeError as error:
        raise bad_structure(f"the body is not valid UTF-8: {error.reason}") from None
    if not isinstance(data, dict):
        raise bad_structure("the body is not a FHIR resource (a JSON object)")
    _check_depth(data)
    return data


def _check_depth(data: Any) -> None:
    level: list[Any] = [data]
    for _ in range(MAX_DEPTH):
        level = [
            child
            for value in level
            for child in (value.values() if isinstance(value, dict) else value)
            if isinstance(child, dict | list)
        ]
        if not level:
            return
    raise bad_structure(f"the resource is nested deeper than {MAX_DEPTH} levels")


def resource_type(data: dict[str, Any], *expected: str) -> str:
    """The resource's type, one of `expected` (else 400, expression `resourceType`)."""
    kind = data.get("resourceType")
    if kind not in expected:
        raise bad_structure(
            f"resourceType {kind!r} is not served here: {' or '.join(expected)} expected",
            "resourceType",
        )
    assert isinstance(kind, str)
    return kind


def validated(model: type[BaseModel], data: dict[str, Any], where: str | None = None) -> Valid:
    """`data` as R4B's `model` says (its Struct, else the model itself), or 400 naming the first
    element at fault."""
    fast = checked(model.__name__, data)
    if fast is not None:
        return fast
    try:
        return model.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        path = element_path(where or model.__name__, first["loc"])
        raise bad_structure(f"{path}: {first['msg']}", path) from None
    except RecursionError:
        raise bad_structure("the resource is nested too deeply") from None


def element_path(root: str, loc: tuple[int | str, ...]) -> str:
    """pydantic's location as FHIRPath: ('entry', 0, 'resource') -> Bundle.entry[0].resource."""
    path = root
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part != "resource_type":
            path += f".{part}"
        else:
            path += ".resourceType"
    return path


def bundle_entries(data: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    """The entries of a `transaction` Bundle (checked before the Bundle is validated, so that a
    Bundle of 10,000 entries is refused at once)."""
    if data.get("type") != "transaction":
        raise invalid_bundle("a Bundle of type 'transaction' is expected", "Bundle.type")
    entries = data.get("entry")
    if not isinstance(entries, list) or not entries:
        raise invalid_bundle(f"the Bundle has no entry: one {kind} per line", "Bundle.entry")
    if len(entries) > MAX_ENTRIES:
        raise invalid_bundle(f"a Bundle has at most {MAX_ENTRIES} entries", "Bundle.entry")
    return entries


def invalid_bundle(diagnostics: str, expression: str) -> FhirError:
    return FhirError(422, "invalid_request", diagnostics, expression)
