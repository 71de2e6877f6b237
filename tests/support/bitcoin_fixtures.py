"""Makes ``tests/unit/adapters/chains/data/bitcoin_blocks.json``: real regtest blocks.

Run: ``.venv/bin/python -m tests.support.bitcoin_fixtures`` (needs Bitcoin Knots:
``scripts/components``). A fresh regtest node's wallet pays one output of each type the node
issues (P2PKH, P2SH-P2WPKH, P2WPKH, P2TR) in one block, then spends each of them alone (the
P2PKH spend is a legacy, witness-free transaction) and all of them together (a segwit
transaction with an empty witness for its legacy input) in the next block. The file keeps
each block's raw hex beside what the node itself decoded (hash, height, time, previous hash,
and per transaction its txid, inputs with sequence numbers and outputs), so the parser is
checked against Bitcoin Knots as well as against python-bitcoinlib.
"""

from __future__ import annotations

import json
import tempfile
from decimal import Decimal
from pathlib import Path
from typing import Any

from tests.support.bitcoind import BitcoindNode, btc_to_sats, start_bitcoind

OUT = Path(__file__).resolve().parents[1] / "unit" / "adapters" / "chains" / "data"
WALLET = "w"
TYPES = ("legacy", "p2sh-segwit", "bech32", "bech32m")


def _address(node: BitcoindNode, kind: str) -> str:
    address: str = node.rpc("getnewaddress", "", kind, wallet=WALLET)
    return address


def _block(node: BitcoindNode, block_hash: str) -> dict[str, Any]:
    decoded = node.rpc("getblock", block_hash, 2)
    return {
        "hash": decoded["hash"],
        "height": decoded["height"],
        "time": decoded["time"],
        "prev_hash": decoded.get("previousblockhash", "00" * 32),
        "hex": node.rpc("getblock", block_hash, 0),
        "txs": [
            {
                "txid": tx["txid"],
                "witness": tx["hash"] != tx["txid"],
                "inputs": [
                    {"prevout": f"{i['txid']}:{i['vout']}", "sequence": i["sequence"]}
                    if "txid" in i else {"coinbase": True, "sequence": i["sequence"]}
                    for i in tx["vin"]
                ],
                "outputs": [[btc_to_sats(o["value"]), o["scriptPubKey"]["hex"]]
                            for o in tx["vout"]],
            }
            for tx in decoded["tx"]
        ],
    }


def _spend(node: BitcoindNode, utxos: list[dict[str, Any]], to: str, sequence: int) -> str:
    inputs = [{"txid": u["txid"], "vout": u["vout"], "sequence": sequence} for u in utxos]
    total = sum(btc_to_sats(u["amount"]) for u in utxos)
    raw = node.rpc("createrawtransaction", inputs,
                   [{to: Decimal(total - 10_000 * len(utxos)) / 100_000_000}])
    signed = node.rpc("signrawtransactionwithwallet", raw, wallet=WALLET)
    assert signed["complete"], signed
    txid: str = node.rpc("sendrawtransaction", signed["hex"])
    return txid


def make(workdir: Path) -> dict[str, Any]:
    """Mine the fixture blocks on a fresh node in ``workdir``; the file's content."""
    with start_bitcoind(workdir) as node:
        node.rpc("createwallet", WALLET)
        node.mine(101, _address(node, "bech32"))
        paid = {kind: _address(node, kind) for kind in TYPES}
        node.rpc("sendmany", "", {a: Decimal(1) for a in paid.values()}, wallet=WALLET)
        node.rpc("sendmany", "", {a: Decimal(2) for a in paid.values()}, wallet=WALLET)
        funding = node.mine(1, _address(node, "bech32"))[0]
        unspent = node.rpc("listunspent", 1, 9999, list(paid.values()), wallet=WALLET)
        by_address: dict[str, list[dict[str, Any]]] = {}
        for utxo in unspent:
            by_address.setdefault(utxo["address"], []).append(utxo)
        for index, kind in enumerate(TYPES):  # one alone, final and replaceable in turn
            one = min(by_address[paid[kind]], key=lambda u: u["amount"])
            _spend(node, [one], _address(node, TYPES[(index + 1) % 4]),
                   0xFFFFFFFF if index % 2 else 0xFFFFFFFD)
        together = [max(by_address[paid[kind]], key=lambda u: u["amount"]) for kind in TYPES]
        _spend(node, together, _address(node, "legacy"), 0xFFFFFFFE)
        spending = node.mine(1, _address(node, "bech32"))[0]
        return {
            "made_by": "python -m tests.support.bitcoin_fixtures "
                       f"({node.rpc('getnetworkinfo')['subversion']})",
            "blocks": {
                "genesis": _block(node, node.rpc("getblockhash", 0)),
                "funding": _block(node, funding),
                "spending": _block(node, spending),
            },
        }


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as workdir:
        data = make(Path(workdir))
    (OUT / "bitcoin_blocks.json").write_text(json.dumps(data, indent=1, default=str) + "\n")


if __name__ == "__main__":
    main()
