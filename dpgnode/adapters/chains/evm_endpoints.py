"""Several JSON-RPC endpoints of one EVM chain: failover, backoff, and who is trusted.

Endpoints are tried in the configured order; the first usable one answers. What happens to
an endpoint on each kind of failure:

- rate limited (HTTP 429, or a JSON-RPC error saying so): retried on the same endpoint with
  exponential backoff and jitter (tenacity), ``rate_limit_retries`` times, then left aside;
- unreachable, timed out, or answering something that is not JSON-RPC: left aside (down);
- serving another chain id (checked before its first use and after each failure) or refusing
  the credentials: left aside as misconfigured; when every endpoint is, ``ConfigError``;
- *untrusted*, when an answer contradicts what the same endpoint said before (checked by the
  caller's ``parse`` through :class:`EndpointView`): its head went back further than a reorg
  may (``reorg_limit``) or below a block it called finalized, it has no block at a height below
  its own head, a block's parent is not the hash it gives for the height below, or its
  finalized block went back. An untrusted endpoint is never a last resort;
- *stalled*, when its head has not moved for ``stall_after`` seconds: left aside while
  another endpoint can answer.

"Left aside" lasts ``cooldown`` seconds, doubling with each failure in a row up to ten times
that; every change of state is logged once as a warning, and :meth:`EvmEndpoints.health`
reports each endpoint for ``dpg chain status``. When no endpoint is usable, the call fails
with ``UnavailableError`` (the watcher pauses the chain and retries), except that endpoints
left aside for being down, rate limited or stalled are still tried as a last resort. A
JSON-RPC error that is not a rate limit is the node's answer: it is raised to the caller and
the endpoint stays healthy. Endpoint names never include the URL's path (API keys).
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeVar

import structlog
from tenacity import (
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
    wait_random,
)

from dpgnode.adapters.chains.evm_rpc import quantity
from dpgnode.adapters.chains.jsonrpc import JsonRpcEndpoint, RpcError
from dpgnode.errors import ConfigError, DpgError, UnavailableError

log = structlog.get_logger(__name__)

T = TypeVar("T")
_RATE_WORDS = ("rate limit", "rate-limit", "ratelimit", "too many requests", "request limit",
               "requests per second", "request count exceeded", "compute units", "throughput",
               "capacity exceeded")
_RECENT_HASHES = 512
_MAX_COOLDOWN_FACTOR = 10


class EndpointState(StrEnum):
    """How an endpoint stands (see the module docstring)."""

    UNCHECKED = "unchecked"
    OK = "ok"
    DOWN = "down"
    RATE_LIMITED = "rate_limited"
    STALLED = "stalled"
    UNTRUSTED = "untrusted"
    MISCONFIGURED = "misconfigured"


_LAST_RESORT = (EndpointState.DOWN, EndpointState.RATE_LIMITED, EndpointState.STALLED)


class Untrusted(Exception):  # noqa: N818  (a verdict, raised by ``parse`` functions)
    """An endpoint's answer contradicts itself: leave the endpoint aside and ask another."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class EndpointHealth:
    """One endpoint as ``dpg chain status`` shows it."""

    name: str
    state: EndpointState
    head: int | None
    """The last head it reported."""
    problem: str
    """Why it is left aside (empty when usable)."""
    failures: int
    """Failures in a row."""
    retry_in_seconds: float
    """Until it is tried again (0: usable now)."""
    answered: int
    """Calls it answered since the process started."""


