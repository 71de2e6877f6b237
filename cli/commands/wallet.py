"""``dpg wallet``: custody wallets (keychains), their accounts and address pools.

A wallet here is a keychain: an HD seed sealed by the HSM (``create``, ``import``) or a
watch-only account key (``add-xpub``). The database keeps account xpubs and the sealed
seed's ciphertext, never a mnemonic or a private key. A mnemonic is shown once by
``create`` and read from a hidden prompt or stdin by ``import``, never from an argument.
(The HTTP API's ``/wallets`` are ledger balances, a different thing: see README "Custody".)
The address-pool commands (``new-address``, ``addresses``, ``gap``, ``mark-used``) are in
:mod:`.wallet_addresses`.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

from dpgnode.domain.custody.networks import Network, parse_network
from dpgnode.domain.custody.wallet import KeyAccount, Scheme, parse_scheme
from dpgnode.node import Node
from dpgnode.services.custody.wallets import AccountSpec, KeychainView

from .. import output
from ..errors import usage_errors
from ..state import open_node, settings
from . import JSON_HELP, group
from . import wallet_addresses as pool

if TYPE_CHECKING:
    from dpgnode.signer import Pkcs11Signer

app = group("Custody wallets: create or import HD wallets, watch-only keys, address pools.")

_NETWORK_HELP = "mainnet, testnet, signet or regtest. Default: custody.network."
_SCHEME_HELP = (
    "Account to derive: bip84 (P2WPKH), bip86 (P2TR), bip49, bip44, evm; repeat for several. "
    "Default: bip84 and evm."
)


def _signer(ctx: typer.Context) -> Pkcs11Signer:
    # Imported here: only signing commands load the HSM code (R22, see `dpg hsm`).
    from dpgnode.signer import build_signer

    signer = build_signer(settings(ctx))
    ctx.call_on_close(signer.close)
    return signer


def _network(node: Node, text: str | None) -> Network:
    if text is None:
        return node.custody.network
    with usage_errors("--network"):
        return parse_network(text)


def _specs(schemes: list[str] | None, account: int) -> list[AccountSpec]:
    with usage_errors("--scheme"):
        return [AccountSpec(parse_scheme(s), account) for s in schemes or []]


def account_json(account: KeyAccount) -> dict[str, Any]:
    return {
        "id": account.id,
        "scheme": str(account.scheme),
        "chain": str(account.chain),
        "network": str(account.network),
        "account": account.account,
        "path": account.path,
        "xpub": account.xpub,
        "issued": account.next_index,
        "lastUsedIndex": account.last_used_index,
    }


def view_json(view: KeychainView) -> dict[str, Any]:
    keychain = view.keychain
    return {
        "id": keychain.id,
        "label": keychain.label,
        "kind": str(keychain.kind),
        "network": str(keychain.network),
        "fingerprint": keychain.fingerprint,
        "canSpend": keychain.can_spend,
        "createdAt": keychain.created_at,
        "accounts": [account_json(a) for a in view.accounts],
    }


def _print_view(view: KeychainView) -> None:
    k = view.keychain
    label = f" ({k.label})" if k.label else ""
    output.result(f"wallet {k.id}{label}: {k.kind}, {k.network}, fingerprint {k.fingerprint}")
    grid = output.table("Account", "Scheme", "Path", "Issued", "Extended public key")
    for a in view.accounts:
        output.add_row(grid, a.id, str(a.scheme), a.path or "-", str(a.next_index), a.xpub)
    output.print_table(grid)


def _passphrase(ask: bool, *, confirm: bool) -> str:
    if not ask:
        return ""
    text: str = typer.prompt(
        "BIP39 passphrase", hide_input=True, confirmation_prompt=confirm, err=True
    )
    return text


@app.command("create")
def create(
    ctx: typer.Context,
    words: Annotated[int, typer.Option("--words", help="Mnemonic length: 12 or 24.")] = 24,
    passphrase: Annotated[
        bool, typer.Option("--passphrase", help="Ask (hidden, twice) for a BIP39 passphrase.")
    ] = False,
    label: Annotated[str, typer.Option("--label", help="What the wallet is for.")] = "",
    network: Annotated[str | None, typer.Option("--network", help=_NETWORK_HELP)] = None,
    schemes: Annotated[list[str] | None, typer.Option("--scheme", help=_SCHEME_HELP)] = None,
    account: Annotated[int, typer.Option("--account", help="BIP44 account index.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """Create an HD wallet: a new BIP39 mnemonic, its seed sealed in the HSM.

    The mnemonic is printed ONCE: write it down, it is the only backup of the wallet. The
    node keeps only the account xpubs and the sealed seed (ciphertext under an HSM key).
    Needs the signer's HSM (`dpg hsm init` for development).

    Examples:
    ```
    dpg wallet create --words 24 --label treasury
    dpg wallet create --words 12 --network regtest --scheme bip84 --scheme bip86 --json
    ```
    """
    if words not in (12, 24):
        raise typer.BadParameter("must be 12 or 24", param_hint="--words")
    node = open_node(ctx)
    specs, chosen = _specs(schemes, account), _network(node, network)
    secret = _passphrase(passphrase, confirm=True)
    created = node.custody.keychains.create(
        _signer(ctx), words=words, passphrase=secret, label=label, network=chosen,
        accounts=specs,
    )
    output.warn(
        "write these words down now, in order, and keep them offline: they are shown only "
        "once and are the only way to restore this wallet"
    )
    if as_json:
        output.emit_json({**view_json(created.view), "mnemonic": created.mnemonic})
        return
    _print_view(created.view)
    for number, word in enumerate(created.mnemonic.split(), start=1):
        output.result(f"{number:>2}. {word}")


@app.command("import")
def import_mnemonic(
    ctx: typer.Context,
    from_stdin: Annotated[
        bool,
        typer.Option("--stdin", help="Read the mnemonic (and passphrase) lines from stdin."),
    ] = False,
    passphrase: Annotated[
        bool, typer.Option("--passphrase", help="The mnemonic has a BIP39 passphrase: ask.")
    ] = False,
    label: Annotated[str, typer.Option("--label", help="What the wallet is for.")] = "",
    network: Annotated[str | None, typer.Option("--network", help=_NETWORK_HELP)] = None,
    schemes: Annotated[list[str] | None, typer.Option("--scheme", help=_SCHEME_HELP)] = None,
    account: Annotated[int, typer.Option("--account", help="BIP44 account index.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """Import an existing BIP39 mnemonic; its seed is sealed in the HSM.

    The mnemonic is read from a hidden prompt, or with --stdin from the first line of
    standard input (the passphrase, with --passphrase, from the second); never from an
    argument, which would land in the shell history.

    Examples:
    ```
    dpg wallet import --label cold --network mainnet
    dpg wallet import --stdin --passphrase < mnemonic.txt
    ```
    """
    node = open_node(ctx)
    specs, chosen = _specs(schemes, account), _network(node, network)
    if from_stdin:
        lines = sys.stdin.read().splitlines()
        phrase = lines[0] if lines else ""
        secret = (lines[1] if len(lines) > 1 else "") if passphrase else ""
    else:
        phrase = typer.prompt("Mnemonic (hidden)", hide_input=True, err=True)
        secret = _passphrase(passphrase, confirm=False)
    view = node.custody.keychains.import_mnemonic(
        _signer(ctx), phrase, passphrase=secret, label=label, network=chosen, accounts=specs,
    )
    if as_json:
        output.emit_json(view_json(view))
        return
    _print_view(view)


@app.command("add-xpub")
def add_xpub(
    ctx: typer.Context,
    key: Annotated[
        str,
        typer.Argument(
            help="Account xpub/ypub/zpub/tpub/upub/vpub or output descriptor; - reads stdin.",
            metavar="KEY",
        ),
    ],
    label: Annotated[str, typer.Option("--label", help="What the wallet is for.")] = "",
    network: Annotated[str | None, typer.Option("--network", help=_NETWORK_HELP)] = None,
    scheme: Annotated[
        str | None,
        typer.Option("--scheme", help="Address scheme when the key does not imply one "
                     "(an xpub/tpub defaults to bip44; evm for an m/44'/60'/a' key)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """Add a watch-only wallet from an account key or descriptor (receive only, no spending).

    Private keys are refused and never echoed.

    Examples:
    ```
    dpg wallet add-xpub zpub6rFR7y4Q2AijBEqTUquhVz398htD... --label shop-cold
    dpg wallet add-xpub "wpkh([d34db33f/84h/1h/0h]tpubD.../<0;1>/*)#checksum" --network regtest
    ```
    """
    node = open_node(ctx)
    chosen = _network(node, network)
    chosen_scheme: Scheme | None = None
    if scheme is not None:
        with usage_errors("--scheme"):
            chosen_scheme = parse_scheme(scheme)
    text = sys.stdin.read().strip() if key == "-" else key
    view = node.custody.keychains.add_watch_only(
        text, label=label, network=chosen, scheme=chosen_scheme
    )
    if as_json:
        output.emit_json(view_json(view))
        return
    _print_view(view)


@app.command("list")
def list_wallets(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """List custody wallets and their accounts.

    Examples:
    ```
    dpg wallet list
    dpg wallet list --json
    ```
    """
    node = open_node(ctx)
    views = node.custody.keychains.keychains()
    if as_json:
        output.emit_json([view_json(v) for v in views])
        return
    grid = output.table("Wallet", "Label", "Kind", "Network", "Accounts", title="Wallets")
    for view in views:
        k = view.keychain
        accounts = "\n".join(f"{a.id} {a.scheme}" for a in view.accounts)
        output.add_row(grid, k.id, k.label, str(k.kind), str(k.network), accounts)
    output.print_table(grid)
    if not views:
        output.info("no wallets yet: `dpg wallet create`, `import` or `add-xpub`")


@app.command("show")
def show(
    ctx: typer.Context,
    wallet_id: Annotated[str, typer.Argument(help="Wallet id (kc_...).", metavar="WALLET_ID")],
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """Show one wallet with its accounts and their xpubs.

    Examples:
    ```
    dpg wallet show kc_0123
    ```
    """
    view = open_node(ctx).custody.keychains.keychain(wallet_id)
    if as_json:
        output.emit_json(view_json(view))
        return
    _print_view(view)


# The address-pool commands live in their own module (one job each); registered here so
# `dpg wallet --help` lists them in one group.
app.command("new-address")(pool.new_address)
app.command("addresses")(pool.addresses)
app.command("gap")(pool.gap)
app.command("mark-used")(pool.mark_used)
