"""The Bundles ordo answers with: a `transaction-response` (one entry per resource created) and
a `searchset` page (`total`, `link` self and next). Their resources were validated once, when
they were sent; the tests hold every answer to the R4B models (tests/api/test_fhir_*.py)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import urlencode

BASE = "/fhir/R4"


def transaction_response(locations: Sequence[str]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "transaction-response",
        "entry": [
            {"response": {"status": "201 Created", "location": location}} for location in locations
        ],
    }


def searchset(
    resource_type: str,
    resources: Sequence[dict[str, Any]],
    total: int | None,
    query: dict[str, str],
    next_query: dict[str, str] | None,
) -> dict[str, Any]:
    links = [{"relation": "self", "url": _url(resource_type, query)}]
    if next_query is not None:
        links.append({"relation": "next", "url": _url(resource_type, next_query)})
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "type": "searchset",
        "link": links,
        "entry": [
            {
                "fullUrl": f"{BASE}/{resource_type}/{r['id']}",
                "resource": r,
                "search": {"mode": "match"},
            }
            for r in resources
        ],
    }
    if total is not None:
        bundle["total"] = total
    return bundle


def _url(resource_type: str, query: dict[str, str]) -> str:
    return f"{BASE}/{resource_type}?{urlencode(query)}"
