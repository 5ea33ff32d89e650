"""The worker: the pipeline (`app.wiring`) with Kafka on top, settings in, running out.

Nothing here touches the network at construction (only the TLS files are read);
`start()` checks or creates the topics, loads the memory, connects the broker and starts
consuming; `stop()` hands the partitions' events over (each stops at its next step
boundary, within `KAFKA_HANDOVER_TIMEOUT_S`) and closes every client.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

import structlog
from aiokafka.errors import KafkaError
from faststream.kafka import KafkaBroker
from faststream.specification import AsyncAPI
from opentelemetry.trace import TracerProvider

from app import __version__
from app.clients.health import UpstreamHealth
from app.clients.limiter import ElementsLimiter, today_in_amsterdam
from app.errors import TopicSetupError
from app.kafka.backfill import BackfillIntake
from app.kafka.connection import broker_security, producer_options
from app.kafka.consumer import EventConsumer
from app.kafka.dead_letters import DeadLetterBacklog, RedriveMarks
from app.kafka.flow import PauseReason
from app.kafka.form_publisher import FormPublisher
from app.kafka.keyed import NewestArrivals
from app.kafka.membership import GroupMembership
from app.kafka.memory_load import MemoryLoad
from app.kafka.partition_handover import HandoverRecords
from app.kafka.portal_seeding import PortalSeeding
from app.kafka.publisher import OutcomePublisher
from app.kafka.state import DAILY_COUNT_KEY, StateTopic, StateWriter
from app.kafka.topics import ensure_topics
from app.progress import StallWatch
from app.readiness import Readiness, StartPhase
from app.retry import exponential_backoff, retrying_on
from app.settings import Settings
from app.state.daily_count import DailyCountKeeper
from app.wiring import Durable, build_pipeline

log = structlog.get_logger(__name__)

CATCH_UP_TIMEOUT_S = 10.0
"""How long newly assigned partitions wait for the state topic to be read to its end."""


def intake_pause(
    limiter: ElementsLimiter, state: StateWriter, health: UpstreamHealth
) -> PauseReason | None:
    """Why intake waits, if it does, besides a full backlog: the most pressing reason first."""
    if limiter.unavailable:
        return "limiter_unavailable"
    if state.unavailable:
        return "state_unavailable"
    if limiter.exhausted:
        return "daily_budget"
    if health.down:
        return "upstream_outage"
    return None


class Runtime:
    def __init__(
        self,
        settings: Settings,
        *,
        today: Callable[[], date] = today_in_amsterdam,
        budget_poll_s: float = 5.0,
        tracer_provider: TracerProvider | None = None,
    ) -> None:
        """`today`, `budget_poll_s` and `tracer_provider` are for tests and the sandbox;
        production uses the defaults (a provider built from the `OTEL_` settings)."""
        self.settings = settings
        self.broker = KafkaBroker(
            settings.kafka.servers,
            client_id=settings.kafka.client_id,
            security=broker_security(settings.kafka),
            **producer_options(settings.kafka),
            allow_auto_create_topics=False,  # ensure_topics is the one place topics are made
            logger=None,
        )
        self.state = StateWriter(self.broker, settings.topics.state, settings.retry)
        self.daily_count = DailyCountKeeper(self.state.save_daily_count)
        self.pipeline = pipeline = build_pipeline(
            settings,
            durable=Durable(
                self.state.save_dossier,
                self.state.save_medewerker,
                self.state.writable,
                self.daily_count.on_count,
            ),
            today=today,
            budget_poll_s=budget_poll_s,
            tracer_provider=tracer_provider,
        )
        self.forms = FormPublisher(self.broker, settings.topics)
        self.handover_records = HandoverRecords(settings.kafka.group_id, self.state.write)
        self.redrive_marks = RedriveMarks(settings.topics.dead_letter)
        self.portal_seeding = PortalSeeding(pipeline.portal)
        self.memory_load = MemoryLoad(
            StateTopic(settings.kafka, settings.topics.state),
            pipeline.memory,
            timeout_s=settings.state.load_timeout_s,
            readers=(self.handover_records.read, self.redrive_marks.read),
            loaded=(self._restore_daily_count, self.portal_seeding.start),
        )
        self.membership = GroupMembership(
            pipeline.metrics,
            settings.topics,
            caught_up=lambda: self.memory_load.state_topic.caught_up(timeout_s=CATCH_UP_TIMEOUT_S),
        )
        self.consumer = EventConsumer(
            self.broker,
            pipeline.service,
            settings,
            pipeline.metrics,
            OutcomePublisher(self.broker, settings.topics, pipeline.metrics, retry=settings.retry),
            external_pause_reason=lambda: intake_pause(
                pipeline.limiter, self.state, pipeline.health
            ),
            backfill=BackfillIntake(
                settings.backfill, pipeline.metrics, paused=lambda: pipeline.limiter.backfill_paused
            ),
            live=pipeline.limiter.live,
            arrivals=NewestArrivals(),
            handover_records=self.handover_records,
            membership=self.membership,
            tracer=pipeline.tracer,
        )
        self.stall_watch = StallWatch(self.consumer.in_flight, after_s=settings.log_stall_after_s)
        self.dead_letters = DeadLetterBacklog(
            settings.kafka,
            settings.topics.dead_letter,
            self.redrive_marks,
            pipeline.metrics.report_dead_letters,
            refresh_s=settings.dead_letters_refresh_s,
        )
        self._phase: StartPhase = "connecting"
        self._start_failure: str | None = None
        """The last error that stopped `start()`, until a start succeeds: `/readyz` names it."""

    async def _restore_daily_count(self, values: dict[str, bytes]) -> None:
        self.daily_count.restore(values.get(DAILY_COUNT_KEY), self.pipeline.limiter.slots)

    def asyncapi_json(self) -> str:
        """The AsyncAPI document of the topics, generated by FastStream from the wiring."""
        spec = AsyncAPI(
            self.broker,
            title="elements-sync",
            version=__version__,
            description="Keeps Faster Forward Elements in step with ANVA Hub and MijnKlantportaal.",
        )
        return spec.to_specification().to_json()

    async def ready(self) -> bool:
        return (await self.readiness()).ready

    async def readiness(self) -> Readiness:
        """What `/readyz` answers (`app.readiness`): ready once the group gave the consumer
        its partitions (see `GroupMembership.consuming`) and while the broker answers."""
        membership, kafka = self.membership, self.settings.kafka
        held_back = f" (last attempt: {self._start_failure})" if self._start_failure else ""
        if membership.stopping:
            return Readiness("stopping", "handing the partitions over before the worker exits")
        if self._phase == "connecting":
            return Readiness(
                "kafka_not_connected",
                f"reaching Kafka at {kafka.bootstrap_servers} and its topics{held_back}",
            )
        if self._phase == "loading":
            return Readiness(
                "state_topic_loading",
                f"reading the state topic {self.settings.topics.state} to its end{held_back}",
            )
        if not membership.consuming:
            if membership.catching_up:
                return Readiness(
                    "state_topic_loading",
                    "reading what the partitions' previous owner wrote to the state topic "
                    f"{self.settings.topics.state}",
                )
            joined = "joined it; " if membership.in_group else ""
            return Readiness(
                "no_partitions_assigned",
                f"waiting for the consumer group {kafka.group_id} to give this pod its "
                f"partitions ({joined}its other members hand their events over first)"
                f"{held_back}",
            )
        if not await self.broker.ping(timeout=1.0):
            return Readiness("kafka_not_connected", "the broker does not answer")
        return Readiness(assigned_partitions=len(membership.assigned))

    async def start(self) -> None:
        """Returns once the group gave the consumer its partitions and the state topic was
        read for them; `readiness()` tells which step it is at meanwhile."""
        self._phase = "connecting"
        await ensure_topics(self.settings.kafka, self.settings.topics)
        self._phase = "loading"
        await self.memory_load.load()
        await self.pipeline.limiter.start()
        self.pipeline.portal.start()
        self._phase = "joining"
        try:
            await self.broker.start()
            await self.membership.given_partitions()
        except BaseException:
            self.membership.left_group()
            raise
        self._phase = "started"
        self._start_failure = None
        self.consumer.flow.start()
        self.stall_watch.start()
        self.pipeline.probe.start()
        self.dead_letters.start()

    async def start_when_kafka_answers(self) -> None:
        """Start, retrying while Kafka is unreachable or its topics are missing (an operator
        may be creating them): the pod stays up and not ready meanwhile, saying why."""
        async for attempt in retrying_on(
            (KafkaError, OSError, TopicSetupError),
            wait=exponential_backoff(self.settings.retry),
            on_retry=self._start_failed,
        ):
            with attempt:
                await self.start()

    def _start_failed(self, error: BaseException, attempt: int) -> None:
        self._start_failure = f"{type(error).__name__}: {error}"
        log.warning("Kafka not ready for the worker; retrying", attempt=attempt, error=str(error))

    async def stop(self) -> bool:
        """Hand the partitions over, disconnect, close; False when events had to be cancelled
        at the handover's deadline."""
        drained = await self.consumer.drain()
        await self.stall_watch.stop()
        await self.dead_letters.stop()
        await self.pipeline.probe.stop()
        await self.pipeline.portal.stop()
        await self.portal_seeding.stop()
        await self.memory_load.stop()
        await self.daily_count.flush(timeout_s=5.0)
        await self.state.close()
        await self.broker.stop()
        await self.pipeline.close()
        return drained
