"""``dpg doctor``: check the node's set-up and say what to fix."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

import typer
from rich.text import Text

from dpgnode.domain.doctor import Finding, Status, worst
from dpgnode.maintenance.doctor import DoctorHooks, run_doctor
from dpgnode.node import chain_sync_findings
from dpgnode.settings import Settings

from .. import output
from ..errors import EXIT_FAILED
from ..state import settings
from . import JSON_HELP

_STYLE = {Status.OK: "green", Status.WARN: "yellow", Status.FAIL: "red", Status.SKIP: "dim"}


def hsm_probe(current: Settings) -> Sequence[Finding]:
    """The HSM through the signer's wiring: module present, token reachable, PIN works."""
    module = current.hsm.module
    if not module.is_file():
        return [Finding("hsm", Status.SKIP, f"no PKCS#11 module at {module}: this machine "
                        "cannot sign payouts or open HSM-keyed backups",
                        "install the HSM's module (SoftHSM2: apt-get install softhsm2) "
                        "or set hsm.module")]
    # Imported here: only doctor's HSM check loads the HSM code into this process (R22).
    from dpgnode.signer import check_hsm, hsm_configured

    if not hsm_configured(current):
        needed = current.backup.key_source == "hsm"
        return [Finding("hsm", Status.WARN if needed else Status.SKIP,
                        f"no HSM PIN configured (hsm.pin_file, {current.hsm.pin_env}): "
                        "payouts cannot be signed here" + (", HSM-keyed backups not opened"
                                                           if needed else ""),
                        "`dpg hsm init` for SoftHSM2, or set hsm.pin_file for your HSM")]
    health = check_hsm(current)
    where = f"token '{health.token_label}' (PIN from {health.pin_source})"
    if not health.can_sign:
        return [Finding("hsm", Status.FAIL, f"{where} lacks the mechanisms the signer needs",
                        "use a token with EC (secp256k1) keys, ECDSA and AES-GCM")]
    found = [Finding("hsm", Status.OK, f"{where}: logged in, can sign")]
    if not health.kek_present:
        found.append(Finding("hsm", Status.WARN, f"no key-encryption key "
                             f"'{current.hsm.kek_label}': wallet seeds cannot be sealed",
                             "run `dpg hsm init` (SoftHSM2) or create the KEK"))
    if health.backup_key_matches is False:
        found.append(Finding("hsm", Status.FAIL, "the backup public key file is not the "
                             "HSM's backup key: backups may be unrecoverable",
                             "run `dpg backup key create` to rewrite it from the token"))
    return found


def doctor(
    ctx: typer.Context,
    full: Annotated[
        bool,
        typer.Option("--full", help="Run the full integrity check and verify the whole "
                     "ledger (minutes on a large database)."),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """Check configuration, database, chains, HSM, clock, disk and backups; say what to fix.

    Checks: settings load; the database is reachable and intact (PRAGMA quick_check, or
    PostgreSQL's checksum counters); migrations at head; the ledger (the newest 1000
    entries re-hashed; --full verifies everything); each configured chain node answers on
    the right chain; the HSM token and PIN; the clock (against PostgreSQL's, or
    doctor.time_url's Date header); free disk for another backup; backup freshness.
    What cannot be measured is reported as skipped, with why. Exit status 1 when any check
    fails; warnings alone exit 0.

    Examples:
    ```
    dpg doctor
    dpg doctor --full --json
    ```
    """
    hooks = DoctorHooks(hsm=hsm_probe, chain_sync=chain_sync_findings)
    findings = run_doctor(lambda: settings(ctx), hooks, full=full)
    verdict = worst(findings)
    if as_json:
        output.emit_json({"status": str(verdict), "findings": [f.as_dict() for f in findings]})
    else:
        grid = output.table("Check", "Status", "Finding")
        fixes = []
        for finding in findings:
            grid.add_row(Text(finding.check), Text(str(finding.status),
                                                   style=_STYLE[finding.status]),
                         Text(finding.summary))
            if finding.fix and finding.status in (Status.WARN, Status.FAIL):
                fixes.append(f"{finding.check}: {finding.fix}")
        output.print_table(grid)
        for fix in fixes:
            output.result(f"fix  {fix}")
    if verdict is Status.FAIL:
        output.error("doctor found problems (see fix lines)")
        raise typer.Exit(EXIT_FAILED)
