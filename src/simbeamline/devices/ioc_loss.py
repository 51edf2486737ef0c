"""When an IOC dies mid-acquisition: end the run at once, saying which IOC, never hang.

An acquisition's status is finished by the IOC (a put completing, an AcquireBusy
edge). If the IOC process dies, that never happens and ``RE(...)`` would wait for
ever. :class:`IocWatch` watches one signal of the IOC: when Channel Access reports
it disconnected, every status still pending is failed with :class:`IocLost`, whose
message names the IOC. When it connects again (supervisord restarted the IOC), the
watch remembers that the IOC restarted, so the device can set itself up again at
its next stage.

bluesky writes ``str(status)`` of a failed status as the stop document's reason;
:class:`ExplainedStatus` makes that string say why it failed (the IOC that was lost,
a disk that is full) rather than only ``DeviceStatus(... success=False)``.
"""

from __future__ import annotations

import errno
import sys
import threading
import time
import weakref

from ophyd.status import DeviceStatus


class IocLost(RuntimeError):
    """The IOC serving a device stopped answering while an operation was pending."""


def explain(exc: BaseException) -> str:
    """One line saying what went wrong, naming a full disk and its directory plainly."""
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        where = exc.filename or "the data directory"
        return (f"disk full (ENOSPC): no space left writing {where}; free space there "
                "or choose another data directory")
    return str(exc) or type(exc).__name__


class Explained:
    """Status mixin: a failed status's text starts with why it failed."""

    def __str__(self):
        text = super().__str__()
        if self.done and not self.success:
            exc = self.exception()
            if exc is not None:
                return f"{explain(exc)} [{text}]"
        return text

    __repr__ = __str__


class ExplainedStatus(Explained, DeviceStatus):
    """A DeviceStatus whose failure reason reaches the stop document."""


class IocWatch:
    """Fail pending statuses when *signal*'s IOC disconnects; note when it comes back.

    *what* names the IOC in messages ("the beamline IOC (sim:)"); *on_restart*, if
    given, is called with this watch once each time the IOC connects again after a
    disconnection.
    """

    def __init__(self, signal, what: str, on_restart=None):
        self.signal = signal
        self.what = what
        self.on_restart = on_restart
        self.host = ""
        self.restarted = False      #: set on reconnection; the device clears it
        self._pending = weakref.WeakSet()   #: statuses that may still be pending
        self._lock = threading.Lock()
        self._was_connected = False
        self._seen_disconnect = False
        signal.subscribe(self._connection_changed, event_type=signal.SUB_META, run=True)

    def track(self, status):
        """Fail *status* if the IOC is lost before it finishes; returns *status*.

        Held weakly, and skipped once done: no callback on the status, whose
        ``add_callback`` inspects the callback's signature each time (a twentieth of
        a session's CPU per spot event, measured with py-spy)."""
        with self._lock:
            self._pending.add(status)
        if not self.signal.connected:
            self._fail(status)
        return status

    @property
    def alive(self) -> bool:
        """Whether Channel Access has the watched PV connected right now."""
        pv = getattr(self.signal, "_read_pv", None)
        return bool(getattr(pv, "connected", self.signal.connected))

    def message(self, during: str = "an acquisition was in progress") -> str:
        at = f" at {self.host}" if self.host else ""
        return (f"{self.what}{at} stopped answering ({self.signal.pvname} disconnected) "
                f"while {during}; the run ends here. supervisord restarts a dead IOC: "
                "check `simbeamline status`, then run the plan again")

    def _fail(self, status):
        if not status.done:
            try:
                status.set_exception(IocLost(self.message()))
            except Exception:  # finished meanwhile (InvalidState)
                pass

    def _connection_changed(self, *, connected=False, **kwargs):
        if connected:
            pv = getattr(self.signal, "_read_pv", None)
            self.host = getattr(pv, "host", None) or self.host
            came_back = not self._was_connected and self._seen_disconnect
            self._was_connected = True
            if came_back:
                self.restarted = True
                if self.on_restart is not None:
                    self.on_restart(self)
            return
        if self._was_connected:
            self._seen_disconnect = True
        self._was_connected = False
        with self._lock:
            pending = list(self._pending)   # _fail skips the finished
        for status in pending:
            self._fail(status)


