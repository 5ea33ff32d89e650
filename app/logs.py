"""Structured logs: JSON for operators, a readable console for the demo.

Library loggers that would print request URLs (httpx puts Elements' `access_token`
query parameter in them) are kept at WARNING. A line written while a span is current
carries its `trace_id` and `span_id`, so an event's logs and its trace find each other.
"""

from __future__ import annotations

import logging
import sys
from typing import Literal

import structlog
from opentelemetry import trace
from opentelemetry.trace import format_span_id, format_trace_id

QUIET_LOGGERS = ("httpx", "httpcore", "aiokafka", "faststream", "uvicorn.access")


def add_trace_context(
    logger: object, method_name: str, event_dict: structlog.typing.EventDict
) -> structlog.typing.EventDict:
    """structlog processor: the current span's trace and span ids, when there is one."""
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        event_dict.setdefault("trace_id", format_trace_id(context.trace_id))
        event_dict.setdefault("span_id", format_span_id(context.span_id))
    return event_dict


def configure_logging(fmt: Literal["json", "console"], level: str = "INFO") -> None:
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        add_trace_context,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                renderer,
            ],
            foreign_pre_chain=shared,
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def configure_command_logging(fmt: Literal["json", "console"]) -> None:
    """A one-shot command answers on stdout and, when it fails, in one line on stderr: only
    CRITICAL lines are logged (aiokafka logs each refused connection as an error)."""
    configure_logging(fmt, "CRITICAL")
    for handler in logging.getLogger().handlers:
        handler.setLevel(logging.CRITICAL)
