"""JSON logs, one object a line, for structlog and stdlib `logging` alike.

Every line has `time`, `level`, `logger`, `event`, the correlation id and the
trace id when there are ones, and fields bound for the block (post_id, ...).
Secrets are masked last, after exceptions are formatted, so tracebacks are
masked too.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping
from typing import Any, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from post_management.observability import tracing

REDACTED = "[REDACTED]"
# Keys whose values are never logged, whatever they hold.
_SECRET_KEY = re.compile(
    r"token|secret|password|passwd|authorization|api[_-]?key|credential|cookie|private[_-]?key",
    re.IGNORECASE,
)
# Values that are secrets wherever they appear.
_SECRET_VALUES = (
    # JWTs: three base64url parts, the first a JSON header ("{" encodes as "eyJ").
    re.compile(r"eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"),
    # Fernet tokens: version byte 0x80 and a timestamp encode as "gAAAAA".
    re.compile(r"gAAAAA[A-Za-z0-9_-]{20,}={0,2}"),
    # Bearer or Basic credentials in a header value.
    re.compile(r"(?<=Bearer )[^\s\"',]+|(?<=Basic )[^\s\"',]+", re.IGNORECASE),
    # OAuth 1.0a parameters in an Authorization header or a query string.
    re.compile(r"(?<=oauth_token=)[^&\s\"',]+|(?<=oauth_signature=)[^&\s\"',]+"),
    # Passwords in URLs (postgresql://user:password@host, redis://:password@host).
    re.compile(r"(?<=://)[^/\s:@]*:[^/\s@]+(?=@)"),
)
_MAX_DEPTH = 6


def mask_text(text: str) -> str:
    for pattern in _SECRET_VALUES:
        text = pattern.sub(REDACTED, text)
    return text


def _mask(value: Any, depth: int = 0) -> Any:
    if depth > _MAX_DEPTH:
        return value
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, Mapping):
        return {
            key: REDACTED if _secret_key(key) else _mask(item, depth + 1)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [_mask(item, depth + 1) for item in value]
    return value


def _secret_key(key: object) -> bool:
    return isinstance(key, str) and bool(_SECRET_KEY.search(key))


def redact(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """Mask values of secret-named keys, and JWTs, Fernet tokens and the like anywhere."""
    for key, value in list(event_dict.items()):
        if _secret_key(key):
            event_dict[key] = REDACTED
        elif isinstance(value, str | Mapping | list | tuple):
            event_dict[key] = _mask(value)
        elif value is not None and not isinstance(value, int | float | bool):
            # Objects are rendered by repr later; mask that text now.
            event_dict[key] = mask_text(str(value))
    return event_dict


def add_trace_ids(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    trace_id, span_id = tracing.current_ids()
    if trace_id:
        event_dict.setdefault("trace_id", trace_id)
        event_dict.setdefault("span_id", span_id)
    return event_dict


def _drop_color_message(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    event_dict.pop("color_message", None)
    return event_dict


def _shared_processors() -> list[Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="time"),
        add_trace_ids,
    ]


def _final_processors() -> list[Processor]:
    return [
        structlog.stdlib.ProcessorFormatter.remove_processors_meta,
        structlog.processors.format_exc_info,
        _drop_color_message,
        redact,
        structlog.processors.JSONRenderer(default=str),
    ]


def configure(level: str | int = "INFO", stream: TextIO | None = None) -> logging.Handler:
    """Route structlog and stdlib logging through one JSON formatter on `stream`."""
    structlog.configure(
        processors=[
            *_shared_processors(),
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(json_formatter())
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_pm_json", False)]:
        root.removeHandler(old)
    handler._pm_json = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    return handler


def json_formatter() -> structlog.stdlib.ProcessorFormatter:
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*_shared_processors(), structlog.stdlib.ExtraAdder()],
        processors=_final_processors(),
    )


def get_logger(name: str) -> Any:
    return structlog.stdlib.get_logger(name)
