"""Every handler is given the call (the caller and the services) and what its request says,
one after the other: no handler's dependencies wait in a task group."""

from __future__ import annotations

from pathlib import Path

from litestar.routes import HTTPRoute

from adapters.bootstrap import build_app
from tests.conftest import settings_for


def test_no_handler_resolves_two_dependencies_at_once(tmp_path: Path) -> None:
    app = build_app(settings_for(tmp_path))
    at_once = [
        f"{method} {route.path}: {sorted(d.key for d in batch)}"
        for route in app.routes
        if isinstance(route, HTTPRoute)
        for method, (_, kwargs_model) in route.route_handler_map.items()
        for batch in kwargs_model.dependency_batches
        if len(batch) > 1
    ]

    assert at_once == []
