"""callwatch: production logging, monitoring and alerting for Python voice-agent services.

Every public name of ``callwatch.logger``, ``callwatch.monitoring``,
``callwatch.alerting`` and ``callwatch.routes`` is importable from here; they
load on first use, so ``import callwatch`` stays cheap and FastAPI stays
optional. Type checkers see the real names and signatures through the
``TYPE_CHECKING`` imports below, which never run.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from callwatch._runtime import configure, shutdown
from callwatch.config import ConfigError, Settings

if TYPE_CHECKING:  # the names __getattr__ loads, as a type checker should see them
    from callwatch.alerting import (
        SEVERITIES,
        Alert,
        AlertManager,
        AlertmanagerHandler,
        ConsoleHandler,
        EmailHandler,
        PagerDutyHandler,
        SlackHandler,
        WebhookHandler,
        alert_manager,
        alertmanager_alert_handler,
        check_and_alert,
        delivery_stats,
        email_alert_handler,
        pagerduty_alert_handler,
        prometheus_rules,
        send_alert,
        send_test_alert,
        slack_alert_handler,
        webhook_alert_handler,
    )
    from callwatch.logger import (
        Logger,
        LogMethod,
        add_handler,
        add_processor,
        audit_log,
        bind_call,
        clear_context,
        get_call_id,
        get_logger,
        log,
        logger,
        perf_timer,
        prune_logs,
        remove_handler,
        set_call_id,
        uvicorn_log_config,
    )
    from callwatch.monitoring import (
        ProductionMonitor,
        get_health,
        get_liveness,
        get_metrics,
        get_readiness,
        production_monitor,
        prometheus_exposition,
        record_call_end,
        record_call_start,
        record_error,
        record_response_time,
        record_turn,
        record_usage,
    )
    from callwatch.routes import (
        require_token,
        router,
    )

__version__ = "0.1.0"

_FACES = ("callwatch.logger", "callwatch.monitoring", "callwatch.alerting", "callwatch.routes")

# Every name of the four faces, plus the runtime's own: a face's new public name goes here too.
__all__ = [
    "SEVERITIES",
    "Alert",
    "AlertManager",
    "AlertmanagerHandler",
    "ConfigError",
    "ConsoleHandler",
    "EmailHandler",
    "LogMethod",
    "Logger",
    "PagerDutyHandler",
    "ProductionMonitor",
    "Settings",
    "SlackHandler",
    "WebhookHandler",
    "add_handler",
    "add_processor",
    "alert_manager",
    "alertmanager_alert_handler",
    "audit_log",
    "bind_call",
    "check_and_alert",
    "clear_context",
    "configure",
    "delivery_stats",
    "email_alert_handler",
    "get_call_id",
    "get_health",
    "get_liveness",
    "get_logger",
    "get_metrics",
    "get_readiness",
    "log",
    "logger",
    "pagerduty_alert_handler",
    "perf_timer",
    "production_monitor",
    "prometheus_exposition",
    "prometheus_rules",
    "prune_logs",
    "record_call_end",
    "record_call_start",
    "record_error",
    "record_response_time",
    "record_turn",
    "record_usage",
    "remove_handler",
    "require_token",
    "router",
    "send_alert",
    "send_test_alert",
    "set_call_id",
    "shutdown",
    "slack_alert_handler",
    "uvicorn_log_config",
    "webhook_alert_handler",
]


if not TYPE_CHECKING:  # hidden from checkers, so a misspelt name is an error, not Any

    def __getattr__(name: str) -> Any:
        if name.startswith("_"):
            # ``from callwatch import _otel`` asks here before importing the submodule:
            # a private name is never a face's, so no face (FastAPI) is loaded for it.
            raise AttributeError(f"module 'callwatch' has no attribute {name!r}")
        missing: ImportError | None = None
        for module_name in _FACES:
            try:
                module = importlib.import_module(module_name)
            except ImportError as error:  # routes without the fastapi extra
                missing = error
                continue
            if name in getattr(module, "__all__", ()):
                value = getattr(module, name)
                globals()[name] = value
                return value
        if missing is not None and name in __all__:
            raise AttributeError(
                f"callwatch.{name} needs FastAPI: pip install 'callwatch[fastapi]' ({missing})"
            )
        raise AttributeError(f"module 'callwatch' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
