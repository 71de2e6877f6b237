"""A small JSON-RPC client of Bitcoin Core / Bitcoin Knots: the calls payouts need.

Spendable outputs come from ``scantxoutset`` over the source's addresses (``addr(...)``
descriptors), not from ``listunspent`` of a watch-only wallet inside the node. Why:

- it needs no state in the node: no wallet to create, import descriptors into, rescan, keep
  in step with our address pool or lose on a re-index; it works on any node, pruned too;
- the node's UTXO set is the ground truth of what is spendable, and the answer carries the
  height it was read at;
- the price is speed: the scan reads the whole UTXO set (a fraction of a second on regtest,
  up to minutes on mainnet), which is why it has its own, longer timeout. A payout scans
  once, before its signature; nothing scans in a loop.

The UTXO set holds confirmed outputs only, so unconfirmed coins are never spent. An output
spent by a transaction in the node's mempool still shows in the scan: :meth:`is_unspent`
(``gettxout`` with the mempool) weeds those out.

Every call checks first, once per client, that the node is on the expected network
(``getblockchaininfo``): a payout built from a mainnet node's outputs must never be signed
for regtest, or the other way round (``ConfigError`` otherwise).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr

from dpgnode.adapters.chains.jsonrpc import Auth, JsonRpcEndpoint, RpcError
from dpgnode.domain.custody.btc_spend import MAX_FEE_RATE_SAT_PER_KVB, FeeRate
from dpgnode.domain.custody.networks import Network
from dpgnode.errors import ConfigError, UnavailableError

SATS_PER_BTC = 100_000_000
COINBASE_MATURITY = 100
"""Confirmations a coinbase output needs before it can be spent (consensus)."""
_CHAINS = {
    "main": Network.MAINNET,
    "test": Network.TESTNET,
    "testnet4": Network.TESTNET,
    "signet": Network.SIGNET,
    "regtest": Network.REGTEST,
}
_RPC_IN_WARMUP = -28
_RPC_INVALID_PARAMETER = -8  # also "Scan already in progress"
_RPC_METHOD_NOT_FOUND = -32601
_RPC_NOT_FOUND = -5  # "No such mempool or blockchain transaction", "Block not found"
_ID_CHARS = 64
_BATCH = 500
"""Transactions per ``getrawtransaction`` batch: one request, well within the node's limits."""


@dataclass(frozen=True, slots=True)
class ScannedOutput:
    """One unspent output the scan found."""

    txid: str
    vout: int
    value_sats: int
    script_pubkey: bytes
    confirmations: int
    coinbase: bool

    @property
    def mature(self) -> bool:
        """False for a coinbase output younger than 100 blocks (consensus forbids the spend)."""
        return not self.coinbase or self.confirmations >= COINBASE_MATURITY


@dataclass(frozen=True, slots=True)
class MempoolVerdict:
    """What ``testmempoolaccept`` said of one transaction."""

    txid: str
    allowed: bool
    reason: str = ""


def btc_to_sats(value: object) -> int:
    """Exact satoshis of an RPC amount (parsed as ``Decimal``); ``UnavailableError`` if odd."""
    try:
        sats = Decimal(str(value)) * SATS_PER_BTC
    except InvalidOperation as exc:
        raise UnavailableError(f"the Bitcoin node sent an amount that is not a number: "
                               f"{str(value)[:40]}") from exc
    if not sats.is_finite() or sats != sats.to_integral_value() or sats < 0:
        raise UnavailableError(f"the Bitcoin node sent an amount of no whole satoshis: "
                               f"{str(value)[:40]}")
    return int(sats)


def fee_rate_of(btc_per_kvb: object) -> int:
    """Satoshis per kvB of a BTC/kvB rate, rounded up (never pay below the node's rate)."""
    try:
        sats = Decimal(str(btc_per_kvb)) * SATS_PER_BTC
    except InvalidOperation as exc:
        raise UnavailableError("the Bitcoin node sent a fee rate that is not a number") from exc
    if not sats.is_finite() or sats < 0:
        raise UnavailableError("the Bitcoin node sent a fee rate out of range")
    return int(sats.to_integral_value(rounding="ROUND_CEILING"))


class FixedAuth:
    """Basic auth from ``rpc_user`` / ``rpc_password`` (the password stays a ``SecretStr``)."""

    def __init__(self, user: str, password: SecretStr | None) -> None:
        self._user = user
        self._password = password

    def __call__(self) -> tuple[str, str]:
        secret = self._password.get_secret_value() if self._password is not None else ""
        return self._user, secret


class CookieAuth:
    """Basic auth from the node's cookie file, read at each call (it changes on restart)."""

    def __init__(self, path: Path) -> None:
        self._path = path

    def __call__(self) -> tuple[str, str]:
        try:
            text = self._path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(
                f"cannot read the Bitcoin node's cookie file {self._path}: "
                f"{exc.strerror or type(exc).__name__} (chains.bitcoin.cookie_file)"
            ) from exc
        user, sep, password = text.partition(":")
        if not sep or not user or not password:
            raise ConfigError(f"{self._path} is not a Bitcoin RPC cookie file (user:password)")
        return user, password


