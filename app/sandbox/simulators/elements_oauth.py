"""The Elements token server: organisation flow and refresh tokens.

The spec sends client credentials as ``PHP_AUTH_USER``/``PHP_AUTH_PW``, which is how
PHP exposes HTTP Basic authentication, so clients authenticate with Basic auth.
Refresh tokens are single-use: every grant hands out a fresh access/refresh pair.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

READ = "klantdossier.read"
WRITE = "klantdossier.write"
_SCOPES = (READ, WRITE)


class _OAuthError(Exception):
    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.response = JSONResponse(
            {"error": error, "error_description": description}, status_code=status
        )


@dataclass(frozen=True)
class _AccessToken:
    issued_at: float
    scopes: tuple[str, ...]


class TokenServer:
    """Issues tokens at ``/oauth/access_token`` and checks them on data requests."""

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        organisation: str,
        ttl_s: float,
        clock: Callable[[], float],
    ) -> None:
        self._client = (client_id, client_secret)
        self._organisation = organisation
        self._ttl_s = ttl_s
        self._clock = clock
        self._access: dict[str, _AccessToken] = {}
        self._refresh: dict[str, tuple[str, ...]] = {}
        self.issued: list[str] = []
        """Every access and refresh token handed out, for tests that look for leaks."""

    async def endpoint(self, request: Request) -> Response:
        form = {
            name: values[0]
            for name, values in parse_qs(
                (await request.body()).decode("utf-8", "replace"), keep_blank_values=True
            ).items()
        }
        try:
            self._authenticate_client(request.headers.get("authorization", ""))
            grant = form.get("grant_type")
            if not grant:
                raise _OAuthError(
                    "invalid_request", "The grant type was not specified in the request"
                )
            if grant == "organisation":
                scopes = self._organisation_grant(form)
            elif grant == "refresh_token":
                scopes = self._refresh_grant(form)
            else:
                raise _OAuthError("unsupported_grant_type", f'Grant type "{grant}" not supported')
        except _OAuthError as refused:
            return refused.response
        return self._issue(scopes)

    def authorize(self, token: str | None, scope: str) -> Response | None:
        """The refusal for a data request with ``token`` that needs ``scope``, or None."""
        issued = self._access.get(token or "")
        if issued is None:
            return _invalid_token("The access token provided is invalid")
        if self._clock() >= issued.issued_at + self._ttl_s:
            return _invalid_token("The access token provided has expired")
        if scope not in issued.scopes:
            return JSONResponse(
                {
                    "error": "insufficient_scope",
                    "error_description": "The request requires higher privileges than provided "
                    "by the access token",
                },
                status_code=403,
            )
        return None

    def _authenticate_client(self, header: str) -> None:
        scheme, _, encoded = header.partition(" ")
        try:
            user, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            user = password = ""
        known_user, known_password = self._client
        if not (
            scheme.lower() == "basic"
            and secrets.compare_digest(user.encode(), known_user.encode())
            and secrets.compare_digest(password.encode(), known_password.encode())
        ):
            raise _OAuthError("invalid_client", "Client authentication failed", status=401)

    def _organisation_grant(self, form: dict[str, str]) -> tuple[str, ...]:
        missing = [name for name in ("organisation", "webservice", "scope") if not form.get(name)]
        if missing:
            names = ", ".join(f'"{name}"' for name in missing)
            raise _OAuthError("invalid_request", f"Missing parameters: {names} required")
        if form["organisation"] != self._organisation:
            raise _OAuthError("invalid_grant", "Unknown organisation")
        if form["webservice"] != "data":
            raise _OAuthError("invalid_request", "Unknown webservice")
        scopes = tuple(dict.fromkeys(form["scope"].split()))
        if not scopes or any(scope not in _SCOPES for scope in scopes):
            raise _OAuthError("invalid_request", "An unsupported scope was requested")
        return scopes

    def _refresh_grant(self, form: dict[str, str]) -> tuple[str, ...]:
        token = form.get("refresh_token")
        if not token:
            raise _OAuthError("invalid_request", 'Missing parameter: "refresh_token" is required')
        scopes = self._refresh.pop(token, None)
        if scopes is None:
            raise _OAuthError("invalid_grant", "Invalid refresh token")
        return scopes

    def _issue(self, scopes: tuple[str, ...]) -> Response:
        access, refresh = secrets.token_hex(20), secrets.token_hex(20)
        self.issued += [access, refresh]
        self._access[access] = _AccessToken(self._clock(), scopes)
        self._refresh[refresh] = scopes
        return JSONResponse(
            {
                "access_token": access,
                "expires_in": int(self._ttl_s),
                "token_type": "Bearer",
                "scope": " ".join(scopes),
                "refresh_token": refresh,
            }
        )


def _invalid_token(description: str) -> Response:
    return JSONResponse(
        {"error": "invalid_token", "error_description": description}, status_code=401
    )
