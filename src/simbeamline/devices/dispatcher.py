"""ophyd's callback threads, woken by work instead of a clock.

ophyd runs every Channel Access callback in seven threads of its ``EventDispatcher``.
Each waits for work with a 0.1 s timeout only to look at its stop flag, so an idle
session wakes about seventy times a second for ever: a few milliseconds of CPU a
second, which thirty classroom sessions on one small host multiply into a share of
a core. :func:`calm_dispatcher` gives the threads a long timeout (work still wakes
them at once: it arrives on their queue) and, when the dispatcher is stopped (ophyd
does so at exit), hands each a no-op first, so that joining them does not wait out
that timeout; nor does it wait for ophyd's debug monitor thread, which logs queue
sizes once a second and kept every exit waiting for up to that second.

It also stops them at exit before ophyd's signals release their channels. ophyd
stops its dispatcher from an exit handler registered at ``import ophyd``, while the
signals' channels are released by ``weakref.finalize``'s exit handler, registered
when the first finalizer is made (usually the first signal, later), and exit
handlers run last-registered first. So a metadata read still running in a utility
thread (ophyd's connection callback starts one) could use a channel the main thread
had just cleared: libca then crashes the exiting process with SIGSEGV.
"""

from __future__ import annotations

import atexit
import weakref

#: Seconds an idle callback thread waits before looking at its stop flag (ophyd: 0.1).
IDLE_WAIT = 5.0


def _nothing() -> None:
    """The no-op a callback thread runs to notice it is being stopped."""


def _wake_to_stop(dispatcher) -> None:
    """Set *dispatcher*'s stop flag and wake every thread, so they end at once."""
    dispatcher.stop_event.set()
    for thread in dispatcher.threads.values():
        thread.queue.put((_nothing, (), {}))   # utility threads share a queue: one each


def calm_dispatcher(idle_wait: float = IDLE_WAIT) -> None:
    """Let the running ophyd dispatcher's threads sleep *idle_wait* seconds when idle,
    and end promptly when it is stopped (by ophyd at exit, or by a change of control
    layer). Harmless to call again; a no-op for a control layer without a dispatcher."""
    import ophyd

    dispatcher = getattr(ophyd.get_cl(), "get_dispatcher", lambda: None)()
    if dispatcher is None:
        return
    for thread in dispatcher.threads.values():
        thread.timeout = idle_wait    # read at each turn of the thread's loop
    if "stop" not in vars(dispatcher):
        def stop():
            """ophyd's stop, without waiting for its debug monitor: a daemon thread
            that only logs queue sizes, asleep a second at a time (joining it made
            every exit up to a second longer)."""
            _wake_to_stop(dispatcher)
            for thread in dispatcher.threads.values():
                thread.join()

        dispatcher.stop = stop
        _stop_before_channels_are_released(dispatcher)


class _Anchor:
    """An object to hang a finalizer on (``object()`` takes no weak references)."""


def _stop_before_channels_are_released(dispatcher) -> None:
    """Stop *dispatcher* at exit before any finalizer releases a channel: make
    ``weakref.finalize`` register its exit handler now (a finalizer on a throwaway
    object), then register the stop after it, so that it runs first."""
    weakref.finalize(_Anchor(), _nothing)

    def stop_at_exit():
        if dispatcher.is_alive():
            dispatcher.stop()

    atexit.register(stop_at_exit)
