"""Connecting ophyd devices when many clients start at once.

A class of sessions started together loads the IOC and the machine: searches wait,
metadata arrives late, an IOC starved of CPU stops answering for seconds, and pyepics
can lose a channel to a race between a connection callback and the channel's creation
("Unexpected channel ID"), leaving a signal that never connects. A fixed timeout then
tells a student that IOCs that are running are down. :func:`connect` instead

- waits as long as signals keep connecting (*patience* seconds without one more
  channel connected, in pyepics or in ophyd, is a stall, however long the whole
  takes: ophyd's metadata callbacks run one at a time and lag far behind a busy IOC);
- after a stall, asks the IOC directly (:meth:`..control.ca_probe.Channel.state`):
  busy (it accepts a connection but does not reply in time): keep waiting, up to
  *limit* seconds in all; down (nothing listens, or it does not serve the PV): raise
  :class:`IocDown`; answering promptly while not one channel of this client connected:
  the stall is this client's, so throw the devices away and build them again in a
  fresh Channel Access context (new channels, new searches; the old context is left
  alone). With some channels connected, their callbacks may be in flight and
  destroying them crashed libca under load: keep waiting, up to *limit* seconds;
- after a stall with the IOC answering, asks it for the PVs still missing
  (*refused*): a PV it refuses will never connect, however long one waits (an IOC of
  another version, or another IOC on that address): raise :class:`MissingPVs` naming
  them, at the first stall rather than after *limit* seconds;
- after *attempts* builds that stalled with the IOC answering, raises
  :class:`ConnectFailed`, which says the IOC answers but connecting failed.

ophyd logs a traceback for each callback of a channel that pyepics no longer knows
("Unexpected channel ID", "Expected CA context is unset"): the race above, and the
callbacks still queued for devices thrown away. Both are handled here, so
:class:`QuietDiscardedChannels` keeps them off the student's screen.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Callable

from ..control import ca_probe

#: Seconds without one more signal connecting before a stall is declared.
PATIENCE = 10.0
#: Builds of the devices (the first plus retries in fresh CA contexts).
ATTEMPTS = 5
#: Seconds in all that a busy IOC (connection accepted, no reply) is waited for.
LIMIT = 600.0
#: Missing PVs asked of the IOC after a stall (the first ones suffice to tell).
PROBED_PVS = 10
#: Seconds between two looks at the connection state.
POLL = 0.05


class QuietDiscardedChannels(logging.Filter):
    """Drop ophyd's report of a callback on a channel pyepics has already discarded."""

    MESSAGES = ("Unexpected channel ID", "Expected CA context is unset")

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        return not (error is not None and str(error) in self.MESSAGES)


def quiet_discarded_channels() -> None:
    """Install :class:`QuietDiscardedChannels` on ophyd's logger (once)."""
    logger = logging.getLogger("ophyd")
    if not any(isinstance(f, QuietDiscardedChannels) for f in logger.filters):
        logger.addFilter(QuietDiscardedChannels())


class IocDown(RuntimeError):
    """The IOC does not answer a name search."""


class ConnectFailed(RuntimeError):
    """The IOC answers, but its devices did not connect (after every retry)."""


class MissingPVs(ConnectFailed):
    """The IOC answers, but refuses channels for PVs the devices need."""


def make_lazy_signals(device) -> None:
    """Make every lazy signal of *device* now, without waiting for any to connect.

    ophyd makes a lazy signal (every area-detector signal is one) on first access and
    waits for it to connect there and then, so a first walk over ``adsimdet``'s cam1
    and HDF1 (269 signals, 400 channels) waited for them one after another: 8 s. Made
    together, their searches go out together, and :func:`wait_connected` then waits
    for all of them at once."""
    from ophyd import Device
    from ophyd.device import do_not_wait_for_lazy_connection

    with do_not_wait_for_lazy_connection(device):
        for name in device.component_names:
            child = getattr(device, name)
            if isinstance(child, Device):
                make_lazy_signals(child)


def _report(line: str) -> None:
    """Tell the person waiting why connecting takes long (on stderr, as a session's
    other notices)."""
    print(f"simbeamline: {line}", file=sys.stderr, flush=True)


def _signals(device) -> list:
    if hasattr(device, "walk_signals"):
        return [walk.item for walk in device.walk_signals()]
    return [device]


def _pending(device) -> bool:
    """True while ophyd still runs a device's connection-time work (EpicsMotor's limits)."""
    subdevices = [device] + [dev for _, dev in getattr(device, "walk_subdevices", list)()]
    return any(getattr(dev, "_required_for_connection", None) for dev in subdevices)


