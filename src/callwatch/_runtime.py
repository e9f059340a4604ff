"""The one owner of configuration and background work.

Components (the log writer, alert delivery, metric sampling) register a start
and a stop here. ``configure()`` (re)starts them with a fresh ``Settings``;
``shutdown()`` stops them in reverse order of priority, so alert delivery can
still log its failures before the log writer flushes and closes. Shutdown also
runs at interpreter exit and on SIGTERM, chaining any handler already there.
"""

from __future__ import annotations

import atexit
import os
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType
from typing import Any

from callwatch.config import Settings, load_settings

__all__ = ["Component", "configure", "flush", "register", "settings", "shutdown"]


@dataclass(frozen=True)
class Component:
    """A background part of callwatch: started on configure, stopped on shutdown.

    Lower ``priority`` starts first and stops last (logging is 0).
    """

    name: str
    start: Callable[[Settings], None]
    stop: Callable[[float], None]
    priority: int = 50
    flush: Callable[[], None] | None = None


_lock = threading.RLock()
_components: dict[str, Component] = {}
_started: list[Component] = []
_settings: Settings | None = None
class _Key:
    """Something multiprocessing can hold weakly to find our after-fork hook."""


_AFTER_FORK_KEY = _Key()
_atexit_installed = False
_sigterm_installed = False
_previous_sigterm: Any = None


def register(component: Component) -> None:
    """Add (or replace) a component; it starts now if callwatch is already configured."""
    with _lock:
        old = _components.get(component.name)
        if old is not None and old in _started:
            old.stop(1.0)
            _started.remove(old)
        _components[component.name] = component
        if _settings is not None:
            component.start(_settings)
            _started.append(component)


def settings() -> Settings:
    """The current settings, configuring from the environment on first use."""
    current = _settings
    if current is None:
        return configure()
    return current


def configure(**overrides: Any) -> Settings:
    """(Re)configure from the environment plus ``overrides`` and (re)start every component."""
    global _settings
    new = load_settings(**overrides)
    with _lock:
        _stop_all(5.0)
        _settings = new
        for component in sorted(_components.values(), key=lambda c: c.priority):
            component.start(new)
            _started.append(component)
        _install_exit_hooks()
    return new


def shutdown(timeout: float = 5.0) -> None:
    """Flush every buffered record and stop background work. Safe to call twice."""
    with _lock:
        _stop_all(timeout)


def flush() -> None:
    """Hand everything buffered to the operating system now, without stopping anything."""
    for component in list(_started):
        if component.flush is not None:
            try:
                component.flush()
            except Exception as exc:
                os.write(2, f"callwatch: flushing {component.name} failed: {exc!r}\n".encode())


def _stop_all(timeout: float) -> None:
    for component in sorted(_started, key=lambda c: c.priority, reverse=True):
        try:
            component.stop(timeout)
        except Exception as exc:  # a failing component must not keep the others running
            os.write(2, f"callwatch: stopping {component.name} failed: {exc!r}\n".encode())
    _started.clear()


def _install_exit_hooks() -> None:
    global _atexit_installed, _sigterm_installed, _previous_sigterm
    if not _atexit_installed:
        _atexit_installed = True
        atexit.register(shutdown)
        # multiprocessing's children end with os._exit, which skips atexit. Loaded here,
        # not at import: importing callwatch stays cheap.
        import multiprocessing.util  # noqa: PLC0415

        multiprocessing.util.register_after_fork(_AFTER_FORK_KEY, _finalize_in_child)
    # Signal handlers can only be set from the main thread: if the first configure
    # ran elsewhere, a later one from the main thread installs it.
    if not _sigterm_installed and threading.current_thread() is threading.main_thread():
        try:
            _previous_sigterm = signal.getsignal(signal.SIGTERM)
            signal.signal(signal.SIGTERM, _on_sigterm)
            _sigterm_installed = True
        except (ValueError, OSError):  # not allowed here (embedded interpreter)
            pass


def _finalize_in_child(_: object) -> None:
    import multiprocessing.util  # noqa: PLC0415 - loaded by _install_exit_hooks already

    multiprocessing.util.Finalize(None, shutdown, exitpriority=0)


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    previous = _previous_sigterm
    if callable(previous):
        # Someone else owns shutdown (uvicorn, gunicorn, the application): make what
        # was logged so far durable and let them drain; atexit stops callwatch last.
        flush()
        previous(signum, frame)
    elif previous == signal.SIG_IGN:
        flush()
    else:
        # Default action: flush everything, then die by the signal as expected.
        shutdown()
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)


def _before_fork() -> None:
    _lock.acquire()


def _after_fork_in_parent() -> None:
    _lock.release()


def _after_fork_in_child() -> None:
    """A forked worker restarts its components: threads do not survive fork."""
    global _started, _lock
    _lock = threading.RLock()
    with _lock:
        current = _settings
        if current is None:
            return
        _started = []
        for component in sorted(_components.values(), key=lambda c: c.priority):
            component.start(current)
            _started.append(component)


os.register_at_fork(
    before=_before_fork,
    after_in_parent=_after_fork_in_parent,
    after_in_child=_after_fork_in_child,
)