class EndpointView:
    """What one endpoint said so far; ``parse`` functions check new answers against it."""

    def __init__(self, pool: EvmEndpoints, endpoint: JsonRpcEndpoint) -> None:
        self._pool = pool
        self.endpoint = endpoint
        self.name = endpoint.name
        self.head: int | None = None
        self.high_head: int | None = None
        self.finalized: int | None = None
        self.head_moved_at = 0.0
        self.hashes: OrderedDict[int, str] = OrderedDict()
        self.state = EndpointState.UNCHECKED
        self.problem = ""
        self.failures = 0
        self.until = 0.0
        self.answered = 0
        self.stalled = ""
        """Set by :meth:`observe_head` when the head stopped moving (the answer still counts)."""

    def call(self, method: str, *params: Any) -> Any:
        """Ask this endpoint only (rate-limit retries included)."""
        return self._pool.call_one(self, method, params)

    def forget(self) -> None:
        """Drop what it said (when it is tried again after being untrusted)."""
        self.head = self.high_head = self.finalized = None
        self.hashes.clear()

    def observe_head(self, height: int, block_hash: str) -> None:
        """Its ``latest`` block: checked against its own past heads (module docstring)."""
        limit = self._pool.reorg_limit
        if self.high_head is not None and height < self.high_head - limit:
            raise Untrusted(f"its head went back from {self.high_head} to {height}, deeper "
                            f"than a reorganisation may ({limit} blocks)")
        if self.finalized is not None and height < self.finalized:
            raise Untrusted(f"its head {height} is below its finalized block {self.finalized}")
        now = self._pool.clock()
        if height != self.head:
            self.head_moved_at = now
        elif now - self.head_moved_at > self._pool.stall_after:
            self.head_moved_at = now  # a fresh window after the cooldown
            self.stalled = (f"its head stayed at {height} for over "
                            f"{self._pool.stall_after:.0f} s")
        self.head = height
        self.high_head = height if self.high_head is None else max(self.high_head, height)
        self.remember(height, block_hash)

    def observe_finalized(self, height: int) -> None:
        """Its finalized (or safe) block: never going back, never above its head."""
        if self.finalized is not None and height < self.finalized:
            raise Untrusted(f"its finalized block went back from {self.finalized} to {height}")
        if self.high_head is not None and height > self.high_head:
            raise Untrusted(f"its finalized block {height} is above its head {self.high_head}")
        self.finalized = height

    def observe_missing(self, height: int) -> None:
        """It has no block at ``height``: a lie if its head is at or above it."""
        if self.head is None or height > self.head:
            return
        latest = self.call("eth_blockNumber")
        head = quantity(latest, "block number")
        if head >= height:
            raise Untrusted(f"it has no block {height} below its own head {head}")
        self.head = head  # its chain got shorter (a reorganisation): nothing is missing

    def observe_block(self, height: int, block_hash: str, parent_hash: str) -> None:
        """A block it gave: must link to the hash it gave for the height below."""
        below = self.hashes.get(height - 1)
        if below is not None and below != parent_hash:
            again = self.call("eth_getBlockByNumber", hex(height - 1), False)
            now_below = again.get("hash") if isinstance(again, dict) else None
            if now_below == below:
                raise Untrusted(f"block {height}'s parent {parent_hash[:18]} is not the "
                                f"block {below[:18]} it has at {height - 1}")
            for stale in [h for h in self.hashes if h >= height - 1]:
                del self.hashes[stale]  # reorganised: what it said above is stale
        self.remember(height, block_hash)

    def remember(self, height: int, block_hash: str) -> None:
        """Keep the hash it gave for ``height`` (the most recent few hundred)."""
        self.hashes[height] = block_hash
        self.hashes.move_to_end(height)
        while len(self.hashes) > _RECENT_HASHES:
            self.hashes.popitem(last=False)


