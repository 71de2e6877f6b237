"""EVM log scanning throughput: ``EvmChainClient.block`` over anvil with a busy token.

Run: ``.venv/bin/python bench/evm_scan.py [--blocks 200] [--per-block 200] [--paying 0.05]``

Setup (untimed): a private anvil, the test ERC-20 (``tests/contracts``), then ``--blocks``
blocks of ``--per-block`` token transfers each (automine off, transfers sent as JSON-RPC
batches, one ``evm_mine`` per block). A share ``--paying`` of the transfers goes to watched
addresses, the rest to fresh addresses; the client watches ``--watch`` addresses in all
(the paid ones among them).

Timed: ``client.block(h)`` for every height, as the watcher calls it, once per
``--log-range`` setting (default 1 and the chain's default of 100: one ``eth_getLogs`` per
block against ranges fetched ahead), each with a fresh client. Every run must find exactly
the payments that were made (keys, amounts); the figures are printed, never asserted. The
last line is one JSON object. ``measure()`` is the function ``bench/watcher.py`` can call.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import sys
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dpgnode.adapters.chains.evm_client import EvmChainClient
from dpgnode.domain.custody.evm import checksum_encode
from dpgnode.domain.custody.evm_tx import erc20_transfer_data
from tests.support.anvil import start_anvil
from tests.support.anvil_driver import anvil_spec, deploy_token

_BLOCK_GAS = hex(60_000_000)


def _rpc(client: httpx.Client, url: str, method: str, *params: Any) -> Any:
    answer = client.post(url, json={"jsonrpc": "2.0", "id": 1, "method": method,
                                    "params": list(params)}).json()
    if "error" in answer:
        raise RuntimeError(f"{method}: {answer['error']}")
    return answer["result"]


def busy_token(url: str, token: str, *, blocks: int, per_block: int, paying: float,
               watched: list[str], seed: int = 7) -> tuple[int, int, dict[str, int]]:
    """Mine ``blocks`` blocks of token transfers; (first, last height, paid units by txid)."""
    rng = random.Random(seed)
    expected: dict[str, int] = {}
    with httpx.Client(timeout=120) as client:
        payer = _rpc(client, url, "eth_accounts")[0]
        _rpc(client, url, "anvil_setBlockGasLimit", _BLOCK_GAS)
        _rpc(client, url, "evm_setAutomine", False)
        first = int(_rpc(client, url, "eth_blockNumber"), 16) + 1
        # Explicit nonces: anvil answers a batch's calls concurrently and would hand two of
        # them the same pending nonce.
        nonce = int(_rpc(client, url, "eth_getTransactionCount", payer, "pending"), 16)
        try:
            for _ in range(blocks):
                batch, paid = [], []
                for i in range(per_block):
                    to_watched = rng.random() < paying
                    to = rng.choice(watched) if to_watched else checksum_encode(rng.randbytes(20))
                    units = rng.randrange(1, 10**9)
                    data = erc20_transfer_data(bytes.fromhex(to[2:]), units)
                    batch.append({"jsonrpc": "2.0", "id": i, "method": "eth_sendTransaction",
                                  "params": [{"from": payer, "to": token, "gas": hex(80_000),
                                              "nonce": hex(nonce), "data": "0x" + data.hex()}]})
                    nonce += 1
                    paid.append(units if to_watched else 0)
                answers = client.post(url, json=batch).json()
                for answer in sorted(answers, key=lambda a: a["id"]):
                    if "error" in answer:
                        raise RuntimeError(f"eth_sendTransaction: {answer['error']}")
                    if paid[answer["id"]]:
                        expected[answer["result"].lower()] = paid[answer["id"]]
                _rpc(client, url, "evm_mine")
        finally:
            _rpc(client, url, "evm_setAutomine", True)
        last = int(_rpc(client, url, "eth_blockNumber"), 16)
    return first, last, expected


def scan(url: str, token: str, first: int, last: int, watched: list[str], log_range: int,
         expected: dict[str, int]) -> dict[str, Any]:
    """Time ``block(h)`` over first..last with a fresh client; its figures."""
    client = EvmChainClient.connect(anvil_spec(url, token=token, log_range=log_range))
    client.watch(watched)
    client.tip()
    found: dict[str, int] = {}
    logs = 0
    start = time.perf_counter()
    for height in range(first, last + 1):
        block = client.block(height)
        if block is None:
            raise RuntimeError(f"block {height} missing")
        logs += len(block.txids)  # one token transfer (one log) per transaction here
        for tx in block.transactions:
            for transfer in tx.transfers:
                found[transfer.txid] = found.get(transfer.txid, 0) + transfer.units
    seconds = time.perf_counter() - start
    client.close()
    blocks = last - first + 1
    return {
        "log_range": log_range, "seconds": round(seconds, 3), "blocks": blocks,
        "blocks_per_s": round(blocks / seconds, 1), "logs": logs,
        "logs_per_s": round(logs / seconds), "payments": len(found),
        "get_logs_requests": client.logs.requests, "correct": found == expected,
    }


def measure(*, blocks: int = 200, per_block: int = 200, paying: float = 0.05,
            watch: int = 100_000, log_ranges: tuple[int, ...] = (1, 100)) -> dict[str, Any]:
    """Set up a private anvil with a busy token and scan it once per log range."""
    rng = random.Random(11)
    watched = [checksum_encode(rng.randbytes(20)) for _ in range(watch)]
    with start_anvil() as node:
        token = deploy_token(node)
        started = time.perf_counter()
        first, last, expected = busy_token(node.url, token, blocks=blocks,
                                           per_block=per_block, paying=paying,
                                           watched=watched[:1000])
        setup = time.perf_counter() - started
        runs = [scan(node.url, token, first, last, watched, r, expected) for r in log_ranges]
    return {"bench": "evm_scan", "python": platform.python_version(), "blocks": blocks,
            "transfers_per_block": per_block, "paying_share": paying, "watched": watch,
            "setup_seconds": round(setup, 1), "runs": runs}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--blocks", type=int, default=200)
    parser.add_argument("--per-block", type=int, default=200)
    parser.add_argument("--paying", type=float, default=0.05)
    parser.add_argument("--watch", type=int, default=100_000)
    parser.add_argument("--log-range", type=int, action="append", dest="log_ranges")
    args = parser.parse_args()
    result = measure(blocks=args.blocks, per_block=args.per_block, paying=args.paying,
                     watch=args.watch, log_ranges=tuple(args.log_ranges or (1, 100)))
    print(f"{result['blocks']} blocks x {result['transfers_per_block']} token transfers, "
          f"{result['paying_share']:.0%} to {result['watched']:,} watched addresses "
          f"(setup {result['setup_seconds']} s)")
    for run in result["runs"]:
        print(f"  log_range {run['log_range']:>4}: {run['blocks_per_s']:>7} blocks/s "
              f"{run['logs_per_s']:>8} logs/s  eth_getLogs x{run['get_logs_requests']}  "
              f"payments {run['payments']}  correct={run['correct']}")
    print(json.dumps(result))
    return 0 if all(run["correct"] for run in result["runs"]) else 1


if __name__ == "__main__":
    raise SystemExit(main())
