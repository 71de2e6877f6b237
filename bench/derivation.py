"""Address derivation benchmark: addresses/s from an account xpub (issue 3).

Run: ``.venv/bin/python bench/derivation.py [--seconds 2] [--batch 1000]``

For each address type (P2WPKH, P2TR, P2SH-P2WPKH, P2PKH, EVM) the node's fast path
(``dpgnode.domain.custody.extkeys.derive_addresses``: branch node derived once and cached,
then one HMAC-SHA512 + one coincurve point addition + the encoding per address) derives
receive addresses in batches from a fixed account key; the same run measures one-at-a-time
``AccountKey.address()`` calls and, as the reference, hdwallet 3.6 deriving P2WPKH addresses
from the same xpub (``BIP32HD`` + ``CustomDerivation``). Before timing, the first addresses of
every type are checked against the slow path (plain CKDpub per level), and hdwallet's against
ours, so a fast wrong answer cannot look good.

Goal (issue 3): >= 10,000 addresses/s from an account xpub. The benchmark prints figures and
never asserts on time. The last line is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from typing import Any

from dpgnode.domain.custody.addresses import address_from_public_key
from dpgnode.domain.custody.bip32 import master_from_seed
from dpgnode.domain.custody.evm import evm_address_from_public_key
from dpgnode.domain.custody.extkeys import AccountKey, derive_addresses, parse_account_key
from dpgnode.domain.custody.networks import AddressType, Network

SEED = bytes(range(32))
ACCOUNT_PATHS = {
    AddressType.P2WPKH: "m/84'/0'/0'",
    AddressType.P2TR: "m/86'/0'/0'",
    AddressType.P2SH_P2WPKH: "m/49'/0'/0'",
    AddressType.P2PKH: "m/44'/0'/0'",
    AddressType.EVM: "m/44'/60'/0'",
}
GOAL = 10_000


def account_for(address_type: AddressType) -> AccountKey:
    """The benchmark's fixed account of ``address_type`` (from a fixed seed)."""
    xpub = master_from_seed(SEED).derive_path(ACCOUNT_PATHS[address_type]).public().serialize()
    return parse_account_key(xpub, Network.MAINNET, address_type)


def slow_address(account: AccountKey, index: int) -> str:
    """Reference: CKDpub one level at a time, then the encoder (no caching, no fast loop)."""
    node = account.key.derive_path(account.branch_path(0)).child(index)
    if account.address_type is AddressType.EVM:
        return evm_address_from_public_key(node.public_key)
    return address_from_public_key(node.public_key, account.address_type, account.network)


def timed(step: Callable[[int], int], seconds: float) -> tuple[float, float]:
    """Call ``step(start)`` (returns how many addresses it made) until ``seconds`` pass.

    Returns addresses per wall-clock second and per CPU second of this process: on a shared
    machine the second is the fairer figure of what one core does.
    """
    done = 0
    begin, cpu_begin = time.perf_counter(), time.process_time()
    while (elapsed := time.perf_counter() - begin) < seconds:
        done += step(done)
    cpu = max(time.process_time() - cpu_begin, 1e-9)
    return done / elapsed, done / cpu


def bench_fast(account: AccountKey, seconds: float, batch: int) -> tuple[float, float]:
    derive_addresses(account, 0, 0, 100)  # warm the branch cache and the encoder
    return timed(lambda start: len(derive_addresses(account, 0, start, batch)), seconds)


def bench_best(account: AccountKey, seconds: float, batch: int = 25) -> float:
    """Rate of the fastest short batch (timeit's "min of repeats").

    Preemption by other processes only ever adds time, so on a shared machine the fastest of
    many short batches estimates what one uncontended core does.
    """
    best = 0.0
    start = 0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        begin = time.perf_counter()
        derive_addresses(account, 0, start, batch)
        best = max(best, batch / (time.perf_counter() - begin))
        start += batch
    return best


def bench_single(account: AccountKey, seconds: float) -> tuple[float, float]:
    def step(start: int) -> int:
        for index in range(start, start + 100):
            account.address(0, index)
        return 100

    return timed(step, seconds)


