"""Conditional reads: an `ETag` naming the representation a caller was given, and `304 Not
Modified` when the caller already holds it (`If-None-Match`).

The tag is the stream's version and a digest of the view itself, as the caller's role, consent
masking, day and the catalogue made it: two callers shown different things (a prescriber under
the patient's opposition, and the pharmacist) never share a tag, and a tag stops matching as
soon as a new event or a new day changes what the caller is shown. No tag is remembered
between requests: each read loads the prescription, builds its view and compares.
"""

from __future__ import annotations

import hashlib
from typing import Annotated, Any

import msgspec
from litestar import Response
from litestar.datastructures import ResponseHeader
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import HeaderParameter

IfNoneMatch = Annotated[
    str | None,
    HeaderParameter(
        name="If-None-Match",
        required=False,
        max_length=1024,
        description="The `ETag` of a representation the caller holds: if it is still the one "
        "this caller would be given, the answer is 304 with no body.",
    ),
]

ETAG_HEADER = ResponseHeader(
    name="ETag",
    documentation_only=True,
    description="Names this representation for this caller: the stream's version and a digest "
    "of what the caller is shown (masking included); send it back in `If-None-Match`.",
)
NOT_MODIFIED = {
    304: ResponseSpec(
        data_container=None,
        description="Not modified: the `If-None-Match` tag is the representation this caller "
        "would be given now; no body, the `ETag` repeated.",
    )
}


def entity_tag(version: int, view: msgspec.Struct) -> str:
    digest = hashlib.blake2b(msgspec.json.encode(view), digest_size=12).hexdigest()
    return f'"{version}-{digest}"'


def held(if_none_match: str | None, tag: str) -> bool:
    """Whether the caller's `If-None-Match` names `tag` (weak comparison, as RFC 9110 asks of
    GET), or is `*`."""
    if if_none_match is None:
        return False
    offered = [candidate.strip() for candidate in if_none_match.split(",")]
    return "*" in offered or tag in (candidate.removeprefix("W/") for candidate in offered)


def conditional(view: msgspec.Struct, version: int, if_none_match: str | None) -> Response[Any]:
    """The view with its `ETag`, or 304 with the tag alone if the caller holds it already."""
    tag = entity_tag(version, view)
    if held(if_none_match, tag):
        return Response(None, status_code=304, headers={"ETag": tag})
    return Response(view, headers={"ETag": tag})
