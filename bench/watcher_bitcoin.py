"""Bitcoin block matching benchmark: 3,000 transactions against 1,000,000 addresses (issue 4).

Run: ``.venv/bin/python bench/watcher_bitcoin.py [--addresses 1000000] [--txs 3000] [--runs 5]``

What is measured, on synthetic but well-formed data (the parser is checked against
python-bitcoinlib on real blocks in ``tests/unit/adapters/chains/test_bitcoin_blocks.py``):

- ``watch``: loading the issued addresses (70 % P2WPKH, 20 % P2TR, 5 % P2SH-P2WPKH, 5 % P2PKH,
  real checksums) into ``WatchedScripts``: seconds, and the resident memory it adds;
- ``block``: ``parse_block`` of a block of segwit transactions (2 inputs with witnesses, 2
  outputs each; one transaction in 100 pays a watched address): ms per block, parse and match;
- ``bitcoinlib``: python-bitcoinlib's ``CBlock.deserialize`` of the same block, parse only,
  as the reference the hand-written parser has to beat; its txids are checked against ours.

Goal (issue 4): <= 200 ms per block with 1,000,000 watched addresses. The benchmark prints
figures and never asserts on time; the last line is one JSON object with every figure.
``bench/watcher.py`` (the chain-agnostic watcher benchmark) can import :func:`synthetic_block`
and :func:`issued_addresses` to build its Bitcoin case.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from bitcoin.core import CBlock, b2lx  # type: ignore[import-untyped]

from dpgnode.adapters.chains.bitcoin_blocks import parse_block
from dpgnode.adapters.chains.bitcoin_watchset import WatchedScripts
from dpgnode.domain.custody.addresses import parse_address
from dpgnode.domain.custody.encoding import b58check_encode, encode_segwit
from dpgnode.domain.custody.networks import Network, network_params

GOAL_MS = 200.0
PAY_EVERY = 100


def issued_addresses(count: int, network: Network = Network.MAINNET, seed: int = 4) -> list[str]:
    """``count`` distinct valid addresses of the node's four types, from a seeded generator."""
    rng = random.Random(seed)
    params = network_params(network)
    addresses: list[str] = []
    for index in range(count):
        kind = index % 20
        if kind < 14:
            addresses.append(encode_segwit(params.hrp, 0, rng.randbytes(20)))
        elif kind < 18:
            addresses.append(encode_segwit(params.hrp, 1, rng.randbytes(32)))
        elif kind == 18:
            addresses.append(b58check_encode(bytes([params.p2sh_version]) + rng.randbytes(20)))
        else:
            addresses.append(b58check_encode(bytes([params.p2pkh_version]) + rng.randbytes(20)))
    return addresses


def _varint(n: int) -> bytes:
    if n < 0xFD:
        return bytes([n])
    if n <= 0xFFFF:
        return b"\xfd" + n.to_bytes(2, "little")
    return b"\xfe" + n.to_bytes(4, "little")


def _push(data: bytes) -> bytes:
    return _varint(len(data)) + data


def _coinbase(height: int) -> bytes:
    script_sig = _push(height.to_bytes(4, "little")) + b"\x00"
    outputs = [
        (312_500_000).to_bytes(8, "little") + _push(b"\x00\x14" + bytes(20)),
        bytes(8) + _push(b"\x6a\x24\xaa\x21\xa9\xed" + bytes(32)),  # witness commitment
    ]
    return (
        (2).to_bytes(4, "little") + b"\x00\x01" + b"\x01" + bytes(32) + b"\xff" * 4
        + _push(script_sig) + b"\xff" * 4 + b"\x02" + b"".join(outputs)
        + b"\x01" + _push(bytes(32)) + bytes(4)
    )


def _spend(rng: random.Random, outputs: list[bytes]) -> bytes:
    inputs = b"".join(
        rng.randbytes(32) + rng.randrange(4).to_bytes(4, "little") + b"\x00"
        + (0xFFFFFFFD).to_bytes(4, "little")
        for _ in range(2)
    )
    outs = b"".join(
        rng.randrange(1_000, 10**8).to_bytes(8, "little") + _push(script) for script in outputs
    )
    witness = b"".join(b"\x02" + _push(rng.randbytes(72)) + _push(rng.randbytes(33))
                       for _ in range(2))
    return (
        (2).to_bytes(4, "little") + b"\x00\x01" + b"\x02" + inputs
        + _varint(len(outputs)) + outs + witness + bytes(4)
    )


