"""One module per ``dpg`` command group."""

from __future__ import annotations

import typer


def group(help_text: str) -> typer.Typer:
    """A command group styled like the root app."""
    return typer.Typer(
        help=help_text,
        no_args_is_help=True,
        rich_markup_mode="markdown",
        pretty_exceptions_enable=False,
        context_settings={"help_option_names": ["-h", "--help"]},
    )


JSON_HELP = "Write the result as JSON on stdout (messages go to stderr)."