class BitcoinRpc:
    """The calls of one Bitcoin node that payouts need (see the module docstring)."""

    def __init__(self, endpoint: JsonRpcEndpoint, *, network: Network,
                 scan_timeout: float) -> None:
        self._rpc = endpoint
        self.network = network
        self._scan_timeout = scan_timeout
        self._checked = False
        self._lock = threading.Lock()

    @classmethod
    def connect(
        cls,
        url: str,
        *,
        network: Network,
        user: str = "",
        password: SecretStr | None = None,
        cookie_file: Path | None = None,
        timeout: float = 30.0,
        scan_timeout: float = 600.0,
        transport: httpx.BaseTransport | None = None,
    ) -> BitcoinRpc:
        """A client of the node at ``url``: user and password, else the cookie file."""
        auth: Auth | None = None
        if user:
            auth = FixedAuth(user, password)
        elif cookie_file is not None:
            auth = CookieAuth(cookie_file)
        endpoint = JsonRpcEndpoint(url, label="Bitcoin node", timeout=timeout, version="1.0",
                                   auth=auth, transport=transport)
        return cls(endpoint, network=network, scan_timeout=scan_timeout)

    @property
    def name(self) -> str:
        """``Bitcoin node at http://host:port``, for messages."""
        return self._rpc.name

    def close(self) -> None:
        """Close the connection pool."""
        self._rpc.close()

    def _call(self, method: str, *params: Any, timeout: float | None = None) -> Any:
        try:
            return self._rpc.call(method, *params, timeout=timeout)
        except RpcError as exc:
            if exc.rpc_code == _RPC_IN_WARMUP:
                raise UnavailableError(f"{self.name} is starting: {exc.rpc_message}",
                                       retry_after=10) from exc
            if exc.rpc_code == _RPC_METHOD_NOT_FOUND:
                raise ConfigError(f"{self.name} does not offer {method}: use Bitcoin Core "
                                  "or Knots 25 or newer") from exc
            raise

    def check_chain(self) -> int:
        """The node's block height, after checking (once) that it is on ``network``."""
        info = self._call("getblockchaininfo")
        chain = _CHAINS.get(str(info.get("chain")))
        if chain is not self.network:
            raise ConfigError(
                f"{self.name} is on chain {str(info.get('chain'))[:20]!r}, not {self.network} "
                "(chains.bitcoin.network / custody.network)"
            )
        with self._lock:
            self._checked = True
        return int(info["blocks"])

    def _checked_call(self, method: str, *params: Any, timeout: float | None = None) -> Any:
        with self._lock:
            checked = self._checked
        if not checked:
            self.check_chain()
        return self._call(method, *params, timeout=timeout)

    def scan(self, addresses: Sequence[str]) -> list[ScannedOutput]:
        """Unspent, confirmed outputs paying any of ``addresses`` (one ``scantxoutset``)."""
        if not addresses:
            return []
        try:
            result = self._checked_call(
                "scantxoutset", "start", [f"addr({a})" for a in addresses],
                timeout=self._scan_timeout,
            )
        except RpcError as exc:
            if exc.rpc_code == _RPC_INVALID_PARAMETER and "in progress" in exc.rpc_message:
                raise UnavailableError(f"{self.name} is busy with another UTXO scan",
                                       retry_after=30) from exc
            raise
        if not isinstance(result, dict) or not result.get("success"):
            raise UnavailableError(f"{self.name} did not finish the UTXO scan")
        height = result.get("height")
        return [_scanned(u, height) for u in result.get("unspents", [])]

    def is_unspent(self, txid: str, vout: int) -> bool:
        """False when a mempool transaction spends the output (or it is gone)."""
        return self._checked_call("gettxout", txid, vout, True) is not None

    def fee_rate(self, *, target_blocks: int, floor: FeeRate, ceiling: FeeRate) -> FeeRate:
        """The larger of the node's estimate, its mempool minimum and ``floor``.

        Raises:
            UnavailableError: the rate is above ``ceiling`` (a fee spike or a bogus
                estimate): better to wait than to overpay.
        """
        estimate = self._checked_call("estimatesmartfee", target_blocks)
        rates = [floor.sat_per_kvb]
        if isinstance(estimate, dict) and estimate.get("feerate") is not None:
            rates.append(fee_rate_of(estimate["feerate"]))
        mempool = self._call("getmempoolinfo")
        if isinstance(mempool, dict) and mempool.get("mempoolminfee") is not None:
            rates.append(fee_rate_of(mempool["mempoolminfee"]))
        rate = max(rates)
        if rate > min(ceiling.sat_per_kvb, MAX_FEE_RATE_SAT_PER_KVB):
            raise UnavailableError(
                f"the fee rate is {Decimal(rate) / 1000} sat/vB, above the ceiling of "
                f"{Decimal(ceiling.sat_per_kvb) / 1000} sat/vB (chains.bitcoin.max_fee_rate)",
                retry_after=600,
            )
        return FeeRate(rate)

    def test_accept(self, raw_hex: str) -> MempoolVerdict:
        """Whether the node's mempool would take the transaction, and if not why."""
        results = self._checked_call("testmempoolaccept", [raw_hex])
        if not isinstance(results, list) or len(results) != 1 or not isinstance(results[0], dict):
            raise UnavailableError(f"{self.name} sent a malformed testmempoolaccept reply")
        result = results[0]
        if not result.get("txid"):
            raise UnavailableError(f"{self.name} sent a testmempoolaccept reply without txid")
        reason = str(result.get("reject-reason") or "")
        details = str(result.get("reject-details") or "")
        if details and details != reason:
            reason = f"{reason}: {details}" if reason else details
        return MempoolVerdict(str(result.get("txid", "")), bool(result.get("allowed")),
                              reason[:300])

    def send_raw(self, raw_hex: str) -> str:
        """Hand the transaction to the node for relay; its txid as the node computed it."""
        return str(self._checked_call("sendrawtransaction", raw_hex))

    # -- reading the chain: the watcher's calls (``bitcoin_client``) ----------------------

    def best_block(self) -> tuple[int, str]:
        """Height and hash of the node's best block, from one header (so they agree)."""
        best = _block_id(self._checked_call("getbestblockhash"), "getbestblockhash", self.name)
        header = self._call("getblockheader", best, True)
        height = header.get("height") if isinstance(header, dict) else None
        if type(height) is not int or height < 0 or header.get("hash") != best:
            raise UnavailableError(f"{self.name} sent a malformed header for its best block")
        return height, best

    def block_hash(self, height: int) -> str | None:
        """The best chain's block hash at ``height``; ``None`` above the node's tip."""
        try:
            result = self._checked_call("getblockhash", height)
        except RpcError as exc:
            if exc.rpc_code == _RPC_INVALID_PARAMETER and "out of range" in exc.rpc_message:
                return None
            raise
        return _block_id(result, "getblockhash", self.name)

    def raw_block(self, block_hash: str) -> bytes:
        """The serialised block (``getblock <hash> 0``)."""
        return _raw(self._checked_call("getblock", block_hash, 0), "getblock", self.name)

    def mempool_txids(self) -> list[str]:
        """Ids of every transaction in the node's mempool (``getrawmempool``)."""
        result = self._checked_call("getrawmempool", False)
        if not isinstance(result, list) or not all(
            isinstance(t, str) and len(t) == _ID_CHARS for t in result
        ):
            raise UnavailableError(f"{self.name} sent a malformed getrawmempool reply")
        return result

    def raw_transactions(self, txids: Sequence[str]) -> dict[str, bytes]:
        """Serialised transactions by id, fetched in batches of ``_BATCH``.

        Ids the node no longer knows (evicted, replaced or mined since they were listed)
        are left out.
        """
        with self._lock:
            checked = self._checked
        if not checked:
            self.check_chain()
        found: dict[str, bytes] = {}
        for start in range(0, len(txids), _BATCH):
            chunk = txids[start : start + _BATCH]
            results = self._rpc.call_many("getrawtransaction", [[t] for t in chunk])
            for txid, result in zip(chunk, results, strict=True):
                if isinstance(result, RpcError):
                    if result.rpc_code == _RPC_NOT_FOUND:
                        continue
                    if result.rpc_code == _RPC_IN_WARMUP:
                        raise UnavailableError(f"{self.name} is starting: {result.rpc_message}",
                                               retry_after=10) from result
                    raise result
                found[txid] = _raw(result, "getrawtransaction", self.name)
        return found


