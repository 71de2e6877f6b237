"""One handler maps error categories to exit codes and prints one line, no traceback."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import Result

from dpgnode.cli.errors import exit_code_for
from dpgnode.cli.state import CliState, ServeSpec
from dpgnode.errors import (
    AuthenticationError,
    ConfigError,
    ConflictError,
    DpgError,
    IdempotencyKeyReusedError,
    InsufficientFundsError,
    IntegrityError,
    NotFoundError,
    PermissionDeniedError,
    PolicyDeniedError,
    RateLimitedError,
    UnavailableError,
    ValidationError,
)

Invoke = Callable[..., Result]


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (ValidationError("bad", field="x"), 1),
        (NotFoundError("missing"), 1),
        (AuthenticationError("who"), 1),
        (PermissionDeniedError("no"), 1),
        (ConflictError("state"), 1),
        (IdempotencyKeyReusedError("reused"), 1),
        (InsufficientFundsError("poor"), 1),
        (PolicyDeniedError("limit"), 1),
        (DpgError("other"), 1),
        (ConfigError("config"), 3),
        (UnavailableError("later"), 4),
        (RateLimitedError("slow down"), 4),
        (IntegrityError("broken"), 70),
        (RuntimeError("bug"), 70),
    ],
)
def test_exit_code_follows_category_when_error_escapes(error: Exception, code: int) -> None:
    assert exit_code_for(error) == code


def _raising(error: Exception) -> Callable[[ServeSpec], None]:
    def launcher(spec: ServeSpec) -> None:
        raise error

    return launcher


class TestHandler:
    @pytest.fixture(autouse=True)
    def _initialised(self, initialised: Invoke) -> None:
        """Every case runs a command that gets as far as the (failing) launcher."""

    def test_unexpected_error_exits_70_without_traceback_when_not_debugging(
        self, dpg: Invoke
    ) -> None:
        result = dpg("node", "start", obj=CliState(launcher=_raising(RuntimeError("boom"))))

        assert result.exit_code == 70
        assert result.stderr.strip() == (
            "error: internal error: RuntimeError: boom (run with --debug for the traceback)"
        )
        assert "Traceback" not in result.output

    def test_unexpected_error_shows_traceback_when_debugging(self, dpg: Invoke) -> None:
        state = CliState(launcher=_raising(RuntimeError("boom")))

        result = dpg("--debug", "node", "start", obj=state)

        assert result.exit_code == 70
        assert "Traceback" in result.stderr

    def test_unavailable_error_exits_4_with_retry_hint_when_raised(self, dpg: Invoke) -> None:
        state = CliState(launcher=_raising(UnavailableError("database busy", retry_after=3)))

        result = dpg("node", "start", obj=state)

        assert result.exit_code == 4
        assert "database busy (try again in 3 s)" in result.stderr

    def test_integrity_error_exits_70_when_raised(self, dpg: Invoke) -> None:
        result = dpg("node", "start", obj=CliState(launcher=_raising(IntegrityError("Σ != 0"))))

        assert result.exit_code == 70
        assert "integrity violation: Σ != 0" in result.stderr


def test_usage_error_exits_2_when_command_is_unknown(dpg: Invoke) -> None:
    result = dpg("frobnicate")

    assert result.exit_code == 2


def test_version_prints_when_asked(dpg: Invoke) -> None:
    result = dpg("--version")

    assert result.exit_code == 0
    assert result.stdout.startswith("dpg ")


def test_data_dir_flag_overrides_environment_when_both_given(
    dpg: Invoke, tmp_path: Path
) -> None:
    flagged = tmp_path / "flagged"

    result = dpg("--data-dir", str(flagged), "config", "show", "--json")

    assert result.exit_code == 0, result.output
    assert '"data_dir": "' + str(flagged.resolve()) + '"' in result.stdout
