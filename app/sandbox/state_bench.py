"""`python -m app bench-state`: what loading the durable memory costs a starting worker.

Writes N dossier records to a sandbox's state topic, built with the record classes and
serialised as the worker writes them (a klant with addresses, an e-mail address and a
phone number, one or two contracts, the upstream values, the portal locator), then starts
the worker as its own process (`python -m app worker`, configured by environment) and,
while it starts, asks `GET /healthz` every 100 ms with a 1 s timeout: the liveness probe
of k8s/deployment.yaml must never go unanswered while the state loads. A first run on the
empty state topic is the baseline: the per-record resident cost is the difference of the
two runs' RSS over N. The same cost is measured in this process too, with tracemalloc
over `DossierMemory.load`, beside what a parsed record would cost.

Start-up counts as over when the worker is ready (`/readyz` 200), logged "durable memory
loaded" and has gone idle (under 10 % of a core over the last second), so work it does in
the background after it is ready (seeding the portal directory from the records) is inside
the window. `--worker-source DIR` runs another checkout's worker, to measure the code
before a change.
"""

from __future__ import annotations

import asyncio
import json
import math
import statistics
import time
import tracemalloc
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import httpx
from aiokafka import AIOKafkaProducer

from app.domain.model import (
    Adres,
    DesiredCustomer,
    KlantState,
    KnownContract,
    Organisatie,
    Persoon,
    StoredAdres,
)
from app.kafka.connection import client_options
from app.kafka.state import dossier_key
from app.kafka.topics import ensure_topics
from app.logs import configure_logging
from app.sandbox.background import InBackground
from app.sandbox.figures import table
from app.sandbox.simulators.seed import CITIES, NAMES
from app.sandbox.worker_process import WorkerProcess, worker_environment
from app.sandbox.world import Sandbox
from app.settings import KafkaSettings
from app.state.memory import DossierMemory
from app.state.record import DossierRecord, PortalLocator

HEALTH_INTERVAL_S = 0.1
HEALTH_TIMEOUT_S = 1.0
"""A /healthz answer slower than this counts as a timeout (the issue's bound)."""
IDLE_WINDOW_S = 1.0
IDLE_SHARE = 0.1
"""Start-up is over once the worker used less than this share of a core over the window."""
START_UP_TIMEOUT_S = 600.0
PRODUCE_CHUNK = 5_000
SLOWEST = 3
PARSED_SAMPLE = 2_000
"""Records parsed in process to size what a parsed record costs (the code before)."""
LOADED = "durable memory loaded"
SEEDED = "portal directory seeded"
PORTAL_PER_PAGE = 15

_STREETS = (
    ("Hoofdstraat", "12", "A"),
    ("Kerkstraat", "5", "bis"),
    ("1e Jan Steenstraat", "10", "A"),
    ("Laan van Meerdervoort", "1001", "B"),
    ("Stationsweg", "3", None),
    ("Dorpsstraat", "44", "2"),
)
_PRODUCTS = ("Woonhuis", "Inboedel", "Auto", "Aansprakelijkheid")


def _adres(index: int) -> Adres:
    straat, nummer, toevoeging = _STREETS[index % len(_STREETS)]
    return Adres(
        straat=straat,
        nummer=nummer,
        toevoeging=toevoeging,
        postcode=f"{1000 + index % 9000} AB",
        plaatsnaam=CITIES[index % len(CITIES)],
    )


def _contract(index: int, n: int, dossier_id: int) -> KnownContract:
    product = _PRODUCTS[(index + n) % len(_PRODUCTS)]
    return KnownContract(
        dossier_id=dossier_id,
        product_id=2_000_000 + 2 * index + n,
        fingerprint=f"{(index * 7919 + n) % 16**12:012x}",
        summary={
            "status": "Lopend",
            "format": product,
            "omschrijving": f"{product}verzekering",
            "startDate": "2026-01-01",
        },
    )


