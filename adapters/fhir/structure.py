"""R4B's structure as msgspec Structs: the fast check of what a client sends.

The Structs are made, once at import, from `fhir.resources`' R4B models of the resources ordo
reads (and of every datatype they reach): the same element names, cardinalities (required
elements, lists of at least one item), choices (`value[x]`: at most one, one when required) and
primitive formats (the models' own patterns and bounds), with no unknown element. They are at
least as strict as the models: whatever they refuse, or cannot express (a resource type other
than `RESOURCES`, a narrative, a primitive's extension in place of its value, a leap second),
is left to `fhir.resources` (adapters.fhir.parsing), which names the element at fault or
accepts. What they accept, the models accept too.

A Struct reads like the model: `request.dispenseRequest.quantity.value`, `get_resource_type()`;
decimals are numbers (int or float), dates and instants the strings sent.
"""

from __future__ import annotations

import contextlib
import re
import sys
import types
import typing
from datetime import date, datetime
from operator import attrgetter
from typing import Annotated, Any

import msgspec
from fhir.resources.R4B import get_fhir_model_class
from fhir_core import types as fhir_types
from pydantic import BaseModel
from pydantic.fields import FieldInfo

# The resources a prescribing or a dispensing holds, and those its references point to.
RESOURCES = (
    "Bundle",
    "MedicationRequest",
    "MedicationDispense",
    "Medication",
    "Patient",
    "Practitioner",
    "Organization",
)
NEVER = Annotated[str, msgspec.Meta(pattern="(?!)")]  # left to fhir.resources, whatever is sent
NAMESPACE = types.ModuleType(f"{__name__}.generated")  # where the Structs find each other by name
sys.modules[NAMESPACE.__name__] = NAMESPACE
_INT32 = {"ge": -(2**31), "le": 2**31 - 1}
_FINITE = msgspec.Meta(ge=-sys.float_info.max, le=sys.float_info.max)  # 1E400 reads as inf
_YEAR = r"([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)"  # no year 0000
_FRACTION = r"(\.[0-9]{1,6})?"  # the digits a datetime parser keeps
_ZONE = r"(Z|[+\-]((0[0-9]|1[0-3]):[0-5][0-9]|14:00))"
_FULL_DAY = rf"{_YEAR}-(0[1-9]|1[0-2])-(0[1-9]|[1-2][0-9]|3[0-1])"
_DAY = rf"{_YEAR}(-(0[1-9]|1[0-2])(-(0[1-9]|[1-2][0-9]|3[0-1]))?)?"
_TIME = rf"([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]{_FRACTION}"
# Python's `$` also matches before a final newline; the models' patterns (Rust's regex) do not.
_END = r"\Z"
_ANCHORS = ("^", "$", r"\A", r"\Z", r"\b", r"\B", "(?")
DATE_LIKE: dict[type[Any], tuple[str, Any]] = {
    # The model's type of date: the strings taken, and how a full date is read (valid days only).
    fhir_types.Instant: (rf"^{_FULL_DAY}T{_TIME}{_ZONE}{_END}", datetime.fromisoformat),
    fhir_types.DateTime: (rf"^{_DAY}(T{_TIME}{_ZONE})?{_END}", datetime.fromisoformat),
    fhir_types.Date: (rf"^{_DAY}{_END}", date.fromisoformat),
    fhir_types.Time: (rf"^{_TIME}{_END}", None),
}


# A resource or an element as validated: one of these Structs or, when they left it to
# fhir.resources, its R4B model; both read alike (the element names as attributes).
Valid = Any


