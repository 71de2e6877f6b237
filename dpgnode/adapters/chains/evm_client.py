"""``ChainClient`` over an EVM chain's JSON-RPC endpoints (contract: ``ports/chains.py``).

A block (``eth_getBlockByNumber`` with full transactions) is reduced to a
:class:`~dpgnode.domain.chains.blocks.ChainBlock`:

- a native transfer is a transaction whose ``to`` is a watched address with a positive
  ``value`` and a successful receipt; key ``<txid>:native``, asset the chain's native asset;
- a token transfer is an ERC-20 ``Transfer`` log of a registry token to a watched address
  (:mod:`~dpgnode.adapters.chains.evm_logs` fetches them in ranges); key ``<txid>:log:<n>``
  where ``n`` is the log's position *within its transaction's receipt*, not the block-wide
  ``logIndex``: a transaction mined again in another block after a reorganisation keeps its
  keys, as the domain promises (the block-wide index depends on the transactions before it);
- every transaction's conflict key is ``<sender lower-case>:<nonce>`` in ``spent`` (two
  transactions with the same sender and nonce cannot both be mined), and its hash in ``txids``.

Receipts are read only for transactions that pay a watched address: one
``eth_getBlockReceipts`` when several do, else ``eth_getTransactionReceipt`` each; a receipt
from another block means the chain moved between the calls (``UnavailableError``, the
watcher retries). Internal transfers (a contract sending the native coin) are not seen: that
needs tracing, which public endpoints do not offer.

``mempool`` is always empty: EVM chains have no mempool a node can rely on (providers hide
it, and a pending transaction can be replaced at will), so EVM payments are first seen in a
block. ``finalized_height`` reads the ``finalized`` (or ``safe``) tag when the chain's policy
is one of them, else ``None``. Every answer is checked against what the same endpoint said
before (:class:`~dpgnode.adapters.chains.evm_endpoints.EndpointView`); an endpoint that
contradicts itself is left aside and the next one asked.

Gas, nonces, balances and contract calls for the node's own transactions are on ``rpc``
(:class:`~dpgnode.adapters.chains.evm_rpc.EvmRpc` over the same endpoints) and ``nonces``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from dpgnode.adapters.chains.evm_endpoints import (
    EndpointHealth,
    EndpointView,
    EvmEndpoints,
    Untrusted,
)
from dpgnode.adapters.chains.evm_logs import TRANSFER_TOPIC, LogWindow, TokenLog, parse_logs
from dpgnode.adapters.chains.evm_nonces import NonceReservations
from dpgnode.adapters.chains.evm_registry import EvmChainSpec
from dpgnode.adapters.chains.evm_rpc import EvmRpc
from dpgnode.adapters.chains.jsonrpc import RpcError
from dpgnode.domain.chains.blocks import BlockRef, ChainBlock, ChainTx, MempoolView, Transfer
from dpgnode.domain.custody.evm import checksum_encode
from dpgnode.errors import UnavailableError, ValidationError

T = TypeVar("T")
_BLOCK_RECEIPTS_FROM = 3
"""Paying transactions in a block from which one ``eth_getBlockReceipts`` beats one each."""
_STALL_BLOCKS = 10
_STALL_MIN_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class _Header:
    number: int
    hash: str
    parent: str
    time: int
    bloom: int


@dataclass(frozen=True, slots=True)
class _Tx:
    txid: str
    sender: str
    nonce: int
    to: bytes | None
    value: int


class EvmChainClient:
    """One EVM chain as the watcher reads it (see the module docstring)."""

    def __init__(self, spec: EvmChainSpec, endpoints: EvmEndpoints) -> None:
        self.spec = spec
        self._pool = endpoints
        self._watched: set[bytes] = set()
        self._tokens = {token.contract.lower(): token for token in spec.tokens}
        self._head = -1
        self.logs = LogWindow(contracts=list(self._tokens), log_range=spec.log_range,
                              fetch_range=self._fetch_range, fetch_block=self._fetch_block)
        self.rpc = EvmRpc(endpoints, chain=spec.name, chain_id=spec.chain_id)
        """Gas, fees, balances, contract calls and broadcasting over the same endpoints."""
        self.nonces = NonceReservations(self.rpc.nonce)
        """In-process nonce reservations of the node's own senders."""

    @classmethod
    def connect(cls, spec: EvmChainSpec) -> EvmChainClient:
        """A client of ``spec``'s endpoints (nothing is contacted yet)."""
        stall_after = max(_STALL_MIN_SECONDS, _STALL_BLOCKS * spec.block_time_seconds)
        endpoints = EvmEndpoints.connect(
            spec.rpc_urls, chain=spec.name, chain_id=spec.chain_id,
            reorg_limit=spec.policy.reorg_limit, stall_after=stall_after,
            timeout=spec.timeout_seconds, cooldown=spec.endpoint_cooldown_seconds,
            rate_limit_retries=spec.rate_limit_retries,
        )
        return cls(spec, endpoints)

    @property
    def chain(self) -> str:
        """The chain's name (``ethereum``)."""
        return self.spec.name

    def close(self) -> None:
        """Close every endpoint's connections."""
        self._pool.close()

    def endpoint_health(self) -> list[EndpointHealth]:
        """Each endpoint's state, for ``dpg chain status``."""
        return self._pool.health()

    def watch(self, addresses: Iterable[str]) -> None:
        """Report transfers to these addresses (``0x`` + 40 hex digits, any case)."""
        found: list[bytes] = []
        for address in addresses:
            if not isinstance(address, str) or len(address) != 42 or address[:2] != "0x":
                raise ValidationError(f"not an EVM address: {str(address)[:50]!r}",
                                      field="addresses")
            try:
                found.append(bytes.fromhex(address[2:]))
            except ValueError:
                raise ValidationError(f"not an EVM address: {address!r}",
                                      field="addresses") from None
        self._watched.update(found)

    def tip(self) -> BlockRef:
        """The ``latest`` block."""
        def parse(view: EndpointView, raw: Any) -> BlockRef:
            if raw is None:
                raise Untrusted("it has no latest block")
            head = _header(raw)
            view.observe_head(head.number, head.hash)
            return BlockRef(head.number, head.hash)

        ref = self._ask("eth_getBlockByNumber", ("latest", False), parse)
        self._head = ref.height  # the latest, not the highest: a shorter branch may win
        return ref

    def block_hash(self, height: int) -> str | None:
        """The hash of block ``height``; ``None`` above the tip."""
        def parse(view: EndpointView, raw: Any) -> str | None:
            header = _checked_header(view, raw, height)
            return None if header is None else header.hash

        return self._ask("eth_getBlockByNumber", (hex(height), False), parse)

    def block(self, height: int) -> ChainBlock | None:
        """Block ``height`` with its transfers to watched addresses (module docstring)."""
        def parse(view: EndpointView, raw: Any) -> tuple[_Header, list[_Tx]] | None:
            header = _checked_header(view, raw, height)
            return None if header is None else (header, _transactions(raw))

        found = self._ask("eth_getBlockByNumber", (hex(height), True), parse)
        if found is None:
            return None
        header, txs = found
        try:
            logs = self.logs.logs(height, header.hash, header.bloom, max(self._head, height))
            paying = self._paying(txs, logs)
            receipts = self._receipts(height, header.hash, paying) if paying else {}
        except RpcError as exc:
            raise _unavailable(self.chain, exc) from exc
        transactions = [self._chain_tx(tx, paying.get(tx.txid), receipts) for tx in txs
                        if tx.txid in paying]
        return ChainBlock(
            height=header.number, hash=header.hash, prev_hash=header.parent, time=header.time,
            transactions=tuple(t for t in transactions if t.transfers),
            spent={f"{tx.sender}:{tx.nonce}": tx.txid for tx in txs},
            txids=frozenset(tx.txid for tx in txs),
        )

    def mempool(self) -> MempoolView:
        """Always empty (see the module docstring)."""
        return MempoolView()

    def finalized_height(self) -> int | None:
        """The ``finalized`` / ``safe`` block's height per the policy; ``None``: depth only."""
        tag = self.spec.finality_tag
        if tag is None:
            return None

        def parse(view: EndpointView, raw: Any) -> int | None:
            if raw is None:
                return None  # no block is final yet (a fresh chain)
            header = _header(raw)
            view.observe_finalized(header.number)
            return header.number

        try:
            return self._pool.request("eth_getBlockByNumber", (tag, False), parse)
        except RpcError as exc:  # an old node or provider without the tag
            raise UnavailableError(
                f"{self.chain}: the node does not answer the {tag!r} block "
                f"(chains.evm.{self.chain}.confirmations = {tag!r} needs it): {exc.rpc_message}",
                retry_after=30) from exc

    def _ask(
        self, method: str, params: tuple[Any, ...], parse: Callable[[EndpointView, Any], T]
    ) -> T:
        """A request whose refusal by the node is transient for the watcher (port contract)."""
        try:
            return self._pool.request(method, params, parse)
        except RpcError as exc:
            raise _unavailable(self.chain, exc) from exc

    # -- matching -------------------------------------------------------------------------

    def _paying(self, txs: list[_Tx], logs: list[TokenLog]) -> dict[str, list[Any]]:
        """What pays a watched address, by txid (the transaction itself, token logs)."""
        watched = self._watched
        paying: dict[str, list[Any]] = {}
        for tx in txs:
            if tx.value > 0 and tx.to is not None and tx.to in watched:
                paying.setdefault(tx.txid, []).append(tx)
        for log in logs:
            if log.units > 0 and log.recipient in watched and log.contract in self._tokens:
                paying.setdefault(log.txid, []).append(log)
        return paying

    def _chain_tx(
        self, tx: _Tx, items: list[Any] | None, receipts: Mapping[str, Mapping[str, Any]]
    ) -> ChainTx:
        receipt = receipts[tx.txid]
        transfers: list[Transfer] = []
        for item in items or ():
            if isinstance(item, _Tx):
                if receipt.get("status", "0x1") != "0x1" or item.to is None:
                    continue  # reverted: the value never moved
                transfers.append(Transfer(f"{tx.txid}:native", tx.txid,
                                          checksum_encode(item.to), self.spec.native_asset,
                                          item.value))
            else:
                position = _position(receipt, item)
                transfers.append(Transfer(f"{tx.txid}:log:{position}", tx.txid,
                                          checksum_encode(item.recipient),
                                          self._tokens[item.contract].asset, item.units))
        return ChainTx(tx.txid, tuple(transfers), (f"{tx.sender}:{tx.nonce}",))

    def _receipts(
        self, height: int, block_hash: str, txids: Iterable[str]
    ) -> dict[str, Mapping[str, Any]]:
        wanted = set(txids)
        receipts: dict[str, Mapping[str, Any]] = {}
        if len(wanted) >= _BLOCK_RECEIPTS_FROM:
            try:
                answer = self._pool.call("eth_getBlockReceipts", block_hash)
            except RpcError:
                answer = None  # not offered by this node: one by one
            if isinstance(answer, list):
                receipts = {r["transactionHash"].lower(): r for r in answer
                            if isinstance(r, dict) and isinstance(r.get("transactionHash"), str)}
        for txid in wanted - receipts.keys():
            receipt = self._pool.call("eth_getTransactionReceipt", txid)
            if isinstance(receipt, dict):
                receipts[txid] = receipt
        for txid in wanted:
            receipt = receipts.get(txid)
            if receipt is None or str(receipt.get("blockHash", "")).lower() != block_hash:
                raise UnavailableError(
                    f"{self.chain}: the receipt of {txid} is not in block {height} "
                    f"({block_hash[:18]}): the chain moved between two requests",
                    retry_after=1)
        return receipts

    # -- logs -----------------------------------------------------------------------------

    def _log_filter(self) -> dict[str, Any]:
        return {"address": list(self._tokens), "topics": [TRANSFER_TOPIC]}

    def _fetch_range(self, lowest: int, highest: int) -> list[TokenLog]:
        query = {**self._log_filter(), "fromBlock": hex(lowest), "toBlock": hex(highest)}

        def parse(view: EndpointView, raw: Any) -> list[TokenLog]:
            del view
            return parse_logs(raw, lowest=lowest, highest=highest)

        return self._pool.request("eth_getLogs", (query,), parse)

    def _fetch_block(self, block_hash: str) -> list[TokenLog]:
        query = {**self._log_filter(), "blockHash": block_hash}

        def parse(view: EndpointView, raw: Any) -> list[TokenLog]:
            del view
            return parse_logs(raw, lowest=0, highest=2**63)

        try:
            return self._pool.request("eth_getLogs", (query,), parse)
        except RpcError as exc:  # the node no longer has the block: it was reorganised away
            raise UnavailableError(f"{self.chain}: logs of block {block_hash[:18]}: "
                                   f"{exc.rpc_message}", retry_after=1) from exc


