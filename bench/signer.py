"""Signer benchmark: signatures per second through the real PKCS#11 signer on SoftHSM2.

Run: ``.venv/bin/python bench/signer.py [--seconds 3] [--threads 2]``

A private SoftHSM2 installation is made in a temporary directory (its own softhsm2.conf and
token directory, token created by softhsm2-util), then ``Pkcs11Signer`` (the adapter the
signer role runs) is measured call by call:

a. hot key ECDSA: ``CKM_ECDSA`` inside the HSM on a 32-byte digest, then low-S
   normalisation and the recovery id found by public-key recovery (libsecp256k1);
b. the same from ``--threads`` threads at once (calls into the module are serialised);
c. HD ECDSA: open the sealed seed (AES-256-GCM in the HSM), BIP32-derive
   ``m/84'/1'/0'/0/i``, sign with libsecp256k1 (RFC 6979, low S, recovery id), wipe;
d. HD Schnorr: open, derive ``m/86'/1'/0'/0/i``, BIP341 tweak, BIP340 sign, verify, wipe.

Digests come from ``random.Random(seed)``. Every signature made in a timed run is verified
afterwards (outside the timing) and the count of failures is reported. Figures only: the
benchmark never asserts on time. The last line is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from coincurve import PublicKey, PublicKeyXOnly

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dpgnode.adapters.hsm import PinSource, Pkcs11Signer, TokenLocation
from dpgnode.domain.custody.btc_tx import tagged_hash
from dpgnode.ports.signer import SECP256K1_HALF_N, HdKeyRef, HotKeyRef, Signature
from tests.support.softhsm import SoftHsm

TOKEN = "bench"
PIN = "bench-user-pin-0001"
KEK = "bench-kek-1"
SEED = bytes(range(64))


@dataclass
class Run:
    """What one timed scenario measured."""

    title: str
    latencies_ns: list[int] = field(default_factory=list)
    seconds: float = 0.0
    failures: int = 0

    @property
    def rate(self) -> float:
        return len(self.latencies_ns) / self.seconds if self.seconds else 0.0

    def pct_ms(self, q: float) -> float:
        ordered = sorted(self.latencies_ns)
        if not ordered:
            return 0.0
        return ordered[min(len(ordered) - 1, int(len(ordered) * q))] / 1e6


def timed(
    title: str, seconds: float, threads: int, sign: Callable[[int], Any]
) -> tuple[Run, list[tuple[int, Any]]]:
    """Call ``sign(i)`` for ``seconds`` from ``threads`` threads; keep (i, result) to verify."""
    run = Run(title)
    results: list[tuple[int, Any]] = []
    lock = threading.Lock()
    counter = iter(range(10**9))
    deadline = time.perf_counter() + seconds

    def worker() -> None:
        local_lat: list[int] = []
        local_res: list[tuple[int, Any]] = []
        while time.perf_counter() < deadline:
            with lock:
                i = next(counter)
            t0 = time.perf_counter_ns()
            out = sign(i)
            local_lat.append(time.perf_counter_ns() - t0)
            local_res.append((i, out))
        with lock:
            run.latencies_ns.extend(local_lat)
            results.extend(local_res)

    started = time.perf_counter()
    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    run.seconds = time.perf_counter() - started
    return run, results


def check_ecdsa(signature: Signature, digest: bytes, public: bytes) -> bool:
    recovered = PublicKey.from_signature_and_message(
        signature.to_rs64() + bytes([signature.recovery_id]), digest, hasher=None
    )
    return (
        signature.s <= SECP256K1_HALF_N
        and PublicKey(public).verify(signature.to_der(), digest, hasher=None)
        and recovered.format(compressed=True) == public
    )


def check_schnorr(signature: bytes, digest: bytes, internal: bytes) -> bool:
    x_only = internal[1:]
    output_key = PublicKeyXOnly(x_only)
    output_key.tweak_add(tagged_hash("TapTweak", x_only))
    return output_key.verify(signature, digest)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="length of each scenario")
    parser.add_argument("--threads", type=int, default=2, help="threads of scenario b")
    parser.add_argument("--seed", type=int, default=7, help="seed of the digest stream")
    args = parser.parse_args(argv)

    rng = random.Random(args.seed)
    digests = [rng.randbytes(32) for _ in range(4096)]

    def digest(i: int) -> bytes:
        return digests[i % len(digests)]

    with tempfile.TemporaryDirectory(prefix="dpg-bench-signer-") as work:
        hsm = SoftHsm.create(Path(work))
        hsm.create_token(TOKEN, PIN)
        pin_file = Path(work) / "pin"
        pin_file.write_text(PIN + "\n")
        pin_file.chmod(0o600)
        location = TokenLocation(hsm.module, TOKEN, hsm.conf)
        with Pkcs11Signer(location, PinSource(file=pin_file), kek_label=KEK) as signer:
            signer.ensure_kek()
            hot = HotKeyRef("hot:BTC:bench")
            hot_public = signer.generate_hot_key(hot.label)
            sealed = signer.seal_seed(SEED, aad=b"wallet:bench")
            status = signer.status()

            def hd_ref(purpose: int, i: int) -> HdKeyRef:
                return HdKeyRef(sealed, f"m/{purpose}'/1'/0'/0/{i % 64}")

            hd_publics = {
                (purpose, i): signer.public_key(hd_ref(purpose, i))
                for purpose in (84, 86)
                for i in range(64)
            }
            for i in range(50):  # warm-up: session, key handles, allocator
                signer.sign_ecdsa(hot, digest(i))

            runs: dict[str, Run] = {}
            run, out = timed(
                "a  hot key ECDSA in the HSM (+ low-S, recovery id)",
                args.seconds,
                1,
                lambda i: signer.sign_ecdsa(hot, digest(i)),
            )
            run.failures = sum(not check_ecdsa(s, digest(i), hot_public) for i, s in out)
            runs["a"] = run
            run, out = timed(
                f"b  hot key ECDSA, {args.threads} threads",
                args.seconds,
                args.threads,
                lambda i: signer.sign_ecdsa(hot, digest(i)),
            )
            run.failures = sum(not check_ecdsa(s, digest(i), hot_public) for i, s in out)
            runs["b"] = run
            run, out = timed(
                "c  HD ECDSA (open seed + derive + sign + wipe)",
                args.seconds,
                1,
                lambda i: signer.sign_ecdsa(hd_ref(84, i), digest(i)),
            )
            run.failures = sum(
                not check_ecdsa(s, digest(i), hd_publics[(84, i % 64)]) for i, s in out
            )
            runs["c"] = run
            run, out = timed(
                "d  HD Schnorr, P2TR key path (open + derive + tweak + sign + wipe)",
                args.seconds,
                1,
                lambda i: signer.sign_schnorr(hd_ref(86, i), digest(i)),
            )
            run.failures = sum(
                not check_schnorr(s, digest(i), hd_publics[(86, i % 64)]) for i, s in out
            )
            runs["d"] = run

    print(
        f"signer benchmark: {status.manufacturer} {status.model}, token '{TOKEN}', "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}"
    )
    print(f"{'scenario':<70} {'sig/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'n':>7} {'bad':>4}")
    figures: dict[str, Any] = {"seconds": args.seconds, "threads": args.threads}
    for key, run in runs.items():
        print(
            f"{run.title:<70} {run.rate:>9,.0f} {run.pct_ms(0.5):>8.3f} "
            f"{run.pct_ms(0.99):>8.3f} {len(run.latencies_ns):>7} {run.failures:>4}"
        )
        figures[f"{key}_sig_per_s"] = round(run.rate, 1)
        figures[f"{key}_p50_ms"] = round(run.pct_ms(0.5), 3)
        figures[f"{key}_p99_ms"] = round(run.pct_ms(0.99), 3)
        figures[f"{key}_signatures"] = len(run.latencies_ns)
        figures[f"{key}_failed_verification"] = run.failures
    print(json.dumps(figures, sort_keys=True))


if __name__ == "__main__":
    main()