def synthetic_block(
    txs: int, paid: list[bytes], *, height: int = 900_000, seed: int = 7
) -> tuple[bytes, int]:
    """A raw block of ``txs`` transactions (coinbase included) and how many outputs pay ``paid``.

    Transaction ``i`` pays ``paid[i // PAY_EVERY - 1]`` when ``i`` is a multiple of ``PAY_EVERY``
    (and there is one left); every other output pays a fresh random P2WPKH or P2TR script.
    """
    rng = random.Random(seed)
    body = [_coinbase(height)]
    hits = 0
    for index in range(1, txs):
        outputs = [
            b"\x00\x14" + rng.randbytes(20) if rng.random() < 0.7
            else b"\x51\x20" + rng.randbytes(32)
            for _ in range(2)
        ]
        if index % PAY_EVERY == 0 and index // PAY_EVERY <= len(paid):
            outputs[0] = paid[index // PAY_EVERY - 1]
            hits += 1
        body.append(_spend(rng, outputs))
    header = (
        (0x20000000).to_bytes(4, "little") + rng.randbytes(32) + rng.randbytes(32)
        + (1_750_000_000).to_bytes(4, "little") + bytes.fromhex("1703a30c") + bytes(4)
    )
    return header + _varint(txs) + b"".join(body), hits


def _rss_bytes() -> int:
    """Resident memory of this process (Linux ``/proc``): what the watch set really costs."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE")


def _timed(action: Callable[[], object], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        gc.collect()
        start = time.perf_counter()
        action()
        times.append((time.perf_counter() - start) * 1000)
    return times


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--addresses", type=int, default=1_000_000)
    parser.add_argument("--txs", type=int, default=3_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)

    start = time.perf_counter()
    addresses = issued_addresses(args.addresses)
    generate_s = time.perf_counter() - start

    gc.collect()
    rss = _rss_bytes()
    start = time.perf_counter()
    watch = WatchedScripts(Network.MAINNET)
    watch.add(addresses)
    watch_s = time.perf_counter() - start
    watch_mb = (_rss_bytes() - rss) / 2**20

    paid_addresses = addresses[-1 :: -max(1, args.addresses // 50)][: args.txs // PAY_EVERY]
    paid = [parse_address(a, Network.MAINNET).script_pubkey for a in paid_addresses]
    raw, hits = synthetic_block(args.txs, paid)
    block = parse_block(raw, watch, "BTC")
    found = sorted(t.address for tx in block.transactions for t in tx.transfers)
    assert found == sorted(paid_addresses[:hits]), "the parser missed a watched output"
    assert block.height == 900_000
    assert len(block.txids) == args.txs

    ours = _timed(lambda: parse_block(raw, watch, "BTC"), args.runs)
    reference_block = CBlock.deserialize(raw)
    assert {b2lx(tx.GetTxid()) for tx in reference_block.vtx} == block.txids
    reference = _timed(lambda: CBlock.deserialize(raw), max(1, args.runs // 2))

    figures: dict[str, object] = {
        "addresses": args.addresses,
        "txs": args.txs,
        "block_bytes": len(raw),
        "matched_outputs": hits,
        "generate_addresses_s": round(generate_s, 2),
        "watch_load_s": round(watch_s, 2),
        "watch_mb": round(watch_mb, 1),
        "watch_bytes_per_address": round(watch_mb * 2**20 / max(1, args.addresses)),
        "parse_match_ms": round(statistics.median(ours), 1),
        "parse_match_ms_runs": [round(t, 1) for t in ours],
        "bitcoinlib_parse_ms": round(statistics.median(reference), 1),
        "goal_ms": GOAL_MS,
    }
    print(f"watch {args.addresses:,} addresses: {watch_s:.2f} s, {watch_mb:.0f} MB "
          f"({figures['watch_bytes_per_address']} B/address)")
    print(f"block of {args.txs:,} txs ({len(raw) / 1e6:.2f} MB): parse+match "
          f"{figures['parse_match_ms']} ms (goal <= {GOAL_MS:.0f}); python-bitcoinlib parse "
          f"only {figures['bitcoinlib_parse_ms']} ms")
    print(json.dumps(figures))
    return figures


if __name__ == "__main__":
    main()