def _unavailable(chain: str, exc: RpcError) -> UnavailableError:
    return UnavailableError(f"{chain}: the node refused a read the watcher needs "
                            f"({exc.message})", retry_after=5)


def _checked_header(view: EndpointView, raw: Any, height: int) -> _Header | None:
    if raw is None:
        view.observe_missing(height)
        return None
    header = _header(raw)
    if header.number != height:
        raise Untrusted(f"asked for block {height}, it answered block {header.number}")
    view.observe_block(height, header.hash, header.parent)
    return header


def _header(raw: Any) -> _Header:
    try:
        return _Header(int(raw["number"], 16), _hash(raw["hash"]), _hash(raw["parentHash"]),
                       int(raw["timestamp"], 16), int(raw.get("logsBloom") or "0x0", 16))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise Untrusted(f"it sent a malformed block header ({type(exc).__name__})") from None


def _transactions(raw: Mapping[str, Any]) -> list[_Tx]:
    found: list[_Tx] = []
    try:
        for tx in raw["transactions"]:
            to = tx.get("to")
            found.append(_Tx(
                _hash(tx["hash"]), _address(tx["from"]), int(tx["nonce"], 16),
                bytes.fromhex(to[2:]) if to else None, int(tx.get("value") or "0x0", 16),
            ))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise Untrusted(f"it sent a malformed transaction ({type(exc).__name__})") from None
    return found


def _position(receipt: Mapping[str, Any], log: TokenLog) -> int:
    """The log's position among its transaction's logs (stable across blocks)."""
    for position, entry in enumerate(receipt.get("logs") or ()):
        if isinstance(entry, dict) and int(str(entry.get("logIndex", "-0x1")), 16) == log.log_index:
            return position
    raise UnavailableError(f"the receipt of {log.txid} lacks its log {log.log_index}: the "
                           "node's answers disagree", retry_after=5)


def _hash(value: Any) -> str:
    if not isinstance(value, str) or len(value) != 66 or value[:2] != "0x":
        raise ValueError("not a 32-byte hash")
    int(value, 16)
    return value.lower()


def _address(value: Any) -> str:
    if not isinstance(value, str) or len(value) != 42 or value[:2] != "0x":
        raise ValueError("not an address")
    int(value, 16)
    return value.lower()
