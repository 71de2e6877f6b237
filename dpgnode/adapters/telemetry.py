"""OpenTelemetry tracing: a tracer provider that exports spans to a collector over OTLP/HTTP.

Off unless ``[telemetry] otlp_endpoint`` is set, and only then is OpenTelemetry imported (it
is the optional ``otel`` extra). The provider is the node's own, never installed as the
process-wide default, so two nodes in one process (tests) keep their spans apart; the API
hands it to Litestar's OpenTelemetry plugin. Spans leave in batches from a background thread;
:meth:`Tracing.shutdown` (``Node.close``) flushes what is still queued.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dpgnode import __version__
from dpgnode.errors import ConfigError
from dpgnode.settings import TelemetrySettings

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter

INSTALL_HINT = "install the otel extra: pip install 'dpgnode[otel]'"


class Tracing:
    """The node's tracer provider.

    A plain class, not a dataclass: the API's dependency injection reads the type hints of
    the ``Node`` dataclass's fields, and ``TracerProvider`` is not importable without the
    ``otel`` extra.
    """

    __slots__ = ("provider",)

    def __init__(self, provider: TracerProvider) -> None:
        self.provider = provider

    def shutdown(self) -> None:
        self.provider.shutdown()


def build_tracing(
    settings: TelemetrySettings, *, exporter: SpanExporter | None = None
) -> Tracing | None:
    """Tracing as ``settings`` say (``None``: off); ``exporter`` replaces OTLP (tests).

    Raises:
        ConfigError: an endpoint is set but the ``otel`` extra is missing, or
            ``telemetry.otlp_headers`` is malformed.
    """
    if not settings.otlp_endpoint and exporter is None:
        return None
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
        from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
    except ImportError as exc:
        raise ConfigError(
            f"telemetry.otlp_endpoint is set but OpenTelemetry is not installed: {INSTALL_HINT}"
        ) from exc
    provider = TracerProvider(
        resource=Resource.create(
            {"service.name": settings.service_name, "service.version": __version__}
        ),
        sampler=ParentBased(TraceIdRatioBased(settings.sample_ratio)),
    )
    if exporter is None:
        headers = _headers(settings)
        provider.add_span_processor(
            BatchSpanProcessor(OTLPSpanExporter(endpoint=settings.otlp_endpoint, headers=headers))
        )
    else:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    return Tracing(provider)


def _headers(settings: TelemetrySettings) -> dict[str, str]:
    if settings.otlp_headers is None:
        return {}
    headers: dict[str, str] = {}
    for pair in settings.otlp_headers.get_secret_value().split(","):
        if not pair.strip():
            continue
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            # The value may be a credential: the message names the field, never the text.
            raise ConfigError("telemetry.otlp_headers: use name=value pairs separated by commas")
        headers[name.strip()] = value.strip()
    return headers
