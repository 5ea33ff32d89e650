"""`python -m app backfill`: one `customer.changed` per customer ANVA or the portal knows.

Both sources are read in full (ANVA's `/account/mine`, every page of the portal's
customers) and the dossier numbers deduplicated, ANVA's first. The events go to
`TOPIC_BACKFILL`, keyed by dossier number, which the worker serves after the live
topics; they carry no snapshot, so a customer is synced from its state when the worker
reaches it. Re-running a backfill is harmless: a state that did not change costs no write.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import httpx
from aiokafka import AIOKafkaProducer

from app.clients.anva import AnvaClient
from app.clients.portal import PortalClient
from app.events import CLOUDEVENTS_JSON, input_event_bytes
from app.kafka.connection import client_options, producer_options
from app.kafka.topics import ensure_topics
from app.settings import KafkaSettings, Settings

PUBLISH_BATCH = 500
"""Events sent before waiting for Kafka's acknowledgements: bounds memory, keeps throughput."""


@dataclass(frozen=True)
class BackfillCount:
    """What a backfill published: dossier numbers known to ANVA, to the portal, and in all."""

    anva: int
    portal: int
    published: int
    topic: str

    def lines(self) -> list[str]:
        both = self.anva + self.portal - self.published
        return [
            f"published {self.published} customer.changed events to {self.topic}",
            f"  from ANVA    {self.anva}",
            f"  from portal  {self.portal} ({both} also in ANVA)",
        ]


async def _dossier_numbers(settings: Settings) -> tuple[list[str], list[str]]:
    """ANVA's and the portal's dossier numbers, each without repeats, in their own order."""
    anva, portal = settings.anva, settings.portal
    async with (
        httpx.AsyncClient(base_url=str(anva.base_url), timeout=anva.timeout_s) as anva_http,
        httpx.AsyncClient(base_url=str(portal.base_url), timeout=portal.timeout_s) as portal_http,
    ):
        from_anva = await AnvaClient(anva_http, anva.token).all_dossier_numbers()
        pages = await PortalClient(portal_http, portal.token).all_pages()
    from_portal = [c.dossier_number for page in pages for c in page.customers if c.dossier_number]
    return list(dict.fromkeys(from_anva)), list(dict.fromkeys(from_portal))


def _producer(kafka: KafkaSettings) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        **client_options(kafka),
        **producer_options(kafka),
    )


async def _publish(settings: Settings, dossier_numbers: list[str]) -> None:
    """Send every event and return once Kafka acknowledged them all."""
    await ensure_topics(settings.kafka, settings.topics)
    producer = _producer(settings.kafka)
    await producer.start()
    try:
        for start in range(0, len(dossier_numbers), PUBLISH_BATCH):
            sent = [
                await producer.send(
                    settings.topics.backfill,
                    input_event_bytes("customer.changed", {"dossierNumber": number}),
                    key=number.encode(),
                    headers=[("content-type", CLOUDEVENTS_JSON.encode())],
                )
                for number in dossier_numbers[start : start + PUBLISH_BATCH]
            ]
            await asyncio.gather(*sent)
    finally:
        await producer.stop()


async def backfill(settings: Settings) -> BackfillCount:
    """Publish the backfill; raises the clients' or Kafka's error when a source cannot be read."""
    from_anva, from_portal = await _dossier_numbers(settings)
    everyone = list(dict.fromkeys([*from_anva, *from_portal]))
    await _publish(settings, everyone)
    return BackfillCount(
        anva=len(from_anva),
        portal=len(from_portal),
        published=len(everyone),
        topic=settings.topics.backfill,
    )
