"""The one place that turns errors into exit codes and messages.

=====  =========================================================================
code   meaning
=====  =========================================================================
0      done
1      refused or failed: not found, conflict, insufficient funds, policy, permission,
       authentication, invalid business input, a failed check (``ledger verify``)
2      usage: unknown command or option, an argument that cannot be parsed
3      configuration: invalid settings, database missing or not migrated
4      unavailable: transient, try again later
70     internal: an invariant failed or an unexpected error (a bug: please report it)
=====  =========================================================================

A person sees one line on stderr (``error: ...``); ``--debug`` adds the traceback.
"""

from __future__ import annotations

import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import typer
from typer.core import TyperGroup

from dpgnode.errors import (
    ConfigError,
    DpgError,
    IntegrityError,
    NotFoundError,
    RateLimitedError,
    UnavailableError,
    ValidationError,
)

from . import output

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_CONFIG = 3
EXIT_UNAVAILABLE = 4
EXIT_INTERNAL = 70


def exit_code_for(exc: BaseException) -> int:
    """The exit status a command ends with when ``exc`` escapes it."""
    if isinstance(exc, ConfigError):
        return EXIT_CONFIG
    if isinstance(exc, UnavailableError | RateLimitedError):
        return EXIT_UNAVAILABLE
    if isinstance(exc, IntegrityError):
        return EXIT_INTERNAL
    if isinstance(exc, DpgError):
        return EXIT_FAILED
    return EXIT_INTERNAL


def describe(exc: BaseException) -> str:
    """The message a person reads for ``exc``."""
    if isinstance(exc, IntegrityError):
        return f"integrity violation: {exc.message} (stop writing and run `dpg ledger verify`)"
    if isinstance(exc, UnavailableError | RateLimitedError):
        return f"{exc.message} (try again in {exc.retry_after} s)"
    if isinstance(exc, DpgError):
        return exc.message
    first_line = (str(exc).strip().splitlines() or [""])[0][:300]
    detail = f": {first_line}" if first_line else ""
    return f"internal error: {type(exc).__name__}{detail} (run with --debug for the traceback)"


class DpgGroup(TyperGroup):
    """Root command group: every command runs inside its error handler."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except (typer.TyperException, typer.Exit, typer.Abort):
            raise  # usage errors (exit 2), explicit exits, declined prompts: Typer reports them
        except Exception as exc:
            if _debug(ctx):
                typer.echo("".join(traceback.format_exception(exc)), err=True)
            output.error(describe(exc))
            raise typer.Exit(exit_code_for(exc)) from exc


def _debug(ctx: Any) -> bool:
    return bool(getattr(ctx.obj, "debug", False))


@contextmanager
def usage_errors(param_hint: str) -> Iterator[None]:
    """Report a command-line argument the domain refuses as a usage error (exit 2)."""
    try:
        yield
    except (ValidationError, NotFoundError) as exc:
        raise typer.BadParameter(exc.message, param_hint=param_hint) from exc