def _unconnected(devices: dict) -> list[str]:
    return [f"{name}.{getattr(sig, 'dotted_name', '') or sig.name} ({getattr(sig, 'pvname', '')})"
            for name, device in devices.items() for sig in _signals(device) if not sig.connected]


def _unconnected_pvs(devices: dict) -> list[str]:
    """The PV names of the channels pyepics has not connected, in the devices' order."""
    pvs: list[str] = []
    for device in devices.values():
        for sig in _signals(device):
            for pv in (getattr(sig, "_read_pv", None), getattr(sig, "_write_pv", None)):
                if pv is not None and not pv.connected and pv.pvname not in pvs:
                    pvs.append(pv.pvname)
    return pvs


def _channels_connected(signals: list) -> int:
    """Channels pyepics has connected (ophyd's ``connected`` also waits for metadata)."""
    return sum(bool(getattr(getattr(sig, "_read_pv", None), "connected", False)) for sig in signals)


def wait_connected(devices: dict, patience: float = PATIENCE) -> None:
    """Return when every signal of *devices* (``{name: device or signal}``) is connected;
    raise TimeoutError naming the missing ones after *patience* seconds without progress."""
    signals = [sig for device in devices.values() for sig in _signals(device)]
    best, last_progress = (-1, -1), time.monotonic()
    while True:
        connected = sum(sig.connected for sig in signals)
        if connected == len(signals) and not any(_pending(d) for d in devices.values()):
            return
        now = time.monotonic()
        progress = (connected, _channels_connected(signals))
        if progress[0] > best[0] or progress[1] > best[1]:
            best, last_progress = (max(progress[0], best[0]), max(progress[1], best[1])), now
        elif now - last_progress > patience:
            missing = _unconnected(devices)
            shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
            raise TimeoutError(f"{len(missing)} of {len(signals)} signals not connected "
                               f"after {patience:.0f} s without progress: {shown or 'pending set-up'}")
        time.sleep(POLL)  # polling ophyd's connection flags until they change


def fresh_ca_context(devices: dict) -> None:
    """Destroy *devices* and give this thread a new Channel Access context for the next
    build. Not ``epics.ca.clear_cache()``: tearing the old context down while ophyd's
    threads still run its callbacks crashes libca."""
    import epics

    for device in devices.values():
        try:
            device.destroy()
        except Exception:  # a half-connected device may fail to tidy up; it is dropped anyway
            pass
    epics.ca.detach_context()
    epics.ca.create_context()


def connect(build: Callable[[], dict], state: Callable[[], str], what: str, *,
            refused: Callable[[list[str]], list[str]] | None = None,
            patience: float = PATIENCE, attempts: int = ATTEMPTS, limit: float = LIMIT) -> dict:
    """Build the devices with *build()* and wait until they connect; see the module doc.

    *state()* is the IOC's :meth:`..control.ca_probe.Channel.state`; *refused(pvs)* the
    PVs of *pvs* the IOC refuses (:func:`..control.ca_probe.refused`; None: not asked);
    *what* names the IOC in messages.
    """
    quiet_discarded_channels()
    give_up = time.monotonic() + limit
    failures = []
    for attempt in range(1, attempts + 1):
        devices = build()
        while True:
            try:
                wait_connected(devices, patience)
                return devices
            except TimeoutError as err:
                failure = str(err)
            found = state()
            if found in (ca_probe.DOWN, ca_probe.LACKS):
                fresh_ca_context(devices)
                raise IocDown(f"{what} does not answer ({failure})")
            if found == ca_probe.SERVES and refused is not None:
                lacking = refused(_unconnected_pvs(devices)[:PROBED_PVS])
                if lacking:
                    fresh_ca_context(devices)
                    raise MissingPVs(f"{what} answers, but does not serve "
                                     f"{', '.join(lacking)}, which its devices need")
            left = give_up - time.monotonic()
            if left < 0:
                break
            signals = [sig for device in devices.values() for sig in _signals(device)]
            if found == ca_probe.SERVES and not _channels_connected(signals):
                break  # this client's context is wedged: nothing in flight, safe to drop
            # SILENT (busy IOC), or channels with callbacks in flight: destroying them
            # crashed libca under load (exit -11), so their answers are waited for
            busy = "answers" if found == ca_probe.SERVES else "is busy"
            _report(f"{what}: {failure}; the IOC {busy}, so waiting on (at most "
                    f"{left:.0f} s more)")
        failures.append(failure)
        fresh_ca_context(devices)
        if attempt < attempts:
            _report(f"{what}: {failure}; trying again in a fresh Channel Access context "
                    f"(attempt {attempt + 1} of {attempts})")
    raise ConnectFailed(f"{what} answers, but its devices did not connect in {attempts} "
                        f"attempts, each in a fresh Channel Access context (last: {failures[-1]})")
