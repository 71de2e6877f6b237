"""``dpg backup``: encrypted backups: create, verify, restore, list, prune, the HSM key.

The key is never an argument. A passphrase comes from ``backup.passphrase_file`` (0600) or
the variable ``backup.passphrase_env`` (default ``DPG_BACKUP_PASSPHRASE``), else from a
hidden prompt when a person is at the terminal (or with ``--prompt``). An HSM-keyed backup
is written with the key's public half only; opening one goes through :mod:`dpgnode.signer`.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from dpgnode.domain.backup import BackupManifest, KeySource
from dpgnode.errors import ConfigError
from dpgnode.maintenance.backups import create_backup
from dpgnode.maintenance.copies import CopyCheck, backup_directory
from dpgnode.maintenance.keys import (
    KeyOpener,
    configured_passphrase,
    passphrase_key,
    sealer_from_settings,
)
from dpgnode.maintenance.restore import read_manifest, restore_backup, verify_backup
from dpgnode.maintenance.schedule import listed_backups, prune_backups

from .. import output
from ..errors import EXIT_FAILED
from ..progress import Bars
from ..state import settings, state
from . import JSON_HELP, group

app = group("Create, check and restore encrypted backups of the node's database.")
key_app = group("The HSM key backups can be encrypted to (backup.key_source = \"hsm\").")
app.add_typer(key_app, name="key")

_PROMPT_HELP = "Ask for the passphrase (hidden) even when one is configured."


def _ask(confirm: bool) -> str:
    text: str = typer.prompt(
        "Backup passphrase", hide_input=True, confirmation_prompt=confirm, err=True
    )
    return text


def _passphrase(ctx: typer.Context, prompt: bool, *, confirm: bool) -> str:
    if not prompt:
        configured = configured_passphrase(settings(ctx))
        if configured is not None:
            return configured
        if not sys.stdin.isatty():
            raise ConfigError(
                "no backup passphrase: set backup.passphrase_file or DPG_BACKUP_PASSPHRASE, "
                "or run at a terminal to be asked", details={"field": "backup.passphrase_file"},
            )
    return _ask(confirm)


@contextmanager
def _opener(ctx: typer.Context, manifest: BackupManifest, prompt: bool) -> Iterator[KeyOpener]:
    if manifest.key_source is KeySource.HSM:
        # Imported here: only commands that need the HSM load python-pkcs11 (R22).
        from dpgnode.signer import backup_key_opener

        opener, signer = backup_key_opener(settings(ctx))
        try:
            yield opener
        finally:
            signer.close()
        return
    yield passphrase_key(_passphrase(ctx, prompt, confirm=False))


def _check_json(check: CopyCheck | None) -> dict[str, Any] | None:
    if check is None:
        return None
    return {
        "ok": check.ok, "problems": list(check.problems), "notes": list(check.notes),
        "entries": None if check.ledger is None else check.ledger.entries,
    }


def _check_lines(check: CopyCheck | None) -> None:
    if check is None:
        output.result("checks skipped (--no-verify)")
        return
    for note in check.notes:
        output.result(f"  {note}")
    if check.ledger is not None and check.ledger.ok:
        output.result(f"  ledger: {check.ledger.entries} entries verify")
    for problem in check.problems:
        output.result(f"  problem: {problem}")


def _manifest_lines(manifest: BackupManifest) -> None:
    output.result(f"  created {manifest.created_at.isoformat()} by dpg {manifest.node_version}")
    output.result(f"  {manifest.database} database, schema {manifest.schema_revision}, "
                  f"ledger seq {manifest.ledger_seq} (head {manifest.ledger_head[:16]}…)")
    output.result(f"  key: {manifest.key_source}")


@app.command("create")
def create(
    ctx: typer.Context,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Write the backup to this file instead of "
                     "backup.directory (never over an existing file).", dir_okay=False),
    ] = None,
    verify: Annotated[
        bool | None,
        typer.Option("--verify/--no-verify", help="Check the copy (integrity, ledger) before "
                     "encrypting it. Default: backup.verify."),
    ] = None,
    prompt: Annotated[bool, typer.Option("--prompt", help=_PROMPT_HELP)] = False,
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """Back up the database (and dpg.toml) into one encrypted file, while the node runs.

    SQLite is copied with its online backup API inside one read transaction (a consistent
    snapshot; the node keeps writing), PostgreSQL with pg_dump from an exported snapshot.
    The copy is checked, encrypted (AES-256-GCM under backup.key_source's key), written
    as NAME.partial, read back and only then given its final name.

    Examples:
    ```
    DPG_BACKUP_PASSPHRASE=... dpg backup create
    dpg backup create --out /mnt/usb/dpg.dpgbak --json
    ```
    """
    current = settings(ctx)
    secret = None
    if current.backup.key_source == str(KeySource.PASSPHRASE):
        secret = _passphrase(ctx, prompt, confirm=True)
    sealer = sealer_from_settings(current, secret)
    with Bars() as bars:
        made = create_backup(current, sealer, out=out,
                             config_file=state(ctx).config_path(), verify=verify, progress=bars)
    if as_json:
        output.emit_json({"path": str(made.path), "size": made.size,
                          "manifest": made.manifest.as_dict(), "check": _check_json(made.check)})
        return
    output.result(f"backup written: {made.path} ({made.size} bytes)")
    _manifest_lines(made.manifest)
    _check_lines(made.check)


@app.command("verify")
def verify_command(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="The backup file.", exists=True, dir_okay=False)],
    scratch_database_url: Annotated[
        str | None,
        typer.Option("--scratch-database-url", help="PostgreSQL backups: an empty database "
                     "to restore the dump into, so the ledger can be verified."),
    ] = None,
    work_dir: Annotated[
        Path | None,
        typer.Option("--work-dir", help="Where to decrypt the copy (default: the system's "
                     "temporary directory; needs room for the database).", file_okay=False),
    ] = None,
    prompt: Annotated[bool, typer.Option("--prompt", help=_PROMPT_HELP)] = False,
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """Decrypt a backup into a temporary directory and check it; print its manifest.

    Checks: every chunk authenticates (nothing altered, reordered or cut off), the copy's
    integrity (PRAGMA integrity_check, or pg_restore --list), ledger verification of the
    copy, and that it ends at the ledger head its manifest names. Exit status 1 on any
    problem.

    Examples:
    ```
    dpg backup verify ~/.local/share/dpg/backups/dpg-20250102T030405.678Z.dpgbak
    dpg backup verify backup.dpgbak --json
    ```
    """
    manifest = read_manifest(file)
    with _opener(ctx, manifest, prompt) as opener, Bars() as bars:
        checked = verify_backup(file, opener, work_dir=work_dir,
                                scratch_database_url=scratch_database_url, progress=bars)
    if as_json:
        output.emit_json({"path": str(file), "ok": checked.check.ok,
                          "manifest": checked.manifest.as_dict(),
                          "config": checked.has_config, "check": _check_json(checked.check)})
    else:
        output.result(f"{file}: {'ok' if checked.check.ok else 'PROBLEMS'}")
        _manifest_lines(checked.manifest)
        _check_lines(checked.check)
    if not checked.check.ok:
        output.error(f"the backup fails its checks: {len(checked.check.problems)} problem(s)")
        raise typer.Exit(EXIT_FAILED)


@app.command("restore")
def restore(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="The backup file.", exists=True, dir_okay=False)],
    data_dir: Annotated[
        Path | None,
        typer.Option("--data-dir", help="SQLite backups: a new (or empty) data directory to "
                     "restore into.", file_okay=False),
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option("--database-url", help="PostgreSQL backups: URL of an empty database "
                     "to restore into (prefer no password in it: PGPASSWORD works too)."),
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    prompt: Annotated[bool, typer.Option("--prompt", help=_PROMPT_HELP)] = False,
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """Restore a backup into a new data directory, or an empty PostgreSQL database.

    Refuses a non-empty directory or database (a restore never merges or overwrites). The
    files take their final names only after the whole backup authenticated and the copy
    passed the checks of `dpg backup verify`. Start the restored node with
    `dpg --data-dir DIR node start`.

    Examples:
    ```
    dpg backup restore backup.dpgbak --data-dir /srv/dpg-restored
    dpg backup restore backup.dpgbak --database-url postgresql+psycopg://dpg@db/dpg_new --yes
    ```
    """
    manifest = read_manifest(file)
    target = data_dir or database_url
    if not yes:
        typer.confirm(
            f"Restore the backup of {manifest.created_at.isoformat()} (ledger seq "
            f"{manifest.ledger_seq}) into {target}?", abort=True, err=True,
        )
    with _opener(ctx, manifest, prompt) as opener, Bars() as bars:
        restored = restore_backup(file, opener, data_dir=data_dir, database_url=database_url,
                                  progress=bars)
    if as_json:
        output.emit_json({"target": restored.target, "manifest": restored.manifest.as_dict(),
                          "configRestored": restored.config_restored,
                          "check": _check_json(restored.check)})
        return
    output.result(f"restored into {restored.target}")
    _manifest_lines(restored.manifest)
    _check_lines(restored.check)


@app.command("list")
def list_command(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """List the backups in backup.directory, oldest first.

    The manifest columns come from each file's header, read without the key (they are
    authenticated only when the backup is opened: `dpg backup verify`).

    Examples:
    ```
    dpg backup list
    dpg backup list --json
    ```
    """
    current = settings(ctx)
    listed = listed_backups(current)
    if as_json:
        output.emit_json({
            "directory": str(backup_directory(current)),
            "backups": [
                {"file": item.file.path.name, "path": str(item.file.path),
                 "createdAt": item.file.created_at.isoformat(), "size": item.file.size,
                 "manifest": None if item.manifest is None else item.manifest.as_dict(),
                 "problem": item.problem}
                for item in listed
            ],
        })
        return
    grid = output.table("File", "Created", "Size", "Database", "Ledger seq", "Key",
                        title=str(backup_directory(current)))
    for item in listed:
        m = item.manifest
        output.add_row(grid, item.file.path.name, item.file.created_at.isoformat(),
                       str(item.file.size), str(m.database) if m else item.problem or "?",
                       str(m.ledger_seq) if m else "", str(m.key_source) if m else "")
    output.print_table(grid)


@app.command("prune")
def prune(
    ctx: typer.Context,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only list what would go.")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """Delete the backups the retention policy no longer keeps (the node does it too).

    Keeps the newest backup of each of the last backup.keep_hourly hours, keep_daily days
    and keep_weekly ISO weeks (UTC) that have one, and always the newest backup.

    Examples:
    ```
    dpg backup prune --dry-run
    dpg backup prune --yes --json
    ```
    """
    current = settings(ctx)
    doomed = prune_backups(current, dry_run=True)
    if doomed and not dry_run and not yes:
        typer.confirm(f"Delete {len(doomed)} backup(s) the retention policy lets go?",
                      abort=True, err=True)
    if not dry_run:
        doomed = prune_backups(current)
    if as_json:
        output.emit_json({"dryRun": dry_run, "pruned": [str(b.path) for b in doomed]})
        return
    verb = "would delete" if dry_run else "deleted"
    for backup in doomed:
        output.result(f"{verb} {backup.path}")
    output.result(f"{verb} {len(doomed)} backup(s)")


@key_app.command("create")
def key_create(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """Create the HSM key pair backups are encrypted to, and write its public half.

    The private half is generated inside the HSM (P-256, sensitive, non-extractable, usable
    only to derive) under backup.hsm_key_label; its public half goes to
    backup.hsm_public_key (default DATA_DIR/backup-key.pem), which is all the node needs to
    encrypt. Restores need the HSM. Idempotent: re-running rewrites the public key file from
    the token. Then set backup.key_source = "hsm".

    Examples:
    ```
    dpg backup key create
    dpg backup key create --json
    ```
    """
    from dpgnode.signer import ensure_backup_key  # only this command loads the HSM code

    setup = ensure_backup_key(settings(ctx))
    if as_json:
        output.emit_json({"created": setup.created, "label": setup.label,
                          "publicKeyFile": str(setup.public_key_file),
                          "fingerprint": setup.fingerprint})
        return
    made = "created" if setup.created else "found"
    output.result(f"{made} backup key '{setup.label}' in the HSM (fingerprint "
                  f"{setup.fingerprint})")
    output.result(f"public key written to {setup.public_key_file}")
