"""What a route handler is given: the call (who calls, and the services the composition root
built), and what its request says (its body, its page, its search).

Every handler asks for `call`; the application's state holds the one instance of each service
(adapters/bootstrap.py), and `Call` is the only code that reads it. Each provider of the
request's own parts (its body, page, search) takes `call` too, so that a handler's dependencies
resolve one after another: Litestar resolves two or more dependencies of one level at once, in
an anyio task group (litestar-org/litestar#4563). With the caller and each service a dependency
of its own, a read of one prescription cost about 400 µs of the server's CPU besides HTTP;
with `call`, about 310 µs.
"""

from __future__ import annotations

from datetime import date

from litestar.di import Provide

from adapters.http.call import provide_call
from adapters.http.lists import provide_lists
from adapters.http.pages import provide_page
from adapters.service import PrescriptionService
from domain.actors import Actor
from domain.calendar import local_day


def today_of(service: PrescriptionService, actor: Actor | None = None) -> date:
    """Today where the caller is: a pharmacy's own calendar, else France's (Paris)."""
    now = service.clock()
    if actor is not None and actor.role == "pharmacist" and actor.finess:
        return local_day(now.at, actor.finess)
    return now.today


# Every handler may ask for these by name; Litestar builds only those a handler asks for.
DEPENDENCIES = {
    "call": Provide(provide_call),
    "page": Provide(provide_page, sync_to_thread=False),
    "lists": Provide(provide_lists, sync_to_thread=False),
}
