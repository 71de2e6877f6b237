"""Structured logs: one JSON object per line (or readable lines for people), via structlog.

Log records carry the bound context (``request_id``, ``key_id``, ...). A redaction step
masks any field whose name says it holds a secret (authorization headers, API keys,
passwords, seeds, webhook secrets) before rendering, as a last line of defence: code should
not pass secrets to a logger in the first place. Records from the standard ``logging``
module (granian, SQLAlchemy, Litestar) go through the same renderer.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from dpgnode.settings import LogSettings

_SECRET_WORDS = (
    "authorization", "api_key", "apikey", "secret", "password", "passphrase", "token",
    "seed", "xprv", "cookie", "private",
)
_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
           "error": logging.ERROR}
MASK = "***"


class _NodeHandler(logging.StreamHandler[TextIO]):
    """The handler this module installs (so a second call can find and replace it)."""


def _is_secret(name: str) -> bool:
    lowered = name.lower()
    return any(word in lowered for word in _SECRET_WORDS)


def _redact(value: Any) -> Any:
    if isinstance(value, MutableMapping):
        return {k: MASK if _is_secret(str(k)) else _redact(v) for k, v in value.items()}
    return value


def redact_secrets(logger: WrappedLogger, method: str, event_dict: EventDict) -> EventDict:
    """Mask every field (nested too) whose name looks like it holds a secret."""
    for name in list(event_dict):
        if _is_secret(name):
            event_dict[name] = MASK
        else:
            event_dict[name] = _redact(event_dict[name])
    return event_dict


def configure_logging(settings: LogSettings, stream: TextIO | None = None) -> None:
    """Install structlog (and route standard logging through it) as ``settings`` says."""
    level = _LEVELS[settings.level]
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        redact_secrets,
    ]
    renderer: Processor = (
        structlog.processors.JSONRenderer()
        if settings.format == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            *shared,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.processors.StackInfoRenderer(),
            structlog.processors.dict_tracebacks
            if settings.format == "json"
            else structlog.processors.format_exc_info,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    )
    handler = _NodeHandler(stream or sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for existing in list(root.handlers):
        if isinstance(existing, _NodeHandler):  # configuring twice replaces, never doubles
            root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
