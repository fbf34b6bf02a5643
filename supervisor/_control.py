"""The daemon's control operations, in trio: what the gRPC Control service (and tests) call.

Every operation says who asked (a token name or certificate CN), is journaled as a control
action with its outcome, and returns plain data. The gRPC layer only translates.

Emergency stop, in a fixed order:
1. HALTED at once: risk denies every new order from that instant (straight into the journal if
   risk does not answer), except the kill switch's own reduce-only flatten orders.
2. Every strategy is paused (stopped, not restarted until resumed) while, in parallel,
3. cancel-all runs on every venue account, on the venues directly: the gateways may be what is
   broken. Nothing waits for the strategies: once halted, nothing new gets out.
4. Optionally flatten: a reduce-only market order per open position, through risk and the
   gateway (so the fills are journaled), marked as the kill switch's own.
A second call is safe: it cancels again and says the daemon was already halted.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable
from pathlib import Path
from typing import Final

import msgspec
import trio

from actors import ActorError
from actors.journal import (
    EventRecorded,
    JournalError,
    JournalRecord,
    JournalStore,
    TradingStateRecorded,
)
from actors.journal._blocking import run_blocking
from actors.messages import (
    RISK,
    GetParams,
    GetTradingState,
    OrderIntent,
    ParamsReply,
    SetTradingState,
    SubmitOrder,
    TradingState,
    TradingStateChanged,
    UpdateParams,
    strategy_tag,
)
from exchanges import AccountClient, OrderType, Side, TimeInForce, VenueError

from ._assembly import Assembly
from ._events_bus import EventBus
from ._exceptions import ChildNotFoundError, SupervisionError
from ._status import DaemonStatus, collect_status
from ._supervisor import Supervisor

logger = logging.getLogger("steward.control")

STOP_STEP_S: Final = 3.0  # each step of the emergency stop is bounded; the next one still runs
KILL_SWITCH: Final = "kill-switch"  # the strategy name on flatten orders


class ControlError(Exception):
    """A control request that cannot be done as asked (unknown actor, bad parameters)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        """"not_found", "invalid_argument" or "failed_precondition"."""


class AccountOutcome(msgspec.Struct, frozen=True, kw_only=True):
    venue: str
    account: str
    orders_cancelled: int
    positions_flattened: list[str]
    """Symbols a reduce-only market order was sent for."""
    error: str = ""


class StopReport(msgspec.Struct, frozen=True, kw_only=True):
    already_halted: bool
    accounts: list[AccountOutcome]
    elapsed_ms: float


