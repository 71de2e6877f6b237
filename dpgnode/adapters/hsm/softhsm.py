"""A SoftHSM2 token for development: its own configuration, token directory and PINs.

Layout under a directory (``DATA_DIR/hsm`` for ``dpg hsm init``), every part mode 0700/0600:

    softhsm2.conf   directories.tokendir = <dir>/tokens (so the system's tokens are untouched)
    tokens/         SoftHSM2's object store
    user.pin        the generated user PIN (what the signer logs in with)
    so.pin          the generated security-officer PIN (to re-initialise or unlock the token)

The token is created by ``softhsm2-util --init-token``, which is given its PINs through a
pseudo-terminal, as a person would type them: a PIN on a command line is readable by every
user of the machine through ``/proc/<pid>/cmdline`` for as long as the process runs.
"""

from __future__ import annotations

import os
import pty
import re
import secrets
import select
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from dpgnode.errors import ConfigError, ConflictError, UnavailableError, ValidationError

SOFTHSM2_UTIL = "softhsm2-util"
CONF_NAME = "softhsm2.conf"
TOKENS_DIR = "tokens"
USER_PIN_FILE = "user.pin"
SO_PIN_FILE = "so.pin"
_PROMPT = b"PIN:"
_TIMEOUT_S = 30.0
_LABEL = re.compile(r"^[\x21-\x7e][\x20-\x7e]{0,31}$")


@dataclass(frozen=True, slots=True)
class DevToken:
    """Where a development token's files are (no PIN values in here)."""

    directory: Path
    conf: Path
    tokens: Path
    user_pin_file: Path
    so_pin_file: Path
    label: str


def dev_token_paths(directory: Path, label: str) -> DevToken:
    """The layout under ``directory`` (nothing is created)."""
    return DevToken(
        directory=directory,
        conf=directory / CONF_NAME,
        tokens=directory / TOKENS_DIR,
        user_pin_file=directory / USER_PIN_FILE,
        so_pin_file=directory / SO_PIN_FILE,
        label=label,
    )


def generate_pin() -> str:
    """A 24-character random PIN (143 bits), in characters every module accepts."""
    return secrets.token_urlsafe(18)


def write_conf(token: DevToken) -> None:
    """Create the directories and the configuration that confines SoftHSM2 to them."""
    token.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    token.tokens.mkdir(mode=0o700, exist_ok=True)
    _write_private(
        token.conf,
        "# SoftHSM2 configuration of a DPG development token, written by `dpg hsm init`.\n"
        f"directories.tokendir = {token.tokens}\n"
        "objectstore.backend = file\n"
        "log.level = ERROR\n"
        "slots.removable = false\n",
    )


def create_token(token: DevToken, user_pin: str, *, so_pin: str | None = None) -> None:
    """Initialise a new token labelled ``token.label`` and write both PIN files (0600).

    Raises:
        ConflictError: The PIN files exist already (a token was made here before).
        ValidationError: The label is not 1..32 printable ASCII characters.
        ConfigError: ``softhsm2-util`` is not installed.
        UnavailableError: ``softhsm2-util`` failed.
    """
    if not _LABEL.fullmatch(token.label):
        raise ValidationError("a token label is 1..32 printable ASCII characters", field="label")
    if token.user_pin_file.exists() or token.so_pin_file.exists():
        raise ConflictError(f"a development token exists already in {token.directory}")
    util = shutil.which(SOFTHSM2_UTIL)
    if util is None:
        raise ConfigError(f"{SOFTHSM2_UTIL} not found: apt-get install softhsm2 opensc")
    write_conf(token)
    so_secret = so_pin or generate_pin()
    env = {**os.environ, "SOFTHSM2_CONF": str(token.conf)}
    argv = [util, "--init-token", "--free", "--label", token.label]
    transcript = _run_with_pty(argv, [so_secret, so_secret, user_pin, user_pin], env)
    if b"has been initialized" not in transcript:
        # softhsm2-util prints its prompt before it turns echo off, so a PIN written in that
        # instant is echoed into the transcript: never let one reach the message.
        for secret in (so_secret, user_pin):
            transcript = transcript.replace(secret.encode(), b"***")
        last = transcript.decode(errors="replace").strip().splitlines()[-1:]
        raise UnavailableError(f"{SOFTHSM2_UTIL} could not create the token: {last}")
    _write_private(token.so_pin_file, so_secret + "\n")
    _write_private(token.user_pin_file, user_pin + "\n")


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    path.chmod(0o600)  # O_CREAT's mode does not apply to a file that existed


def _run_with_pty(argv: list[str], answers: list[str], env: dict[str, str]) -> bytes:
    """Run ``argv`` on a pseudo-terminal, answering each ``...PIN:`` prompt in turn.

    Returns what the program wrote (the PINs are not echoed: it reads them with echo off).
    """
    master, slave = pty.openpty()
    try:
        process = subprocess.Popen(  # noqa: S603 - fixed argv (softhsm2-util), no shell
            argv,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=env,
            start_new_session=True,
            close_fds=True,
        )
    finally:
        os.close(slave)
    transcript = b""
    answered_up_to = 0  # prompts before this offset have been answered
    pending = list(answers)
    deadline = time.monotonic() + _TIMEOUT_S
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if not ready:
                if process.poll() is not None:
                    break
                continue
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: the program closed the terminal
                break
            if not chunk:
                break
            transcript += chunk
            if pending and _PROMPT in transcript[answered_up_to:]:
                os.write(master, pending.pop(0).encode() + b"\n")
                answered_up_to = len(transcript)
        process.wait(timeout=max(0.1, deadline - time.monotonic()))
    except subprocess.TimeoutExpired as exc:
        process.kill()
        process.wait()
        raise UnavailableError(f"{SOFTHSM2_UTIL} did not finish in {_TIMEOUT_S:.0f} s") from exc
    finally:
        os.close(master)
    return transcript
