"""`hop`: message latency and throughput through actors, against bare trio channels.

Both sides do the same work: a sender stamps a message with perf_counter_ns, it crosses N
hops, and the last hop records the one-way latency. Latency is measured one message at a
time (the sender waits until the message has arrived) so it never includes queueing;
throughput blasts messages through the 4-hop chain and times the last arrival.

Floor: trio memory channels of the same capacity with plain forwarding tasks. Actor: the
real runtime (Supervisor, mailboxes, handler table, ActorRef.tell). Rounds alternate floor
and actor so machine noise falls on both alike.
"""

from __future__ import annotations

import functools
import itertools
import time
from dataclasses import dataclass, field
from typing import Any, Final

import trio

from actors import DEFAULT_CAPACITY, Actor, ActorRef
from supervisor import BACKOFF_OFF, ChildSpec, Supervisor, SupervisorSpec

from ._stats import percentile_us

ROUNDS: Final = 10
LATENCY_SAMPLES_PER_ROUND: Final = 2_000
THROUGHPUT_MESSAGES_PER_ROUND: Final = 50_000
WARMUP_SAMPLES: Final = 500


@dataclass(frozen=True, slots=True)
class Hop:
    sent_ns: int


@dataclass
class Probe:
    """Where the last hop reports: latencies, an arrival count and a wake-up for the sender."""

    latencies_ns: list[int] = field(default_factory=list)
    arrived: int = 0
    expect: int = 0
    done: trio.Event = field(default_factory=trio.Event)

    def arrive(self, message: Hop) -> None:
        self.latencies_ns.append(time.perf_counter_ns() - message.sent_ns)
        self.arrived += 1
        if self.arrived >= self.expect:
            self.done.set()

    def expect_next(self, count: int = 1) -> None:
        self.expect = self.arrived + count
        self.done = trio.Event()


class Forwarder(Actor):
    def __init__(self, next_name: str) -> None:
        self.next_name = next_name
        self.next: ActorRef | None = None

    async def on_start(self) -> None:
        self.next = self.registry.lookup(self.next_name)

    async def on_hop(self, message: Hop) -> None:
        assert self.next is not None
        await self.next.tell(message)


class Sink(Actor):
    def __init__(self, probe: Probe) -> None:
        self.probe = probe

    async def on_hop(self, message: Hop) -> None:
        self.probe.arrive(message)


# ---- the two chains --------------------------------------------------------------------------


class FloorChain:
    """N trio memory channels joined by plain forwarding tasks."""

    def __init__(self, nursery: trio.Nursery, hops: int, probe: Probe) -> None:
        sends, receives = zip(
            *(trio.open_memory_channel[Hop](DEFAULT_CAPACITY) for _ in range(hops)), strict=True
        )
        self.entry = sends[0]
        for index in range(hops - 1):
            nursery.start_soon(self._forward, receives[index], sends[index + 1])
        nursery.start_soon(self._sink, receives[-1], probe)

    @staticmethod
    async def _forward(
        receive: trio.MemoryReceiveChannel[Hop], send: trio.MemorySendChannel[Hop]
    ) -> None:
        async for message in receive:
            await send.send(message)

    @staticmethod
    async def _sink(receive: trio.MemoryReceiveChannel[Hop], probe: Probe) -> None:
        async for message in receive:
            probe.arrive(message)

    async def send(self, message: Hop) -> None:
        await self.entry.send(message)


class ActorChain:
    """N actors under a supervisor: N-1 forwarders, then a sink."""

    def __init__(self, hops: int, probe: Probe) -> None:
        names = [f"hop{index}" for index in range(hops)]
        children = [
            ChildSpec(name, functools.partial(Forwarder, next_name))
            for name, next_name in itertools.pairwise(names)
        ]
        children.append(ChildSpec(names[-1], lambda: Sink(probe)))
        self.supervisor = Supervisor(
            SupervisorSpec(f"bench{hops}", children, backoff=BACKOFF_OFF)
        )
        self.names = names

    async def start(self, nursery: trio.Nursery) -> None:
        await nursery.start(self.supervisor.run)
        self.entry = self.supervisor.registry.lookup(self.names[0])

    async def send(self, message: Hop) -> None:
        await self.entry.tell(message)


Chain = FloorChain | ActorChain


async def _latency(chain: Chain, probe: Probe, samples: int) -> list[int]:
    start = len(probe.latencies_ns)
    for _ in range(samples):
        probe.expect_next()
        await chain.send(Hop(time.perf_counter_ns()))
        await probe.done.wait()
    return probe.latencies_ns[start:]


async def _throughput(chain: Chain, probe: Probe, messages: int) -> float:
    probe.expect_next(messages)
    started_ns = time.perf_counter_ns()
    for _ in range(messages):
        await chain.send(Hop(0))
    await probe.done.wait()
    return messages / ((time.perf_counter_ns() - started_ns) / 1e9)


async def _measure(hops: int, kind: str, samples: int, messages: int) -> tuple[list[int], float]:
    probe = Probe()
    async with trio.open_nursery() as nursery:
        chain: Chain
        if kind == "floor":
            chain = FloorChain(nursery, hops, probe)
        else:
            chain = ActorChain(hops, probe)
            await chain.start(nursery)
        await _latency(chain, probe, WARMUP_SAMPLES)
        latencies = await _latency(chain, probe, samples)
        rate = await _throughput(chain, probe, messages) if messages else 0.0
        nursery.cancel_scope.cancel()
    return latencies, rate


async def run_hop() -> dict[str, Any]:
    samples: dict[tuple[str, int], list[int]] = {}
    rates: dict[str, list[float]] = {"floor": [], "actor": []}
    for _ in range(ROUNDS):
        for kind in ("floor", "actor"):
            one, _ = await _measure(1, kind, LATENCY_SAMPLES_PER_ROUND, 0)
            four, rate = await _measure(4, kind, LATENCY_SAMPLES_PER_ROUND,
                                        THROUGHPUT_MESSAGES_PER_ROUND)
            samples.setdefault((kind, 1), []).extend(one)
            samples.setdefault((kind, 4), []).extend(four)
            rates[kind].append(rate)
    result: dict[str, Any] = {}
    for kind in ("actor", "floor"):
        result[f"{kind}_1hop_p50_us"] = percentile_us(samples[(kind, 1)], 0.50)
        result[f"{kind}_4hop_p50_us"] = percentile_us(samples[(kind, 4)], 0.50)
        result[f"{kind}_4hop_p99_us"] = percentile_us(samples[(kind, 4)], 0.99)
        result[f"{kind}_msgs_per_s"] = round(sorted(rates[kind])[len(rates[kind]) // 2])
    result["ratio_1hop_p50"] = round(result["actor_1hop_p50_us"] / result["floor_1hop_p50_us"], 3)
    result["ratio_4hop_p50"] = round(result["actor_4hop_p50_us"] / result["floor_4hop_p50_us"], 3)
    result["ratio_msgs_per_s"] = round(result["actor_msgs_per_s"] / result["floor_msgs_per_s"], 3)
    result["meets_targets"] = (
        result["ratio_1hop_p50"] <= 1.3
        and result["ratio_4hop_p50"] <= 1.3
        and result["ratio_msgs_per_s"] >= 0.7
    )
    return result
