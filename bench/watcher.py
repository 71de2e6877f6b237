"""Chain watcher benchmark (issue 4): Bitcoin block matching, EVM log scanning, crediting.

Run: ``.venv/bin/python bench/watcher.py [--addresses 1000000] [--evm-blocks 200] [--quick]``

Three figures, on fixed seeded workloads:

1. **bitcoin** (``bench/watcher_bitcoin.py``): a block of 3,000 segwit transactions parsed and
   matched against 1,000,000 issued addresses (goal <= 200 ms per block), with the memory the
   watch set takes and python-bitcoinlib's parse time of the same block as the reference;
2. **evm** (``bench/evm_scan.py``): blocks/s and logs/s of ``EvmChainClient`` scanning a busy
   test ERC-20 on a private anvil, with eth_getLogs ranges of 1 and 100 blocks;
3. **credit**: the watcher service itself: blocks/s and credited payments/s when the chain
   pays issued addresses, each block one writer command on SQLite (payments, ledger entries,
   events, cursor), over the in-process simulated chain so only the node's own work is timed.

Prints a table, then as its last line one JSON object with every figure. Never asserts on time.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import evm_scan, watcher_bitcoin
from dpgnode.adapters.chains.clients import FollowedChain
from dpgnode.adapters.chains.simulated import SimulatedChain
from dpgnode.adapters.chains.simulated_client import SimulatedChainClient
from dpgnode.adapters.memory.clock import FixedClock
from dpgnode.domain.chains.payments import ConfirmationPolicy
from dpgnode.domain.custody.networks import Network
from dpgnode.node import build_node
from dpgnode.services.chains.watcher import WatchTarget
from dpgnode.settings import load_settings

# The published BIP84 test vector's account key (mainnet): not a secret.
BIP84_ZPUB = (
    "zpub6rFR7y4Q2AijBEqTUquhVz398htDFrtymD9xYYfG1m4wAcvPhXNfE3EfH1r1ADqtfSdVCToUG868RvUUkgDK"
    "f31mGDtKsAYz2oz2AGutZYs"
)


def credit(blocks: int, payments_per_block: int, addresses: int) -> dict[str, Any]:
    """Blocks/s and payments/s of the watcher crediting payments on SQLite."""
    with tempfile.TemporaryDirectory() as tmp:
        chain = SimulatedChain(seed=21)
        target = WatchTarget("bitcoin", "bitcoin", "mainnet", ConfirmationPolicy(1, 6),
                             max_blocks_per_poll=blocks + 1)
        followed = FollowedChain(SimulatedChainClient(chain), target, 1.0)
        settings = load_settings(Path(tmp), overrides={"custody": {"network": "mainnet"}})
        node = build_node(settings, clock=FixedClock(), upgrade=True,
                          chains={"bitcoin": followed})
        try:
            view = node.custody.keychains.add_watch_only(BIP84_ZPUB, network=Network.MAINNET)
            account = view.accounts[0].id
            issued = [node.custody.addresses.issue(account, owner="store:st_1").address.address
                      for _ in range(addresses)]
            monitor = node.chains.monitor
            monitor.poll("bitcoin", force=True)
            paid = 0
            for block in range(blocks):
                for slot in range(payments_per_block):
                    address = issued[(block * payments_per_block + slot) % len(issued)]
                    chain.pay(address, 1_000 + slot)
                    paid += 1
                chain.mine(1)
            started = time.perf_counter()
            health = monitor.poll("bitcoin", force=True)
            elapsed = time.perf_counter() - started
            assert not health.error, health.error
            credited = node.chains.store.payments("bitcoin", limit=paid + 10)
            assert sum(1 for p in credited if p.credit_key is not None) == paid
            assert node.verify_ledger().ok
        finally:
            node.close()
    return {"blocks": blocks, "payments_per_block": payments_per_block,
            "issued_addresses": addresses, "seconds": round(elapsed, 3),
            "blocks_per_s": round(blocks / elapsed, 1),
            "payments_per_s": round(paid / elapsed, 1)}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--addresses", type=int, default=1_000_000)
    parser.add_argument("--evm-blocks", type=int, default=200)
    parser.add_argument("--quick", action="store_true",
                        help="Small workloads (smoke test): 20,000 addresses, 20 EVM blocks.")
    args = parser.parse_args(argv)
    addresses = 20_000 if args.quick else args.addresses
    evm_blocks = 20 if args.quick else args.evm_blocks

    print("== bitcoin: block matching ==")
    bitcoin = watcher_bitcoin.main(["--addresses", str(addresses), "--runs", "5"])
    print("== evm: token log scanning against anvil ==")
    evm = evm_scan.measure(blocks=evm_blocks, per_block=200, paying=0.05,
                           watch=10_000 if args.quick else 100_000)
    for run in evm["runs"]:
        print(f"  log_range {run['log_range']:>4}: {run['blocks_per_s']:>7} blocks/s "
              f"{run['logs_per_s']:>8} logs/s  correct={run['correct']}")
    print("== credit: watcher service on SQLite ==")
    crediting = credit(blocks=20 if args.quick else 200, payments_per_block=10,
                       addresses=200 if args.quick else 2_000)
    print(f"  {crediting['blocks']} blocks x {crediting['payments_per_block']} payments: "
          f"{crediting['blocks_per_s']} blocks/s, {crediting['payments_per_s']} payments/s")

    print()
    print(f"{'figure':<44}{'value':>14}")
    rows = [
        ("bitcoin parse+match ms/block (goal <= 200)", bitcoin["parse_match_ms"]),
        ("bitcoin watch set MB per 1M addresses",
         round(float(str(bitcoin["watch_mb"])) * 1_000_000 / max(1, addresses), 1)),
        ("python-bitcoinlib parse ms/block", bitcoin["bitcoinlib_parse_ms"]),
    ]
    rows += [(f"evm blocks/s (log_range {r['log_range']})", r["blocks_per_s"])
             for r in evm["runs"]]
    rows += [(f"evm logs/s (log_range {r['log_range']})", r["logs_per_s"]) for r in evm["runs"]]
    rows += [("watcher blocks/s (SQLite)", crediting["blocks_per_s"]),
             ("watcher credited payments/s (SQLite)", crediting["payments_per_s"])]
    for name, value in rows:
        print(f"{name:<44}{value:>14}")
    figures = {"bench": "watcher", "bitcoin": bitcoin, "evm": evm, "credit": crediting}
    print(json.dumps(figures))
    return figures


if __name__ == "__main__":
    main()
