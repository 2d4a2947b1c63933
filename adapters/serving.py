"""The HTTP server under `ordo serve`: uvicorn or granian (ORDO_HTTP_SERVER), each running the
composition root's factory in `workers` processes with the same limits.

Both answer with no `Server` banner, log no access lines of their own (the app logs each request
with its route template), close an idle keep-alive connection after a few seconds, run the app's
lifespan in each worker, and finish the requests in flight on SIGTERM before the lifespan's
shutdown. The app itself bounds a body's size and a stalled body's wait (408), and sets the
request id.
"""

from __future__ import annotations

from typing import Literal

HttpServer = Literal["uvicorn", "granian"]
HTTP_SERVERS: tuple[HttpServer, ...] = ("uvicorn", "granian")
APP_FACTORY = "adapters.bootstrap:app_from_env"
KEEP_ALIVE_SECONDS = 5  # an idle keep-alive connection is closed after this
# granian's read buffer: the request line and headers must fit (h11 bounds uvicorn's at 16 KiB).
HEADERS_BYTES = 16 * 1024


def serve(server: HttpServer, host: str, port: int, workers: int) -> None:
    """Run the API until SIGINT or SIGTERM."""
    if server == "granian":
        _granian(host, port, workers)
    else:
        _uvicorn(host, port, workers)


def _uvicorn(host: str, port: int, workers: int) -> None:
    import uvicorn  # noqa: PLC0415 - only this server needs it

    uvicorn.run(
        APP_FACTORY,
        factory=True,
        host=host,
        port=port,
        workers=workers,
        access_log=False,
        log_level="warning",
        server_header=False,
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
    )


def _granian(host: str, port: int, workers: int) -> None:
    from granian.constants import HTTPModes, Interfaces  # noqa: PLC0415 - only this server
    from granian.http import HTTP1Settings  # noqa: PLC0415
    from granian.log import LogLevels  # noqa: PLC0415
    from granian.server import Server  # noqa: PLC0415

    Server(
        APP_FACTORY,
        factory=True,
        address=host,
        port=port,
        workers=workers,
        interface=Interfaces.ASGI,
        http=HTTPModes.http1,
        websockets=False,
        log_access=False,
        log_level=LogLevels.warning,
        http1_settings=HTTP1Settings(
            header_read_timeout=KEEP_ALIVE_SECONDS * 1000, max_buffer_size=HEADERS_BYTES
        ),
        workers_kill_timeout=30,
    ).serve()
