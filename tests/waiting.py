"""Waiting on conditions in tests: the one place that polls or subscribes.

Tests never sleep for a fixed time and hope; they wait for the condition they
need, with a deadline, and fail naming what never happened.
"""

from __future__ import annotations

import time

from ophyd.status import SubscriptionStatus

#: Default seconds to wait for a condition (generous: CI machines are small and shared).
TIMEOUT = 30.0


def wait_for(condition, timeout: float = TIMEOUT, what: str = "condition"):
    """Poll *condition()* until it returns a truthy value, and return that value."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)  # polling interval of the condition, not a fixed delay


def wait_for_value(signal, predicate, timeout: float = TIMEOUT) -> None:
    """Block until *predicate(value)* holds for the monitored ophyd *signal*."""
    status = SubscriptionStatus(signal, lambda value, **kw: bool(predicate(value)),
                                timeout=timeout)
    try:
        status.wait()
    except Exception as exc:
        raise AssertionError(
            f"{signal.name} never satisfied the condition within {timeout} s; "
            f"last value {signal.get()!r}"
        ) from exc
