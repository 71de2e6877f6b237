"""``dpg hsm``: the signer's HSM: a development token, its status, its public keys.

The PIN never appears on a command line: the signer reads it from the environment variable
named by ``hsm.pin_env`` (default ``DPG_HSM_PIN``) or from ``hsm.pin_file``. These commands
reach the HSM only through :mod:`dpgnode.signer`, like the signer role does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from .. import output
from ..state import settings
from . import JSON_HELP, group

app = group("Set up and inspect the signer's HSM (PKCS#11; SoftHSM2 for development).")

_SIGNING_MECHANISMS = ("EC_KEY_PAIR_GEN", "ECDSA", "AES_KEY_GEN", "AES_GCM")

if TYPE_CHECKING:
    from dpgnode.signer import Pkcs11Signer


def _signer(ctx: typer.Context) -> Pkcs11Signer:
    # Imported here, not at the top: only `dpg hsm` loads python-pkcs11, so `dpg node start`
    # and every other command run without the HSM code in the process (R22).
    from dpgnode.signer import build_signer

    signer = build_signer(settings(ctx))
    ctx.call_on_close(signer.close)
    return signer


@app.command("init")
def init(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """Create a SoftHSM2 token for development, with its key-encryption key.

    Everything lives under DATA_DIR/hsm (mode 0700): its own softhsm2.conf and token
    directory (the system's tokens are untouched), the generated user PIN in user.pin and the
    security officer's PIN in so.pin (both mode 0600). The user PIN is printed this once.
    The token gets the label hsm.token_label and an AES-256 key labelled hsm.kek_label that
    seals wallet seeds. Idempotent: on an initialised directory it only adds a missing KEK.
    For a production HSM use its vendor's tools, then set hsm.module and hsm.token_label.

    Examples:
    ```
    dpg hsm init
    dpg hsm init --json
    ```
    """
    from dpgnode.signer import init_dev_token  # see _signer: only `dpg hsm` loads the HSM code

    setup = init_dev_token(settings(ctx))
    if as_json:
        output.emit_json(
            {
                "created": setup.created,
                "kekCreated": setup.kek_created,
                "directory": str(setup.directory),
                "softhsm2Conf": str(setup.conf),
                "tokenLabel": setup.token_label,
                "kekLabel": setup.kek_label,
                "userPinFile": str(setup.user_pin_file),
                "soPinFile": str(setup.so_pin_file),
            }
        )
        return
    if not setup.created:
        kek = "created" if setup.kek_created else "present"
        output.result(
            f"already initialised: token '{setup.token_label}' in {setup.directory} "
            f"(KEK '{setup.kek_label}' {kek})"
        )
        return
    output.result(f"created SoftHSM2 token '{setup.token_label}' in {setup.directory}")
    output.result(f"key-encryption key '{setup.kek_label}' created in the token")
    # The PIN is never printed: provisioning logs would keep it. It lives only in its file.
    output.result(f"user PIN written to {setup.user_pin_file} (0600)")
    output.info(
        f"The signer reads that file when DPG_HSM_PIN is unset; the SO PIN is in "
        f"{setup.so_pin_file}. Move both somewhere safer for anything but development."
    )


@app.command("status")
def status(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """Show the module, the token, whether it can sign, the KEK and the keys present.

    Logs in to the token with the configured PIN source, so it also checks the PIN.
    Exit status 4 when the HSM or the token cannot be reached, 1 when the PIN is refused,
    3 when no PIN is configured.

    Examples:
    ```
    dpg hsm status
    DPG_HSM_PIN=... dpg hsm status --json
    ```
    """
    signer = _signer(ctx)
    report = signer.status()
    if as_json:
        output.emit_json(
            {
                "module": report.module,
                "tokenLabel": report.token_label,
                "tokenSerial": report.token_serial,
                "manufacturer": report.manufacturer,
                "model": report.model,
                "canSign": report.can_sign,
                "kekLabel": report.kek_label,
                "kekPresent": report.kek_present,
                "keks": list(report.keks),
                "hotKeys": [key.label for key in report.hot_keys],
                "mechanisms": list(report.mechanisms),
            }
        )
        return
    present = [name for name in _SIGNING_MECHANISMS if name in report.mechanisms]
    grid = output.table("Item", "Value", title="HSM")
    rows = [
        ("module", report.module),
        ("token", f"{report.token_label} (serial {report.token_serial})"),
        ("device", f"{report.manufacturer} {report.model}"),
        ("can sign", "yes" if report.can_sign else "no"),
        ("signing mechanisms", ", ".join(present) or "(none)"),
        ("mechanisms", str(len(report.mechanisms))),
        ("KEK", f"{report.kek_label} ({'present' if report.kek_present else 'missing'})"),
        ("all KEKs", ", ".join(report.keks) or "(none)"),
        ("hot keys", str(len(report.hot_keys))),
    ]
    for name, value in rows:
        output.add_row(grid, name, value)
    output.print_table(grid)
    if not report.kek_present:
        output.warn(f"no KEK '{report.kek_label}': wallet seeds cannot be sealed (dpg hsm init)")
    if not report.can_sign:
        needed = ", ".join(_SIGNING_MECHANISMS)
        output.warn(f"the token lacks a mechanism the signer needs: {needed}")


@app.command("keys")
def keys(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """List the hot keys in the token: labels and public keys, never a private value.

    Each key's protection is read back from the token (CKA_SENSITIVE, CKA_EXTRACTABLE,
    CKA_NEVER_EXTRACTABLE), so the listing also proves the private halves cannot be exported.

    Examples:
    ```
    dpg hsm keys
    dpg hsm keys --json
    ```
    """
    signer = _signer(ctx)
    rows: list[dict[str, Any]] = []
    for key in signer.status().hot_keys:
        flags = signer.key_protection(key.label)
        rows.append(
            {
                "label": key.label,
                "publicKey": key.public_key.hex(),
                "sensitive": flags["sensitive"],
                "extractable": flags["extractable"],
                "neverExtractable": flags["never_extractable"],
            }
        )
    if as_json:
        output.emit_json(rows)
        return
    grid = output.table("Label", "Public key (compressed)", "Private half", title="Hot keys")
    for row in rows:
        sealed_in = row["sensitive"] and row["neverExtractable"] and not row["extractable"]
        output.add_row(
            grid, row["label"], row["publicKey"], "non-extractable" if sealed_in else "EXPORTABLE"
        )
    output.print_table(grid)
    if not rows:
        output.info("no hot keys: create one with `dpg hsm keygen LABEL`")


@app.command("keygen")
def keygen(
    ctx: typer.Context,
    label: Annotated[
        str, typer.Argument(help="Label of the new key, e.g. hot:BTC:regtest.", metavar="LABEL")
    ],
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """Generate a secp256k1 hot key inside the HSM and print its public key.

    The private half is created sensitive and non-extractable and never leaves the token.
    One key per asset and network is the convention (hot:BTC:mainnet, hot:ETH:mainnet). A
    label already in use is refused (exit 1): keys are never replaced.

    Examples:
    ```
    dpg hsm keygen hot:BTC:regtest
    dpg hsm keygen hot:ETH:mainnet --json
    ```
    """
    signer = _signer(ctx)
    public = signer.generate_hot_key(label)
    if as_json:
        output.emit_json({"label": label, "publicKey": public.hex()})
        return
    output.result(f"{label} {public.hex()}")
