"""The Elements transport of `python -m app plan`: the worker's own requests go through it,
and its writes are kept instead of sent.

`plan` runs the worker's entry point rather than describing its writes a second time, so
what it shows cannot drift from what the worker does; this transport is what keeps Elements
untouched by it. Reads and the token grant reach Elements: the plan starts from what
Elements holds now. Every other request is recorded and answered as Elements answers a
write that succeeds (spec 1.9.6: a POST 201 with no body and the new resource in
`Location`, a PATCH 200), so the steps after it go on with the id it made up. Made-up ids
start far above any id Elements gives, and the record shows them as readable placeholders
(`{new klantdossier}`) in paths and bodies alike. The path keeps its query string
(`?rol=eerste-persoon`) but for the access token.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from typing import Any

import httpx

FIRST_MADE_UP_ID = 10**15
"""Elements' ids are database keys (5526, 120967): none comes near this."""

TOKEN_PATH = "/oauth/access_token"
READS = frozenset({"GET", "HEAD"})
ACCESS_TOKEN = "access_token"

NOUNS = {
    "klantdossiers": "klantdossier",
    "particulier": "klant",
    "zakelijk": "klant",
    "adressen": "adres",
    "emailadressen": "emailadres",
    "telefoonnummers": "telefoonnummer",
    "medewerkers": "medewerker",
    "contracten": "contract",
    "registraties": "registratie",
}
"""What a POST to a collection creates, by the collection's last path segment."""


@dataclass(frozen=True)
class RecordedWrite:
    method: str
    path: str
    body: Any

    def as_json(self) -> dict[str, Any]:
        return {"method": self.method, "path": self.path, "body": self.body}


class RecordingTransport(httpx.AsyncBaseTransport):
    """Wraps Elements' real transport; `writes` are the writes it kept, in order."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self._inner = inner
        self._placeholders: dict[int, str] = {}
        self._made: Counter[str] = Counter()
        self.writes: list[RecordedWrite] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        if request.method in READS or url.path == TOKEN_PATH:
            return await self._inner.handle_async_request(request)
        content = await request.aread()
        query = str(url.params.remove(ACCESS_TOKEN))
        self.writes.append(
            RecordedWrite(
                method=request.method,
                path=self._shown_path(url.path) + (f"?{query}" if query else ""),
                body=self._shown(json.loads(content)) if content else None,
            )
        )
        if request.method != "POST":
            return httpx.Response(200, headers={"Content-Type": "text/html"})
        made_up = self._made_up_id(url.path)
        return httpx.Response(
            201, headers={"Location": f"{url.path}/{made_up}", "Content-Type": "text/html"}
        )

    async def aclose(self) -> None:
        await self._inner.aclose()

    def _made_up_id(self, collection: str) -> int:
        """A new id for what a POST to `collection` creates, named by its placeholder; a
        second one of a kind is numbered, so no placeholder stands for two ids."""
        made_up = FIRST_MADE_UP_ID + len(self._placeholders)
        segment = collection.rstrip("/").rsplit("/", 1)[-1]
        noun = NOUNS.get(segment, segment)
        self._made[noun] += 1
        count = self._made[noun]
        self._placeholders[made_up] = f"{{new {noun}}}" if count == 1 else f"{{new {noun} {count}}}"
        return made_up

    def _shown_path(self, path: str) -> str:
        return "/".join(
            self._placeholders.get(int(part), part) if part.isdigit() else part
            for part in path.split("/")
        )

    def _shown(self, value: Any) -> Any:
        """The JSON `value` with every made-up id replaced by its placeholder."""
        if isinstance(value, dict):
            return {key: self._shown(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self._shown(item) for item in value]
        if type(value) is int:
            return self._placeholders.get(value, value)
        return value