class EvmEndpoints:
    """The endpoints of one chain (see the module docstring).

    Plain calls (payouts, balances) may come from any thread, and ``health`` may be read from
    any thread; calls whose ``parse`` observes heads and blocks come from the chain's one
    watcher thread (what an :class:`EndpointView` remembers is not locked).
    """

    def __init__(
        self, endpoints: Sequence[JsonRpcEndpoint], *, chain: str, chain_id: int,
        reorg_limit: int, stall_after: float, cooldown: float = 30.0,
        rate_limit_retries: int = 3, sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not endpoints:
            raise ConfigError(f"chains.evm.{chain}.rpc_url: no RPC endpoint configured")
        self.chain = chain
        self.chain_id = chain_id
        self.reorg_limit = reorg_limit
        self.stall_after = stall_after
        self.cooldown = cooldown
        self.clock = clock
        self._retries = rate_limit_retries
        self._sleep = sleep
        self._lock = threading.RLock()
        self._views = [EndpointView(self, endpoint) for endpoint in endpoints]

    @classmethod
    def connect(
        cls, urls: Sequence[str], *, chain: str, chain_id: int, reorg_limit: int,
        stall_after: float, timeout: float = 30.0, cooldown: float = 30.0,
        rate_limit_retries: int = 3,
    ) -> EvmEndpoints:
        """Endpoints of ``chain`` at ``urls`` (which may carry providers' API keys)."""
        label = f"EVM node ({chain})"
        return cls([JsonRpcEndpoint(url, label=label, timeout=timeout) for url in urls],
                   chain=chain, chain_id=chain_id, reorg_limit=reorg_limit,
                   stall_after=stall_after, cooldown=cooldown,
                   rate_limit_retries=rate_limit_retries)

    @property
    def name(self) -> str:
        """The first endpoint's name, and how many more there are (for messages)."""
        more = len(self._views) - 1
        return self._views[0].name + (f" (+{more} more)" if more else "")

    def close(self) -> None:
        """Close every endpoint's connections."""
        for view in self._views:
            view.endpoint.close()

    def call(self, method: str, *params: Any, timeout: float | None = None) -> Any:
        """``method(*params)`` on the first usable endpoint (``JsonRpcEndpoint``'s signature)."""
        del timeout  # each endpoint keeps its configured timeout
        return self.request(method, params, _raw)

    def request(
        self, method: str, params: Sequence[Any], parse: Callable[[EndpointView, Any], T],
    ) -> T:
        """``method(*params)`` answered by the first usable endpoint and checked by ``parse``.

        ``parse`` turns the raw result into the caller's value, raising :class:`Untrusted`
        when the answer contradicts the endpoint's past answers (the next endpoint is asked).
        A stalled endpoint's answer is used only when no other endpoint answers.

        Raises:
            RpcError: the node refused the call (its answer, not a failure of the endpoint).
            UnavailableError: no endpoint could answer; ``ConfigError``: none is configured
                for this chain (another chain id, refused credentials).
        """
        problems: list[str] = []
        fallback: list[T] = []
        for view in self._candidates():
            try:
                self._check_chain(view)
                value = parse(view, self.call_one(view, method, params))
            except Untrusted as exc:
                self._aside(view, EndpointState.UNTRUSTED, exc.reason, problems)
            except RpcError as exc:
                if not _rate_limited(exc):
                    self._usable(view)
                    raise
                self._aside(view, EndpointState.RATE_LIMITED, exc.rpc_message, problems)
            except UnavailableError as exc:
                state = (EndpointState.RATE_LIMITED if _rate_limited(exc)
                         else EndpointState.DOWN)
                self._aside(view, state, exc.message, problems)
            except ConfigError as exc:
                self._aside(view, EndpointState.MISCONFIGURED, exc.message, problems)
            else:
                if view.stalled:
                    self._aside(view, EndpointState.STALLED, view.stalled, problems)
                    view.stalled = ""
                    fallback.append(value)
                    continue
                self._usable(view)
                return value
        if fallback:
            return fallback[0]
        raise self._exhausted(problems)

    def call_one(self, view: EndpointView, method: str, params: Sequence[Any]) -> Any:
        """``method`` on one endpoint, retrying rate-limit refusals with backoff."""
        retrying = Retrying(
            retry=retry_if_exception(_rate_limited),
            stop=stop_after_attempt(1 + self._retries),
            wait=wait_exponential(multiplier=0.25, max=4) + wait_random(0, 0.25),
            sleep=self._sleep, reraise=True,
        )
        return retrying(view.endpoint.call, method, *params)

    def health(self) -> list[EndpointHealth]:
        """Every endpoint, in the configured order."""
        now = self.clock()
        with self._lock:
            return [
                EndpointHealth(view.name, view.state, view.head, view.problem, view.failures,
                               round(max(0.0, view.until - now), 1), view.answered)
                for view in self._views
            ]

    def _candidates(self) -> list[EndpointView]:
        now = self.clock()
        with self._lock:
            ready = [v for v in self._views if v.until <= now]
            later = sorted((v for v in self._views
                            if v.until > now and v.state in _LAST_RESORT),
                           key=lambda v: v.until)
            for view in ready:
                if view.state is EndpointState.UNTRUSTED:
                    view.forget()  # on probation: judged on what it says from now on
        return ready + later

    def _check_chain(self, view: EndpointView) -> None:
        if view.state not in (EndpointState.UNCHECKED, EndpointState.MISCONFIGURED,
                              EndpointState.DOWN):
            return
        served = quantity(self.call_one(view, "eth_chainId", ()), "chain id")
        if served != self.chain_id:
            raise ConfigError(f"{view.name} serves chain id {served}, not {self.chain_id} "
                              f"(chains.evm.{self.chain}.chain_id)")

    def _usable(self, view: EndpointView) -> None:
        with self._lock:
            if view.state is not EndpointState.OK and view.state is not EndpointState.UNCHECKED:
                log.info("evm_endpoint_recovered", chain=self.chain, endpoint=view.name,
                         was=str(view.state))
            view.state, view.problem, view.failures, view.until = EndpointState.OK, "", 0, 0.0
            view.answered += 1

    def _aside(
        self, view: EndpointView, state: EndpointState, problem: str, problems: list[str]
    ) -> None:
        with self._lock:
            view.failures += 1
            factor = min(2 ** (view.failures - 1), _MAX_COOLDOWN_FACTOR)
            view.until = self.clock() + self.cooldown * factor
            if state is not view.state or problem != view.problem:
                log.warning("evm_endpoint_set_aside", chain=self.chain, endpoint=view.name,
                            state=str(state), problem=problem[:300])
            view.state, view.problem = state, problem[:300]
        problems.append(f"{view.name}: {state}: {problem[:200]}")

    def _exhausted(self, problems: list[str]) -> DpgError:
        with self._lock:
            states = {view.state for view in self._views}
            wait = min(max(0.0, v.until - self.clock()) for v in self._views)
            first = self._views[0].problem
        detail = "; ".join(problems) or "every endpoint is set aside"
        if states == {EndpointState.MISCONFIGURED}:
            return ConfigError(first)
        return UnavailableError(f"{self.chain}: no usable RPC endpoint ({detail})"[:1000],
                                retry_after=max(1, math.ceil(wait)))


def _rate_limited(exc: BaseException) -> bool:
    """A refusal for going too fast (HTTP 429, or a JSON-RPC error that says so)."""
    if isinstance(exc, RpcError):
        text = exc.rpc_message.lower()
        return exc.http_status == 429 or any(word in text for word in _RATE_WORDS)
    if isinstance(exc, UnavailableError):
        return exc.details.get("httpStatus") == 429
    return False


def _raw(view: EndpointView, result: Any) -> Any:
    """The result as the endpoint sent it (no check)."""
    del view
    return result
