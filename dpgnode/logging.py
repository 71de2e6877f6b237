"""Structured logs: one JSON object per line (or readable lines for people), via structlog.

Log records carry the bound context: ``request_id`` (the API binds it per request, from the
caller's ``X-Request-Id`` when sane), the ids a route's path names (``invoice_id``,
``store_id``...), and whatever code binds with :func:`log_context` (``txid``, ``payout_id``)
for the lines it writes inside the block; with tracing on, also ``trace_id`` and
``span_id``. Records from the standard ``logging`` module (granian, SQLAlchemy, httpx,
Litestar) go through the same chain and renderer.

Secrets: the last step before rendering, after exceptions became text, masks secrets by
field name and by shape (:mod:`dpgnode.redaction`), so a password in a database URL inside
an exception message is masked too. Tracebacks never include local variables (they would
show a function's secret arguments).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, TextIO

import structlog
from structlog.tracebacks import ExceptionDictTransformer
from structlog.typing import EventDict, Processor, WrappedLogger

from dpgnode.redaction import MASK, redact_fields

if TYPE_CHECKING:
    from dpgnode.settings import LogSettings

try:
    from opentelemetry import trace as otel_trace

    OTEL_INSTALLED = True
except ImportError:  # the otel extra is optional
    OTEL_INSTALLED = False

__all__ = ["MASK", "configure_logging", "log_context", "redact_secrets"]

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
           "error": logging.ERROR}


class _NodeHandler(logging.StreamHandler[TextIO]):
    """The handler this module installs (so a second call can find and replace it)."""


def redact_secrets(logger: WrappedLogger, method: str, event_dict: EventDict) -> EventDict:
    """Mask secrets in every field: by name, nested too, and by shape in every text."""
    return redact_fields(event_dict)


def add_trace_ids(logger: WrappedLogger, method: str, event_dict: EventDict) -> EventDict:
    """``trace_id`` and ``span_id`` of the current span, when one is being recorded."""
    if OTEL_INSTALLED:
        context = otel_trace.get_current_span().get_span_context()
        if context.is_valid:
            event_dict.setdefault("trace_id", format(context.trace_id, "032x"))
            event_dict.setdefault("span_id", format(context.span_id, "016x"))
    return event_dict


@contextmanager
def log_context(**ids: str | None) -> Iterator[None]:
    """Bind ids (``txid``, ``invoice_id``, ``payout_id``...) to the lines logged in the block.

    ``None`` values are left out. The binding follows the thread or task (contextvars), not
    work handed to another thread (the ledger writer's thread has its own context).
    """
    with structlog.contextvars.bound_contextvars(
        **{name: value for name, value in ids.items() if value is not None}
    ):
        yield


def configure_logging(settings: LogSettings, stream: TextIO | None = None) -> None:
    """Install structlog (and route standard logging through it) as ``settings`` says."""
    level = _LEVELS[settings.level]
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        add_trace_ids,
    ]
    json = settings.format == "json"
    renderer: Processor = (
        structlog.processors.JSONRenderer() if json
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    exceptions: Processor = (
        structlog.processors.ExceptionRenderer(ExceptionDictTransformer(show_locals=False))
        if json
        else structlog.processors.format_exc_info
    )
    structlog.configure(
        processors=[
            *shared,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    # Exceptions become text first (structlog's and the standard library's records alike),
    # then redaction sees that text: a secret in an exception message is masked too.
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            exceptions,
            redact_secrets,
            renderer,
        ],
    )
    handler = _NodeHandler(stream or sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for existing in list(root.handlers):
        if isinstance(existing, _NodeHandler):  # configuring twice replaces, never doubles
            root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
