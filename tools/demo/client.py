"""What the demo talks to the API through: an HTTP client that signs each actor's token,
counts every call by action and stops at the first answer that was not the point (a non-2xx
answer, or one that contradicts the contract)."""

from __future__ import annotations

import hashlib
from collections import Counter
from typing import Any

import httpx

from adapters.auth import sign_token

API_TOKEN_TTL = 3600


class DemoError(Exception):
    """The demo cannot go on: an API error, a contract violation, or a set-up problem."""


class ApiError(DemoError):
    def __init__(self, action: str, method: str, path: str, response: httpx.Response) -> None:
        problem = _problem(response)
        where = f" (field {problem['field']})" if problem.get("field") else ""
        hint = AUTH_HINT if response.status_code == 401 else ""
        super().__init__(
            f"{action}: {method} {path} answered {response.status_code} "
            f"{problem.get('code', '')}: {problem.get('detail', response.text[:300])}{where}{hint}"
        )
        self.status = response.status_code
        self.code = problem.get("code")


AUTH_HINT = (
    "\nThe demo signs HS256 tokens with ORDO_AUTH_SECRET (or ./var/auth-secret): the server "
    "must share the same secret (same ORDO_AUTH_SECRET or same ORDO_DATA_DIR)."
)


def _problem(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


class ContractError(DemoError):
    """A 2xx answer that says something the contract rules out."""


def expect(condition: bool, what: str) -> None:
    if not condition:
        raise ContractError(f"unexpected answer: {what}")


class Tokens:
    """Bearer tokens for each actor of the day, signed once with the local HS256 secret."""

    def __init__(self, secret: str, ttl_seconds: int = API_TOKEN_TTL) -> None:
        self._secret = secret
        self._ttl = ttl_seconds
        self._cache: dict[tuple[str, ...], str] = {}

    def prescriber(self, rpps: str) -> str:
        return self._sign("prescriber", rpps=rpps)

    def pharmacist(self, finess: str, rpps: str) -> str:
        return self._sign("pharmacist", rpps=rpps, finess=finess)

    def patient(self, ins: str) -> str:
        return self._sign("patient", ins=ins)

    def _sign(self, role: str, **identity: str) -> str:
        key = (role, *identity.values())
        if key not in self._cache:
            # A patient's subject is not their INS: tokens end up in shells and logs.
            names = [
                hashlib.sha256(v.encode()).hexdigest()[:12] if k == "ins" else v
                for k, v in identity.items()
            ]
            subject = f"{role}:{'/'.join(names)}"
            self._cache[key] = sign_token(
                self._secret, role=role, subject=subject, ttl_seconds=self._ttl, **identity
            )
        return self._cache[key]


class Api:
    """Every call of the demo, counted per action; any non-2xx answer raises ApiError."""

    def __init__(self, client: httpx.AsyncClient, tokens: Tokens) -> None:
        self.client = client
        self.tokens = tokens
        self.counts: Counter[str] = Counter()

    async def call(
        self,
        action: str,
        method: str,
        path: str,
        token: str,
        body: dict[str, Any] | None = None,
        *,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        response = await self.client.request(
            method, path, json=body, headers={"Authorization": f"Bearer {token}", **(headers or {})}
        )
        if not response.is_success:
            raise ApiError(action, method, path, response)
        self.counts[action] += 1
        return response

    async def json(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        answer: dict[str, Any] = (await self.call(*args, **kwargs)).json()
        return answer

    async def refused(
        self, action: str, path: str, token: str, body: dict[str, Any], *, code: str
    ) -> dict[str, Any]:
        """A POST the rules must refuse with this problem `code`; its problem body."""
        response = await self.client.post(
            path, json=body, headers={"Authorization": f"Bearer {token}"}
        )
        problem = _problem(response)
        expect(problem.get("code") == code, f"{action} answered {response.status_code}, not {code}")
        self.counts[action] += 1
        return problem