class ControlService:
    """The control plane's trio side. `root` is the running tree; `assembly` its parts."""

    _risk_missed_halt: bool = False
    _background: trio.Nursery | None = None

    def __init__(self, root: Supervisor, assembly: Assembly,
                 events: EventBus | None = None) -> None:
        self.root = root
        self.assembly = assembly
        self.events = events
        """Where control actions are published (WatchEvents); None: nowhere."""

    def attach_background(self, nursery: trio.Nursery) -> None:
        """Journal control actions in `nursery` (the server's, alive while it serves) instead
        of before replying: the reply to an emergency stop does not wait for that commit.
        The action is still published at once, and a write once enqueued is never lost."""
        self._background = nursery

    # ---- reading ---------------------------------------------------------------------------

    async def status(self) -> DaemonStatus:
        return await collect_status(self.root, self.assembly)

    async def get_params(self, actor: str) -> ParamsReply:
        return await self._ask_params(actor, GetParams())

    # ---- changing --------------------------------------------------------------------------

    async def update_params(self, actor: str, params: dict[str, object], dry_run: bool,
                            who: str) -> ParamsReply:
        reply = await self._ask_params(actor, UpdateParams(params=params, dry_run=dry_run))
        outcome = "dry run" if dry_run else ("applied" if reply.accepted else "rejected")
        await self._record(who, "update_params", {"actor": actor, "params": params,
                                                  "dry_run": dry_run}, outcome, reply.error)
        return reply

    async def pause_actor(self, name: str, who: str) -> None:
        await self._supervisor_of(name).pause_child(name)
        await self._record(who, "pause_actor", {"actor": name}, "paused")

    async def resume_actor(self, name: str, who: str) -> None:
        await self._supervisor_of(name).resume_child(name)
        await self._record(who, "resume_actor", {"actor": name}, "resumed")

    async def restart_actor(self, name: str, who: str) -> None:
        await self._supervisor_of(name).restart_child(name)
        await self._record(who, "restart_actor", {"actor": name}, "restarted")

    async def emergency_stop(self, reason: str, flatten: bool, who: str) -> StopReport:
        started = time.perf_counter()
        already = await self._halt(reason, who)  # in effect in risk before any later order
        outcomes: dict[tuple[str, str], AccountOutcome] = {}
        async with trio.open_nursery() as nursery:
            # Halted, nothing new goes out: the halt's durable write, the strategies' stops
            # and the venues' cancels all run at once.
            nursery.start_soon(self._confirm_halt, reason, who)
            nursery.start_soon(self._pause_strategies)
            for venue_config in self.assembly.config.venues:
                for account in venue_config.accounts:
                    client = self.assembly.account_client(venue_config.name, account)
                    nursery.start_soon(self._cancel_all, client, outcomes)
        if flatten:
            for key, outcome in list(outcomes.items()):
                client = self.assembly.account_client(*key)
                outcomes[key] = await self._flatten(client, outcome)
        report = StopReport(
            already_halted=already, accounts=[outcomes[key] for key in sorted(outcomes)],
            elapsed_ms=round((time.perf_counter() - started) * 1000, 3),
        )
        await self._record(who, "emergency_stop", {"reason": reason, "flatten": flatten},
                           "already halted; cancelled again" if already else "halted",
                           "; ".join(o.error for o in report.accounts if o.error))
        return report

    async def resume(self, reason: str, who: str) -> TradingStateChanged:
        changed = await self._risk_state(TradingState.ACTIVE, reason, who)
        if changed is None:
            raise ControlError("failed_precondition", "risk is not running; cannot resume")
        for name in self._strategy_names():
            try:
                await self.root.find_supervisor("strategies").resume_child(name)
            except SupervisionError as exc:
                logger.warning("resume: %s stays paused: %s", name, exc)
        await self._record(who, "resume", {"reason": reason}, "active")
        return changed

    # ---- the steps -------------------------------------------------------------------------

    async def _halt(self, reason: str, who: str) -> bool:
        """HALTED first of all; True if it was halted already.

        The request goes into risk's mailbox ahead of any order sent after it, and risk
        applies a state change before its next message: from here on nothing new gets out.
        Its durable write is confirmed by `_confirm_halt`, while the cancels already run.
        """
        current = await self._ask_risk(GetTradingState())
        already = isinstance(current, TradingStateChanged) and (
            current.state is TradingState.HALTED
        )
        try:
            self.root.registry.lookup(RISK).tell_nowait(
                SetTradingState(state=TradingState.HALTED, reason=reason, actor=who))
        except (ActorError, trio.WouldBlock):
            self._risk_missed_halt = True
        else:
            self._risk_missed_halt = False
        return already

    async def _confirm_halt(self, reason: str, who: str) -> None:
        """The halt is on disk: risk answered after its write, or the journal has it."""
        confirmed = None if self._risk_missed_halt else await self._ask_risk(GetTradingState())
        if not (isinstance(confirmed, TradingStateChanged)
                and confirmed.state is TradingState.HALTED):
            # Risk does not answer: the journal still gets it, so a restart comes back halted.
            await self._journal(TradingStateRecorded(
                ts_ns=time.time_ns(), state=TradingState.HALTED.value, reason=reason,
                actor=who,
            ))

    async def _journal(self, record: JournalRecord) -> None:
        """Through the journal actor's handle; straight to the file when that actor is down
        (its branch is restarting): a halt must be on disk either way. Never raises."""
        try:
            await self.assembly.journal.journal.record(record)
            return
        except JournalError as exc:
            logger.warning("control: journal actor unavailable (%s); writing directly", exc)
        service = self.assembly.journal
        try:
            await run_blocking(service.config.offload_to_thread, _write_direct, service.path,
                               record)
        except Exception:
            logger.exception("control: %s could not be journaled", type(record).__name__)

    async def _pause_strategies(self) -> None:
        strategies = self.root.find_supervisor("strategies")
        async with trio.open_nursery() as nursery:
            for name in self._strategy_names():
                nursery.start_soon(_bounded, strategies.pause_child(name), STOP_STEP_S)

    async def _cancel_all(self, client: AccountClient,
                          outcomes: dict[tuple[str, str], AccountOutcome]) -> None:
        cancelled, error = 0, ""
        with trio.move_on_after(STOP_STEP_S) as scope:
            try:
                cancelled = len(await client.cancel_all())
            except VenueError as exc:
                error = f"cancel-all failed: {exc}"
        if scope.cancelled_caught:
            error = f"cancel-all did not answer within {STOP_STEP_S:g} s"
        outcomes[(client.venue, client.account)] = AccountOutcome(
            venue=client.venue, account=client.account, orders_cancelled=cancelled,
            positions_flattened=[], error=error,
        )

    async def _flatten(self, client: AccountClient, outcome: AccountOutcome) -> AccountOutcome:
        flattened, errors = [], [outcome.error] if outcome.error else []
        try:
            with trio.fail_after(STOP_STEP_S):
                positions = await client.positions()
        except (VenueError, trio.TooSlowError) as exc:
            errors.append(f"positions unknown: {exc}")
            positions = []
        risk = self.root.registry.lookup(RISK)
        for position in positions:
            if position.qty == 0:
                continue
            intent = OrderIntent(
                client_id=f"{strategy_tag(KILL_SWITCH)}-{time.time_ns():x}"[:36],
                strategy=KILL_SWITCH, venue=client.venue, account=client.account,
                symbol=position.symbol,
                side=Side.SELL if position.qty > 0 else Side.BUY,
                order_type=OrderType.MARKET, qty=abs(position.qty), tif=TimeInForce.IOC,
                reduce_only=True, flatten=True, ts_created_ns=time.time_ns(),
            )
            try:
                await risk.tell(SubmitOrder(intent=intent))
                flattened.append(position.symbol)
            except ActorError as exc:
                errors.append(f"flatten {position.symbol}: {exc}")
        return msgspec.structs.replace(outcome, positions_flattened=flattened,
                                       error="; ".join(errors))

    # ---- helpers ---------------------------------------------------------------------------

    def _strategy_names(self) -> list[str]:
        return self.root.find_supervisor("strategies").child_names()

    def _supervisor_of(self, name: str) -> Supervisor:
        for branch in ("strategies", "feeds", "core"):
            supervisor = self.root.find_supervisor(branch)
            if name in supervisor.child_names():
                return supervisor
        raise ControlError("not_found", f"no actor named {name!r}")

    async def _ask_params(self, actor: str, message: object) -> ParamsReply:
        if actor not in self._strategy_names():
            raise ControlError("not_found", f"no strategy named {actor!r}")
        try:
            reply = await self.root.registry.lookup(actor).ask(message)
        except ActorError as exc:
            raise ControlError("failed_precondition", f"{actor}: {exc}") from None
        assert isinstance(reply, ParamsReply)
        return reply

    async def _ask_risk(self, message: object) -> object:
        try:
            return await self.root.registry.lookup(RISK).ask(message, timeout_s=STOP_STEP_S)
        except ActorError:
            return None

    async def _risk_state(self, state: TradingState, reason: str,
                          who: str) -> TradingStateChanged | None:
        reply = await self._ask_risk(SetTradingState(state=state, reason=reason, actor=who))
        return reply if isinstance(reply, TradingStateChanged) else None

    async def _record(self, who: str, action: str, request: dict[str, object], outcome: str,
                      error: str = "") -> None:
        detail = json.dumps({"who": who, "action": action, "request": request,
                             "outcome": outcome, "error": error}, default=str)
        logger.warning("control: %s by %s: %s%s", action, who, outcome,
                       f" ({error})" if error else "")
        ts_ns = time.time_ns()
        if self.events is not None:
            self.events.publish_control(ts_ns, who, action, request, outcome, error)
        record = EventRecorded(ts_ns=ts_ns, kind="control_action", source=who, detail=detail)
        if self._background is not None:
            self._background.start_soon(self._journal, record)
        else:
            await self._journal(record)


def _write_direct(path: Path, record: JournalRecord) -> None:
    store = JournalStore(path)
    try:
        store.write_batch([record])
    finally:
        store.close()


async def _bounded(operation: Awaitable[None], seconds: float) -> None:
    with trio.move_on_after(seconds):
        try:
            await operation
        except (SupervisionError, ChildNotFoundError) as exc:
            logger.warning("control: %s", exc)