class Element(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """An element of R4B, checked as its model would be (see the module's docstring)."""

    def get_resource_type(self) -> str:
        tag = type(self).__struct_config__.tag
        return tag if isinstance(tag, str) else type(self).__name__


def checked(resource_type: str, data: dict[str, Any]) -> Element | None:
    """`data` as the Struct of `resource_type`, or None when the Structs cannot vouch for it."""
    struct = _ROOTS.get(resource_type)
    if struct is None:
        return None
    try:
        found: Element = msgspec.convert(data, struct)
    except (msgspec.ValidationError, RecursionError):
        return None
    return found


def _struct_name(model: type[BaseModel]) -> str:
    return f"R4B{model.__name__}"


class _Maker:
    """Makes the Struct of each model reached, each once."""

    def __init__(self) -> None:
        self.made: dict[str, type[Element]] = {}

    def struct(self, model: type[BaseModel]) -> str:
        name = _struct_name(model)
        if name not in self.made:
            self.made[name] = Element  # reserved: a model may reach itself
            self.made[name] = self._defined(model, name)
            setattr(NAMESPACE, name, self.made[name])
        return name

    def _defined(self, model: type[BaseModel], name: str) -> type[Element]:
        fields: list[tuple[str, Any, Any]] = []
        dates: list[tuple[str, Any]] = []
        for attribute, info in model.model_fields.items():
            if attribute == "fhir_comments":
                continue
            kind, reader = self._kind(info.annotation)
            key = info.alias or attribute
            required = info.is_required() or _extra(info).get("element_required") is True
            rename = key if key != attribute else None
            if required:
                fields.append((attribute, kind, msgspec.field(name=rename)))
            else:
                fields.append(
                    (attribute, f"{kind} | None", msgspec.field(default=None, name=rename))
                )
            if reader is not None:
                dates.append((attribute, reader))
        resource = model.__name__ in RESOURCES
        made = msgspec.defstruct(
            name,
            fields,
            bases=(Element,),
            module=NAMESPACE.__name__,
            namespace=_post_init(_choices(model), dates),
            tag_field="resourceType" if resource else None,
            tag=model.__name__ if resource else None,
            forbid_unknown_fields=True,
            omit_defaults=True,
            kw_only=True,
        )
        assert issubclass(made, Element)
        return made

    def _kind(self, annotation: Any) -> tuple[str, Any]:
        """The Struct field's type for a model's annotation (named in `NAMESPACE`, where the
        Structs that reach one another are found), and the reader of its dates."""
        annotation = _optional_removed(annotation)
        if typing.get_origin(annotation) is list:
            item, reader = self._kind(typing.get_args(annotation)[0])
            return f"Annotated[list[{item}], {_named(_LISTED)}]", reader
        if typing.get_origin(annotation) is Annotated:
            kind, reader = _primitive(*typing.get_args(annotation))
            return _named(kind), reader
        if hasattr(annotation, "get_model_klass"):
            return self._element(annotation.get_model_klass()), None
        return ("bool" if annotation is bool else _named(NEVER)), None

    def _element(self, model: type[BaseModel]) -> str:
        if model.__name__ == "Resource":
            return _RESOURCE_UNION
        if model.__name__ == "Narrative":
            return _named(NEVER)
        return self.struct(model)


_RESOURCE_UNION = "R4BResource"
_LISTED = msgspec.Meta(min_length=1)
NAMESPACE.Annotated = Annotated  # type: ignore[attr-defined]
_NAMES: dict[int, str] = {}


def _named(kind: Any) -> str:
    """A name for `kind` in `NAMESPACE`."""
    name = _NAMES.get(id(kind))
    if name is None:
        name = _NAMES[id(kind)] = f"_T{len(_NAMES)}"
        setattr(NAMESPACE, name, kind)
    return name


def _optional_removed(annotation: Any) -> Any:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        kept = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(kept) == 1:
            return _optional_removed(kept[0])
    return annotation


def _primitive(python: Any, constraint: Any, *_: Any) -> tuple[Any, Any]:
    """A primitive's type: its JSON type with the model's pattern and bounds."""
    kind = type(constraint) if not isinstance(constraint, type) else constraint
    for date_kind, (pattern, reader) in DATE_LIKE.items():
        if issubclass(kind, date_kind):
            return Annotated[str, msgspec.Meta(pattern=pattern)], reader
    if kind is fhir_types.Decimal:
        return int | Annotated[float, _FINITE], None
    if python is int:
        bounds = {**_INT32, **_bounds(constraint)}
        if issubclass(kind, fhir_types.UnsignedInt):
            bounds["ge"] = 1 if issubclass(kind, fhir_types.PositiveInt) else 0
        return Annotated[int, msgspec.Meta(**bounds)], None
    if python is str and hasattr(constraint, "__iter__"):
        return Annotated[str, msgspec.Meta(**_bounds(constraint))], None
    return NEVER, None  # url, uuid, base64Binary, xhtml: rare, left to fhir.resources


def _bounds(constraint: Any) -> dict[str, Any]:
    """The pattern and bounds a primitive's pydantic metadata gives (annotated_types)."""
    found: dict[str, Any] = {}
    for item in constraint:
        for name in ("pattern", "min_length", "max_length", "ge", "le"):
            value = getattr(item, name, None)
            if value is not None:
                found[name] = value.pattern if isinstance(value, re.Pattern) else value
    pattern = found.get("pattern")
    if pattern is None:
        return found
    if pattern.endswith("$") and not pattern.endswith("\\$"):
        found["pattern"] = pattern[:-1] + _END
    elif re.fullmatch(pattern, "") and not any(a in pattern for a in _ANCHORS):
        del found["pattern"]  # matches every string (an empty match at its start): no check
    return found


def _extra(info: FieldInfo) -> dict[str, Any]:
    extra = info.json_schema_extra
    return extra if isinstance(extra, dict) else {}


def _choices(model: type[BaseModel]) -> list[tuple[tuple[str, ...], bool]]:
    """The model's choices (`value[x]`): their elements, and whether one is required."""
    groups: dict[str, list[str]] = {}
    required: dict[str, bool] = {}
    for attribute, info in model.model_fields.items():
        choice = _extra(info).get("one_of_many")
        if isinstance(choice, str):
            groups.setdefault(choice, []).append(attribute)
            required[choice] = _extra(info).get("one_of_many_required") is True
    return [(tuple(names), required[choice]) for choice, names in groups.items()]


def _post_init(
    choices: list[tuple[tuple[str, ...], bool]], dates: list[tuple[str, Any]]
) -> dict[str, Any]:
    """What a Struct's types cannot say: one element per choice, dates that exist (as the
    Struct's `__post_init__`, which msgspec runs once the fields are read; none if nothing to
    say)."""
    chosen = [(attrgetter(*names, names[0]), required, names) for names, required in choices]
    if not chosen and not dates:
        return {}

    def post_init(self: Element) -> None:
        for values, required, names in chosen:
            given = len(names) - values(self)[:-1].count(None)
            if given > 1 or (required and given == 0):
                raise ValueError(f"one of {', '.join(names)}")
        for name, reader in dates:
            value = getattr(self, name)
            for text in value if isinstance(value, list) else [value]:
                if text is not None and len(text) >= 10:
                    reader(text)  # ValueError: no such day

    return {"__post_init__": post_init}


def _roots() -> dict[str, type[Element]]:
    maker = _Maker()
    for resource in RESOURCES:
        maker.struct(get_fhir_model_class(resource))
    resources = tuple(maker.made[_struct_name(get_fhir_model_class(r))] for r in RESOURCES)
    setattr(NAMESPACE, _RESOURCE_UNION, typing.Union[resources])  # noqa: UP007
    for struct in resources:  # msgspec reads the types on first use: here, not in a request
        with contextlib.suppress(msgspec.ValidationError):
            msgspec.convert({}, struct)
    return {resource: struct for resource, struct in zip(RESOURCES, resources, strict=True)}


_ROOTS = _roots()