#: Seconds a failed run waits for Channel Access to report a lost IOC before its
#: reason is written (only failed runs wait).
LOSS_SETTLE = 2.0
#: Words of errors a disconnected PV gives (pyepics ECA_DISCONN is status code 192), and
#: of an ophyd status that failed without saying why (a motor's MoveStatus whose IOC died
#: mid-move: ophyd's own callbacks fail it before the IOC watch can).
_DISCONNECTION_WORDS = ("status code: 192", "disconnect", "not connected", "connect within",
                        "timeout", "timed out", "success=false")


class SessionIocs:
    """What a session knows of its IOCs: it says once when one is back after a
    restart, and names a lost IOC in the reason of a run that failed because of it.

    *watched* maps an IOC's description ("the beamline IOC (sim:)") to one of its
    signals. :meth:`preprocessor` goes in ``RE.preprocessors``.
    """

    def __init__(self, watched: dict, out=None):
        self.out = out
        self.watches = [IocWatch(signal, what, on_restart=self._restarted)
                        for what, signal in watched.items()]

    def _restarted(self, watch: IocWatch) -> None:
        print(f"simbeamline: {watch.what} restarted and answers again"
              f"{' at ' + watch.host if watch.host else ''}; its settings were restored "
              "from its autosave file (see its log)", file=self.out or sys.stderr)

    def lost(self, settle: float = 0.0) -> list[IocWatch]:
        """The IOCs not answering now; with *settle*, wait up to that many seconds for
        Channel Access to notice (another PV of the IOC may fail first)."""
        deadline = time.monotonic() + settle
        while True:
            lost = [watch for watch in self.watches if not watch.alive]
            if lost or time.monotonic() >= deadline:
                return lost
            time.sleep(0.05)   # polling CA's view of the connection

    def _named(self, reason: str) -> str | None:
        """*reason* preceded by which IOC stopped answering, or None if none did (or
        the reason names it already)."""
        if "stopped answering" in reason:   # a device named it already
            return None
        looks_disconnected = any(word in reason.lower() for word in _DISCONNECTION_WORDS)
        lost = self.lost(settle=LOSS_SETTLE if looks_disconnected else 0.0)
        if not lost:
            return None
        named = "; ".join(watch.message("the run was going on") for watch in lost)
        return f"{named} ({reason})"

    def name_lost_iocs(self, msg):
        """A failed run's ``close_run``: say first which IOC stopped answering."""
        if msg.command != "close_run" or msg.kwargs.get("exit_status") != "fail":
            return msg
        named = self._named(msg.kwargs.get("reason") or "")
        if named is None:
            return msg
        return msg._replace(kwargs={**msg.kwargs, "reason": named})

    def preprocessor(self, plan):
        """For ``RE.preprocessors``: the failed run's reason, and the error ``RE(...)``
        raises, name the IOC that stopped answering."""
        from bluesky.preprocessors import msg_mutator

        try:
            return (yield from msg_mutator(plan, self.name_lost_iocs))
        except IocLost:
            raise
        except Exception as exc:
            lost = _ioc_lost_in(exc)        # a device's watch named the IOC already
            if lost is not None:
                raise IocLost(str(lost)) from exc
            named = self._named(str(exc))
            if named is None:
                raise
            raise IocLost(named) from exc


def _ioc_lost_in(exc: BaseException) -> IocLost | None:
    """The :class:`IocLost` among *exc*'s causes (bluesky raises a failed status's
    exception as the cause of its ``FailedStatus``), if any."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, IocLost):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None
