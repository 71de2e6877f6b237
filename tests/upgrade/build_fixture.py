"""Builds tests/upgrade/0001.sqlite3 with the code of release 0001 (see README.md here).

Run it with that release's code first on the path; it refuses to run with other code.
"""

from __future__ import annotations

import sqlite3
import sys
import tempfile
from pathlib import Path


def main(out: Path, release_root: str) -> None:
    import dpgnode

    if not dpgnode.__file__ or not dpgnode.__file__.startswith(release_root):
        raise SystemExit(f"dpgnode comes from {dpgnode.__file__}, not {release_root}")
    from dpgnode.domain.ledger import AccountKind, AccountRef, EntryDraft, OwnerType, Posting
    from dpgnode.node import build_node
    from dpgnode.services.access import StoreFields
    from dpgnode.settings import load_settings

    data_dir = Path(tempfile.mkdtemp())
    node = build_node(load_settings(data_dir), upgrade=True)
    store = node.access.create_store(StoreFields(name="Release 0001 shop"))
    node.access.create_api_key("upgrade", ["btcpay.store.canviewinvoices:" + store.id])
    world = AccountRef(OwnerType.OPERATOR, "op", "ETH", AccountKind.WORLD)
    shop = AccountRef(OwnerType.STORE, store.id, "ETH", AccountKind.AVAILABLE)
    fees = AccountRef(OwnerType.OPERATOR, "op", "ETH", AccountKind.FEES)
    node.ledger.post(EntryDraft("dep-1", (Posting(world, -5 * 10**24), Posting(shop, 5 * 10**24))))
    fee = node.ledger.post(EntryDraft("fee-1", (Posting(shop, -(10**18)), Posting(fees, 10**18))))
    node.ledger.reverse(fee.entry.id, "rev-1")
    hold = node.ledger.reserve(shop, 3 * 10**18, "hold-1")
    node.ledger.capture(hold.hold.id, 10**18, fees, "cap-1")
    node.ledger.reserve(shop, 2 * 10**18, "hold-2")
    if not node.verify_ledger().ok:
        raise SystemExit("the fixture's ledger does not verify")
    node.close()
    source = sqlite3.connect(data_dir / "dpg.sqlite3")
    target = sqlite3.connect(out)
    source.backup(target)
    target.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal beside it
    target.close()
    source.close()


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2] if len(sys.argv) > 2 else "/tmp/rel01")
