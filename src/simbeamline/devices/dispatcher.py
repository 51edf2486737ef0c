"""ophyd's callback threads, woken by work instead of a clock.

ophyd runs every Channel Access callback in seven threads of its ``EventDispatcher``.
Each waits for work with a 0.1 s timeout only to look at its stop flag, so an idle
session wakes about seventy times a second for ever: a few milliseconds of CPU a
second, which thirty classroom sessions on one small host multiply into a share of
a core. :func:`calm_dispatcher` gives the threads a long timeout (work still wakes
them at once: it arrives on their queue) and, at exit, hands each a no-op so that
ophyd's own clean-up, which joins them, does not wait out that timeout.
"""

from __future__ import annotations

import atexit

#: Seconds an idle callback thread waits before looking at its stop flag (ophyd: 0.1).
IDLE_WAIT = 5.0

_calmed: set[int] = set()


def _nothing() -> None:
    """The no-op a callback thread runs to notice it is being stopped."""


def _wake_to_stop(dispatcher) -> None:
    """Set *dispatcher*'s stop flag and wake every thread, so they end at once."""
    dispatcher.stop_event.set()
    for thread in dispatcher.threads.values():
        thread.queue.put((_nothing, (), {}))   # utility threads share a queue: one each


def calm_dispatcher(idle_wait: float = IDLE_WAIT) -> None:
    """Let the running ophyd dispatcher's threads sleep *idle_wait* seconds when idle,
    and end promptly at exit. Harmless to call again, and a no-op for a control layer
    without a dispatcher."""
    import ophyd

    dispatcher = getattr(ophyd.get_cl(), "get_dispatcher", lambda: None)()
    if dispatcher is None:
        return
    for thread in dispatcher.threads.values():
        thread.timeout = idle_wait    # read at each turn of the thread's loop
    if id(dispatcher) not in _calmed:
        _calmed.add(id(dispatcher))
        # registered after ophyd's clean-up, so it runs before it (atexit is LIFO)
        atexit.register(_wake_to_stop, dispatcher)
