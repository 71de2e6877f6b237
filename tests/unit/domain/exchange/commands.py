"""Random command sequences for the engine tests: Hypothesis strategies and a seeded walk.

A command is a plain tuple, applied to the engine or to the reference model by ``apply``:
``("limit", id, account, side, price, qty, tif, post_only)``, ``("market", id, account,
side, qty, protection)``, ``("stop", id, account, side, trigger, qty, price, kind)``,
``("cancel", id)``, ``("reduce", id, qty)``, ``("halt",)``, ``("resume",)``.

Ids come from a small pool so that duplicates, unknown ids and re-used ids of finished
orders all happen; prices from a narrow band so that orders meet; a few values are invalid
on purpose (side 2, price 0, quantity 0, tif "GTD", kind "trailing").
"""

from __future__ import annotations

import random
from typing import Any

from hypothesis import strategies as st

Command = tuple[Any, ...]

IDS = [f"o{i}" for i in range(14)]
ACCOUNTS = ["a", "b", "c", None]

ids = st.sampled_from(IDS)
accounts = st.sampled_from(ACCOUNTS)
sides = st.sampled_from([0, 1, 0, 1, 0, 1, 2])
prices = st.one_of(st.integers(96, 104), st.integers(96, 104), st.just(0))
quantities = st.one_of(st.integers(1, 12), st.integers(1, 12), st.just(0))
tifs = st.sampled_from(["GTC", "GTC", "GTC", "IOC", "FOK", "GTD"])
kinds = st.sampled_from(["stop_loss", "take_profit", "stop_loss", "trailing"])

post_only = st.sampled_from([False, False, False, True])

limits = st.tuples(st.just("limit"), ids, accounts, sides, prices, quantities, tifs, post_only)
markets = st.tuples(st.just("market"), ids, accounts, sides, quantities,
                    st.none() | st.none() | prices)
stops = st.tuples(st.just("stop"), ids, accounts, sides, prices, quantities,
                  st.none() | prices, kinds)
cancels = st.tuples(st.just("cancel"), ids)
reduces = st.tuples(st.just("reduce"), ids, quantities)
switches = st.sampled_from([("halt",), ("resume",)])

command = st.one_of(limits, limits, limits, limits, markets, stops, cancels, cancels,
                    reduces, switches)
command_lists = st.lists(command, max_size=60)


def apply(book: Any, cmd: Command) -> None:
    """Run one command on a ``MatchingEngine`` or a ``ReferenceBook``."""
    op = cmd[0]
    if op == "limit":
        _, oid, account, side, price, qty, tif, post_only = cmd
        book.limit(oid, account, side, price, qty, tif, post_only)
    elif op == "market":
        _, oid, account, side, qty, protection = cmd
        book.market(oid, account, side, qty, protection)
    elif op == "stop":
        _, oid, account, side, trigger, qty, price, kind = cmd
        book.stop(oid, account, side, trigger, qty, price, kind)
    elif op == "cancel":
        book.cancel(cmd[1])
    elif op == "reduce":
        book.reduce(cmd[1], cmd[2])
    elif op == "halt":
        book.halt()
    else:
        book.resume()


def random_walk(seed: int, length: int, *, band: int = 6, pool: int = 600) -> list[Command]:
    """A long seeded sequence reaching deep books (many orders per level, many cancels).

    Limits are mostly passive (buys below 100, sells above) so the book grows deep; cancels
    and reduces mostly aim at recent ids, which are likely still live.
    """
    rng = random.Random(seed)
    out: list[Command] = []
    next_id = 0
    halted = False
    for _ in range(length):
        r = rng.random()
        known = f"o{max(next_id - rng.randrange(60), 0)}"
        side = rng.getrandbits(1)
        offset = rng.randint(-2, band)
        price = 100 - offset if side == 0 else 100 + offset
        qty = rng.randint(1, 20)
        account = rng.choice(["a", "b", "c", "d", "e", "f", "g", None])
        if r < 0.004:
            halted = True
            out.append(("halt",))
        elif halted and rng.random() < 0.2:  # halts are short
            halted = False
            out.append(("resume",))
        elif r < 0.5:
            next_id += 1
            tif = rng.choice(["GTC"] * 8 + ["IOC", "FOK"])
            out.append(("limit", f"o{next_id}", account, side, price, qty, tif,
                        rng.random() < 0.05))
        elif r < 0.8:
            out.append(("cancel", known))
        elif r < 0.86:
            next_id += 1
            protection = None if rng.random() < 0.7 else price
            out.append(("market", f"o{next_id}", account, side, qty, protection))
        elif r < 0.93:
            next_id += 1
            limit_price = None if rng.random() < 0.5 else price
            kind = rng.choice(["stop_loss", "take_profit"])
            out.append(("stop", f"o{next_id}", account, side, 100 + rng.randint(-band, band),
                        qty, limit_price, kind))
        else:
            out.append(("reduce", known, rng.randint(1, 10)))
        if next_id > pool:
            next_id = 0  # ids come back: finished orders' ids are reused
    return out