def sample_record(index: int, *, read_at: float, writer: str) -> DossierRecord:
    """Dossier `index` as a worker that synced it and a contract or two would hold it.

    Every third klant is zakelijk (with a medewerker for its contracts), every fourth has a
    Postbus beside its street address, every second two contracts.
    """
    dossier_number = str(100_000 + index)
    dossier_id = 500_000 + index
    business = index % 3 == 2
    first, middle, last = NAMES[index % len(NAMES)]
    adres = _adres(index)
    standaard = StoredAdres(1_000_000 + 2 * index, adres)
    adressen = [standaard]
    if index % 4 == 0:
        postbus = Adres("Postbus", str(index % 9000 + 1), None, "2500 AA", "Den Haag", "Postbus")
        adressen.append(StoredAdres(1_000_001 + 2 * index, postbus))
    email = f"klant{index}@example.nl"
    phone = f"+31 6 {10_000_000 + index}"
    return DossierRecord(
        revision=1 + index % 5,
        dossier_number=dossier_number,
        dossier_id=dossier_id,
        standaard_adres=standaard,
        klant=KlantState(
            kind="zakelijk" if business else "particulier",
            id=700_000 + index,
            adressen=tuple(adressen),
            emails=(email,),
            phones=(phone,),
        ),
        medewerker_id=900_000 + index if business else None,
        contracts={
            f"C{dossier_number}-{n}": _contract(index, n, dossier_id) for n in range(1 + index % 2)
        },
        upstream=DesiredCustomer(
            dossier_number=dossier_number,
            klant=Organisatie(f"{last} Advies B.V.") if business else Persoon(first, middle, last),
            adres=adres,
            email=email,
            phone=phone,
        ),
        portal=PortalLocator(customer_id=f"cst_{index:012d}", page=index // PORTAL_PER_PAGE + 1),
        read_at=read_at,
        writer=writer,
    )


def sample_values(count: int, *, read_at: float | None = None) -> Iterator[tuple[str, bytes]]:
    """(dossier number, record bytes) of `count` dossiers, serialised as the worker does."""
    at = time.time() if read_at is None else read_at
    writer = uuid.uuid4().hex
    for index in range(count):
        record = sample_record(index, read_at=at, writer=writer)
        yield record.dossier_number, record.model_dump_json().encode()


@dataclass(frozen=True)
class InProcessCost:
    """Bytes per record, measured with tracemalloc in this process."""

    held: float
    """Held as `DossierMemory` holds them: key, bytes and the dict's slot."""
    parsed: float
    """Held as parsed `DossierRecord`s, as the worker did before."""
    json_bytes: float
    parse_us: float


def in_process_cost(values: list[tuple[str, bytes]]) -> InProcessCost:
    """Copies of the values (new objects, as they come off the wire) loaded into a fresh
    `DossierMemory`; a sample parsed and kept, for comparison."""
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        memory = DossierMemory(max_age_s=86_400.0)
        memory.load((number.encode().decode(), bytes(memoryview(v))) for number, v in values)
        held = tracemalloc.get_traced_memory()[0] - before
        sample = [value for _, value in values[:PARSED_SAMPLE]]
        before = tracemalloc.get_traced_memory()[0]
        parsed = [DossierRecord.model_validate_json(value) for value in sample]
        parsed_bytes = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    started = time.perf_counter()
    for value in sample:
        DossierRecord.model_validate_json(value)
    parse_s = time.perf_counter() - started
    return InProcessCost(
        held=held / max(len(memory), 1),
        parsed=parsed_bytes / max(len(parsed), 1),
        json_bytes=statistics.fmean(len(v) for _, v in values) if values else 0.0,
        parse_us=parse_s / max(len(sample), 1) * 1e6,
    )


async def write_records(kafka: KafkaSettings, topic: str, values: list[tuple[str, bytes]]) -> None:
    """Produce the records fast: one producer, large batches, `acks=all`, awaited in chunks."""
    producer = AIOKafkaProducer(
        **client_options(kafka),
        enable_idempotence=False,
        acks="all",
        linger_ms=20,
        max_batch_size=256 * 1024,
    )
    await producer.start()
    try:
        pending: list[asyncio.Future[object]] = []
        for number, value in values:
            pending.append(await producer.send(topic, value, key=dossier_key(number).encode()))
            if len(pending) >= PRODUCE_CHUNK:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()


@dataclass
class HealthProbe(InBackground):
    """Asks `/healthz` every `HEALTH_INTERVAL_S` in the background, as a liveness probe
    would; an answer slower than `HEALTH_TIMEOUT_S` is a timeout. Until the HTTP server
    listens (a refused connection) nothing is counted."""

    url: str
    answers: list[tuple[float, float]] = field(default_factory=list)
    """(loop time asked, seconds to the answer) of every answer."""
    timeouts: int = 0

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        async with httpx.AsyncClient(base_url=self.url, timeout=HEALTH_TIMEOUT_S) as http:
            while True:
                began = loop.time()
                try:
                    await http.get("/healthz")
                    self.answers.append((began, loop.time() - began))
                except httpx.TimeoutException:
                    self.timeouts += 1
                except httpx.TransportError:
                    pass
                await asyncio.sleep(max(began + HEALTH_INTERVAL_S - loop.time(), 0.0))


def _logged(output: str, event: str) -> dict[str, object] | None:
    """The worker's first JSON log line of `event`."""
    for line in output.splitlines():
        if event not in line:
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and entry.get("event") == event:
            return entry
    return None


def _logged_at(entry: dict[str, object] | None, started_wall: float) -> float | None:
    """Seconds from the process's start to a log line (its own UTC timestamp)."""
    if entry is None or not isinstance(stamp := entry.get("timestamp"), str):
        return None
    return datetime.fromisoformat(stamp).timestamp() - started_wall


def _seconds_field(entry: dict[str, object] | None) -> float | None:
    value = entry.get("seconds") if entry is not None else None
    return float(value) if isinstance(value, int | float) else None


@dataclass(frozen=True)
class StartUp:
    """One worker's start, in seconds from its process's start."""

    dossiers: int
    first_health_s: float | None
    loaded_s: float | None
    load_s: float | None
    """The worker's own timing of reading the state topic into memory (newer workers log it)."""
    ready_s: float
    seeded_s: float | None
    seed_s: float | None
    idle_s: float
    health_latencies_s: list[float]
    slowest_health: list[tuple[float, float]]
    """(seconds from the process's start, latency) of the slowest answers."""
    health_timeouts: int
    peak_rss_bytes: int
    rss_bytes: int
    cpu_s: float

    def health_quantile(self, q: float) -> float:
        """Over every question asked once the server listened: a timeout counts as infinite."""
        values = sorted(self.health_latencies_s) + [math.inf] * self.health_timeouts
        if not values:
            return math.nan
        return values[min(int(q * len(values)), len(values) - 1)]

    @property
    def health_ok(self) -> bool:
        return bool(self.health_latencies_s) and self.health_quantile(1.0) < HEALTH_TIMEOUT_S

    def as_json(self) -> dict[str, object]:
        def rounded(value: float | None) -> float | None:
            """None also for a timeout's infinite latency (JSON has no infinity)."""
            return None if value is None or not math.isfinite(value) else round(value, 3)

        return {
            "dossiers": self.dossiers,
            "first_health_s": rounded(self.first_health_s),
            "loaded_s": rounded(self.loaded_s),
            "load_s": rounded(self.load_s),
            "ready_s": rounded(self.ready_s),
            "seeded_s": rounded(self.seeded_s),
            "idle_s": rounded(self.idle_s),
            "health_answers": len(self.health_latencies_s),
            "health_p50_s": rounded(self.health_quantile(0.5)),
            "health_p99_s": rounded(self.health_quantile(0.99)),
            "health_max_s": rounded(self.health_quantile(1.0)),
            "health_timeouts": self.health_timeouts,
            "health_slowest": [[round(at, 2), round(s, 3)] for at, s in self.slowest_health],
            "peak_rss_mb": round(self.peak_rss_bytes / 2**20, 1),
            "rss_mb": round(self.rss_bytes / 2**20, 1),
            "cpu_s": round(self.cpu_s, 2),
        }


async def start_up(env: dict[str, str], *, source: Path | None, dossiers: int) -> StartUp:
    """Start a worker and watch it until start-up is over (see the module docstring)."""
    loop = asyncio.get_running_loop()
    worker = WorkerProcess(env, source=source)
    started_wall = time.time()
    started = loop.time()
    await worker.spawn()
    try:
        async with (
            HealthProbe(worker.url) as health,
            httpx.AsyncClient(base_url=worker.url, timeout=HEALTH_TIMEOUT_S) as http,
            asyncio.timeout(START_UP_TIMEOUT_S),
        ):
            ready_s: float | None = None
            cpu: list[tuple[float, float]] = []
            while True:
                await asyncio.sleep(HEALTH_INTERVAL_S)
                now = loop.time()
                cpu.append((now, worker.cpu_s()))
                output = worker.output()
                if ready_s is None:
                    try:
                        if (await http.get("/readyz")).status_code == 200:
                            ready_s = loop.time() - started
                    except httpx.TransportError:
                        pass
                window = [used for at, used in cpu if at >= now - IDLE_WINDOW_S]
                idle = (
                    cpu[0][0] <= now - IDLE_WINDOW_S
                    and window[-1] - window[0] < IDLE_SHARE * IDLE_WINDOW_S
                )
                if ready_s is not None and idle and LOADED in output:
                    break
            idle_s = loop.time() - started
            peak, rss, cpu_s = worker.peak_rss_bytes(), worker.resident_bytes(), worker.cpu_s()
        output = worker.output()
        loaded, seeded = _logged(output, LOADED), _logged(output, SEEDED)
        return StartUp(
            dossiers=dossiers,
            first_health_s=health.answers[0][0] - started if health.answers else None,
            loaded_s=_logged_at(loaded, started_wall),
            load_s=_seconds_field(loaded),
            ready_s=ready_s,
            seeded_s=_logged_at(seeded, started_wall),
            seed_s=_seconds_field(seeded),
            idle_s=idle_s,
            health_latencies_s=[latency for _, latency in health.answers],
            slowest_health=sorted(
                ((at - started, latency) for at, latency in health.answers),
                key=lambda answer: answer[1],
            )[-SLOWEST:],
            health_timeouts=health.timeouts,
            peak_rss_bytes=peak,
            rss_bytes=rss,
            cpu_s=cpu_s,
        )
    finally:
        await worker.close()


@dataclass(frozen=True)
class Run:
    baseline: StartUp
    loaded: StartUp
    in_process: InProcessCost
    generate_s: float
    produce_s: float

    @property
    def rss_per_record(self) -> float:
        return (self.loaded.rss_bytes - self.baseline.rss_bytes) / max(self.loaded.dossiers, 1)

    @property
    def peak_per_record(self) -> float:
        return (self.loaded.peak_rss_bytes - self.baseline.peak_rss_bytes) / max(
            self.loaded.dossiers, 1
        )


async def _run(*, dossiers: int, source: Path | None, say: Callable[[str], None]) -> Run:
    started = time.perf_counter()
    values = list(sample_values(dossiers))
    generate_s = time.perf_counter() - started
    cost = in_process_cost(values)
    say(f"{dossiers} records generated in {generate_s:.1f} s; starting the sandbox")
    async with Sandbox() as sandbox:
        settings = sandbox.settings()
        await ensure_topics(settings.kafka, settings.topics)
        env = worker_environment(settings, LOG_LEVEL="INFO")
        baseline = await start_up(env, source=source, dossiers=0)
        say(f"baseline (empty state topic): ready after {baseline.ready_s:.1f} s")
        started = time.perf_counter()
        await write_records(sandbox.kafka, sandbox.topics.state, values)
        produce_s = time.perf_counter() - started
        say(f"{dossiers} records written to the state topic in {produce_s:.1f} s")
        del values
        loaded = await start_up(env, source=source, dossiers=dossiers)
        say(f"{dossiers} dossiers: ready after {loaded.ready_s:.1f} s")
    return Run(baseline, loaded, cost, generate_s, produce_s)


def _s(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f} s"


def _ms(value: float) -> str:
    return f"{1000 * value:.0f} ms" if math.isfinite(value) else f"> {HEALTH_TIMEOUT_S:g} s"


def _mb(value: float) -> str:
    return f"{value / 2**20:.0f} MB"


def _rows(start: StartUp) -> list[tuple[str, str]]:
    return [
        ("process start → first /healthz answer", _s(start.first_health_s)),
        ('process start → "durable memory loaded"', _s(start.loaded_s)),
        ("  reading the state topic (the worker's own timing)", _s(start.load_s)),
        ("process start → /readyz 200", _s(start.ready_s)),
        ('process start → "portal directory seeded"', _s(start.seeded_s)),
        ("process start → idle", _s(start.idle_s)),
        (
            "/healthz during start-up (p50 / p99 / max)",
            " / ".join(_ms(start.health_quantile(q)) for q in (0.5, 0.99, 1.0)),
        ),
        (
            f"/healthz answers / timeouts (> {HEALTH_TIMEOUT_S:g} s)",
            f"{len(start.health_latencies_s)} / {start.health_timeouts}",
        ),
        ("worker peak RSS (VmHWM)", _mb(start.peak_rss_bytes)),
        ("worker RSS once idle (VmRSS)", _mb(start.rss_bytes)),
        ("worker CPU time until idle", f"{start.cpu_s:.1f} s"),
    ]


async def run_state_bench(*, dossiers: int, worker_source: Path | None) -> int:
    configure_logging("console", "WARNING")
    run = await _run(
        dossiers=dossiers,
        source=worker_source,
        say=lambda line: print(f"bench-state: {line}", flush=True),
    )
    cost = run.in_process
    print(f"state benchmark: worker from {worker_source or 'this checkout'}")
    for start in (run.baseline, run.loaded):
        print(f"{start.dossiers} dossiers on the state topic")
        print(table(_rows(start)))
    print("per record")
    print(
        table(
            [
                ("record JSON (mean)", f"{cost.json_bytes:.0f} B"),
                ("resident, RSS once idle minus baseline, ÷ N", f"{run.rss_per_record:.0f} B"),
                ("resident, peak RSS minus baseline, ÷ N", f"{run.peak_per_record:.0f} B"),
                ("held as bytes (tracemalloc, DossierMemory.load)", f"{cost.held:.0f} B"),
                ("held parsed (tracemalloc, DossierRecord)", f"{cost.parsed:.0f} B"),
                (
                    "parsing one record (DossierRecord.model_validate_json)",
                    f"{cost.parse_us:.0f} µs",
                ),
            ]
        )
    )
    print(
        json.dumps(
            {
                "dossiers": dossiers,
                "worker_source": str(worker_source) if worker_source else None,
                "baseline": run.baseline.as_json(),
                "loaded": run.loaded.as_json(),
                "record_json_bytes": round(cost.json_bytes),
                "rss_per_record_bytes": round(run.rss_per_record),
                "peak_per_record_bytes": round(run.peak_per_record),
                "held_per_record_bytes": round(cost.held),
                "parsed_per_record_bytes": round(cost.parsed),
                "parse_us": round(cost.parse_us, 1),
                "generate_s": round(run.generate_s, 1),
                "produce_s": round(run.produce_s, 1),
            }
        )
    )
    return 0 if run.baseline.health_ok and run.loaded.health_ok else 1