def bench_hdwallet(account: AccountKey, seconds: float) -> tuple[float, float] | None:
    try:
        from hdwallet import HDWallet
        from hdwallet.addresses import P2WPKHAddress
        from hdwallet.cryptocurrencies import Bitcoin
        from hdwallet.derivations import CustomDerivation
        from hdwallet.hds import BIP32HD
    except ImportError:
        return None
    wallet = HDWallet(cryptocurrency=Bitcoin, hd=BIP32HD, network="mainnet")
    wallet.from_xpublic_key(account.key.serialize())

    def address(index: int) -> str:
        wallet.update_derivation(CustomDerivation(path=f"m/0/{index}"))
        return str(wallet.address(address=P2WPKHAddress))

    ours = derive_addresses(account, 0, 0, 20)
    if [address(i) for i in range(20)] != ours:
        raise SystemExit("hdwallet disagrees with the fast path: refusing to report figures")

    def step(start: int) -> int:
        for index in range(start, start + 20):
            address(index)
        return 20

    return timed(step, seconds)


def verify(accounts: dict[AddressType, AccountKey]) -> None:
    for address_type, account in accounts.items():
        fast = derive_addresses(account, 0, 0, 50)
        if fast != [slow_address(account, i) for i in range(50)]:
            raise SystemExit(f"fast path disagrees with CKDpub for {address_type.value}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="time per measurement")
    parser.add_argument("--batch", type=int, default=1000, help="addresses per fast-path call")
    args = parser.parse_args(argv)

    accounts = {t: account_for(t) for t in ACCOUNT_PATHS}
    verify(accounts)
    out: dict[str, Any] = {
        "bench": "derivation", "python": platform.python_version(), "cpus": os.cpu_count(),
        "seconds": args.seconds, "batch": args.batch,
    }  # fmt: skip
    rows: list[tuple[str, float, float, float, float]] = []
    for address_type, account in accounts.items():
        fast, fast_cpu = bench_fast(account, args.seconds, args.batch)
        best = bench_best(account, args.seconds / 2)
        single, _ = bench_single(account, args.seconds / 2)
        rows.append((address_type.value, fast, fast_cpu, best, single))
        out[f"{address_type.value}_per_s"] = round(fast)
        out[f"{address_type.value}_per_cpu_s"] = round(fast_cpu)
        out[f"{address_type.value}_best_batch_per_s"] = round(best)
        out[f"{address_type.value}_single_per_s"] = round(single)
    reference = bench_hdwallet(accounts[AddressType.P2WPKH], args.seconds)
    if reference is not None:
        out["hdwallet_p2wpkh_per_s"] = round(reference[0])
        out["hdwallet_p2wpkh_per_cpu_s"] = round(reference[1])
        out["speedup_vs_hdwallet"] = round(out["p2wpkh_per_cpu_s"] / reference[1], 1)
    out["load_average_1m"] = round(os.getloadavg()[0], 2)
    print_table(rows, out)
    print(json.dumps(out, sort_keys=True))
    return 0


def print_table(rows: list[tuple[str, float, float, float, float]], out: dict[str, Any]) -> None:
    print("fast path verified against plain CKDpub (50 addresses per type)")
    print(f"load average (1 min) during the run: {out['load_average_1m']} on {out['cpus']} CPUs")
    header = (f"{'address type':<16} {'batch addr/s':>13} {'per CPU-s':>11} "
              f"{'best batch/s':>13} {'one-by-one/s':>13}")  # fmt: skip
    print(header)
    print("-" * len(header))
    for name, fast, fast_cpu, best, single in rows:
        print(f"{name:<16} {fast:>13,.0f} {fast_cpu:>11,.0f} {best:>13,.0f} {single:>13,.0f}")
    if "hdwallet_p2wpkh_per_s" in out:
        label = "hdwallet p2wpkh"
        print(f"{label:<16} {out['hdwallet_p2wpkh_per_s']:>13,} "
              f"{out['hdwallet_p2wpkh_per_cpu_s']:>11,}  "
              f"(fast path {out['speedup_vs_hdwallet']}x per CPU-s; 20 addresses "
              "cross-checked)")  # fmt: skip
    print("batch: wall clock over --seconds; per CPU-s: this process's CPU time; best batch: "
          "fastest 25-address batch (uncontended estimate)")  # fmt: skip
    slowest = min(row[1] for row in rows)
    slowest_best = min(row[3] for row in rows)
    verdict = "met" if slowest >= GOAL else "MISSED"
    print(f"goal (issue 3): >= {GOAL:,} addresses/s for every type: {verdict} on wall clock "
          f"(slowest {slowest:,.0f}/s; slowest best batch {slowest_best:,.0f}/s)")  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