def _block_id(value: object, method: str, node: str) -> str:
    """A block hash or txid as the node prints it (64 hex digits), else ``UnavailableError``."""
    if isinstance(value, str) and len(value) == _ID_CHARS:
        try:
            bytes.fromhex(value)
        except ValueError:
            pass
        else:
            return value
    raise UnavailableError(f"{node} sent a malformed id in its {method} reply")


def _raw(value: object, method: str, node: str) -> bytes:
    """Hex from the node as bytes, else ``UnavailableError``."""
    if isinstance(value, str):
        try:
            return bytes.fromhex(value)
        except ValueError:
            pass
    raise UnavailableError(f"{node} sent malformed hex in its {method} reply")


def _scanned(unspent: Any, tip: Any) -> ScannedOutput:
    try:
        confirmations = unspent.get("confirmations")
        if confirmations is None:  # before Bitcoin Core 28 the entry has only its height
            confirmations = int(tip) - int(unspent["height"]) + 1
        return ScannedOutput(
            txid=str(unspent["txid"]),
            vout=int(unspent["vout"]),
            value_sats=btc_to_sats(unspent["amount"]),
            script_pubkey=bytes.fromhex(str(unspent["scriptPubKey"])),
            confirmations=int(confirmations),
            coinbase=bool(unspent.get("coinbase", False)),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise UnavailableError("the Bitcoin node sent a malformed scantxoutset entry") from exc
