"""One owner per dossier in the whole deployment (docs/reference/events.md), and the revision
it writes.

Kafka gives partitions, not ownership: a form (keyed by portal customer id) and a
customer event (keyed by dossier number) of one dossier arrive on different partitions,
possibly on different replicas, and a partition moves at every rebalance while work on
it may still run. So a sync first owns its dossier:

- in this process, a lock per dossier number (`KeyedLocks`);
- with several replicas (`ELEMENTS_LIMITER_REDIS_URL` set), also a lease in the Redis
  they already share (`RedisLeases`): a key per dossier holding the owner's random token,
  with a time to live that the owner renews while it works.

A lease that ran out (a replica stalled past its time to live, or lost Redis) must not let
its holder overwrite what the next owner wrote. The lease is therefore also a fence: every
record write asks Redis, in one script, whether the token still holds the lease, and takes
the dossier's next revision there (`confirm`). A replica that lost the lease gets no
revision and writes nothing; a record it wrote just before is older than the next owner's
and is passed over by every replica (`app.state.memory`).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractContextManager, asynccontextmanager, contextmanager, nullcontext
from dataclasses import dataclass
from functools import partial

from app.errors import OwnershipLost
from app.progress import Wait
from app.state.locks import KeyedLocks
from app.state.redis_leases import Lease, RedisLeases
from app.ticket import OwnershipCheck, Priority, Ticket


def _no_step_aside(priority: Priority) -> AbstractContextManager[None]:
    return nullcontext()


def _owned_in_process(write: bool) -> None:
    """One replica: the dossier lock is held until the block ends."""


@dataclass(frozen=True)
class Owned:
    """What owning a dossier tells its sync: the newest revision of its record written
    before (0 when unknown), which the memory must hold before the record is trusted, and
    the check that it still owns the dossier (`Ticket.owning`)."""

    newest_revision: int = 0
    check: OwnershipCheck = _owned_in_process


class DossierOwners:
    def __init__(
        self,
        *,
        leases: RedisLeases | None = None,
        waiting: Callable[[Priority], AbstractContextManager[None]] = _no_step_aside,
        replica: str = socket.gethostname(),
    ) -> None:
        """`waiting` wraps a wait, at the holder's priority, for a dossier someone else holds
        (see `KeyedLocks`)."""
        self._local = KeyedLocks()
        self._replica = replica
        self._leases = leases
        self._waiting = waiting
        self._held: dict[str, Lease] = {}
        self._holders: dict[str, str] = {}
        """Which message's event holds each dossier held in this process."""

    @asynccontextmanager
    async def hold(self, dossier_number: str, ticket: Ticket) -> AsyncIterator[Owned]:
        """Own the dossier for the block: no other sync of it runs meanwhile, here or in
        any other replica. A wait for it says on the ticket who holds it (`app.progress`), and
        ends at the event's handover: an event that has not written yet stops at once."""
        held_here = partial(self._held_here, ticket, dossier_number)
        async with self._local.hold(
            dossier_number, waiting=held_here, interruptible=ticket.interruptible
        ):
            self._holders[dossier_number] = ticket.message
            try:
                if self._leases is None:
                    yield Owned()
                    return
                elsewhere = f"the lease on dossier {dossier_number} in Redis"
                with self._waiting_for(ticket, elsewhere) as wait:

                    def held_by(holder: str) -> None:
                        wait.what = f"{elsewhere}, held by {holder}"

                    lease = await self._leases.acquire(
                        dossier_number,
                        pause=ticket.pause,
                        priority=ticket.priority,
                        holder=f"{ticket.message} on {self._replica}",
                        held_by=held_by,
                    )
                self._held[dossier_number] = lease
                try:
                    yield Owned(newest_revision=lease.revision, check=lease.check)
                finally:
                    del self._held[dossier_number]
                    await asyncio.shield(self._leases.release(lease))
            finally:
                del self._holders[dossier_number]

    @contextmanager
    def _waiting_for(self, ticket: Ticket, what: str) -> Iterator[Wait]:
        """A wait for a dossier someone else holds: at the ticket's priority, said on it."""
        with self._waiting(ticket.priority), ticket.waiting(what) as wait:
            yield wait

    def _held_here(self, ticket: Ticket, dossier_number: str) -> AbstractContextManager[Wait]:
        holder = self._holders.get(dossier_number, "another event")
        return self._waiting_for(ticket, f"dossier {dossier_number}, held here by {holder}")

    async def fence(self, dossier_number: str, revision: int) -> int:
        """The revision to write the dossier's record with; raises `OwnershipLost` when this
        process does not own the dossier (any more)."""
        if self._leases is None:
            return revision
        lease = self._held.get(dossier_number)
        if lease is None:
            raise OwnershipLost(f"dossier {dossier_number} is not owned by this replica")
        return await self._leases.confirm(lease, revision)

    async def close(self) -> None:
        if self._leases is not None:
            await self._leases.close()
