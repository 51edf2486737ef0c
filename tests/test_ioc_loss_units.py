"""Pure logic of simbeamline.devices.ioc_loss, no IOC: which error a failed plan
raises when a device's IOC watch already named the lost IOC.
tests/test_ioc_crash.py kills real IOC processes."""

from __future__ import annotations

import pytest
from bluesky import RunEngine
from bluesky.utils import FailedStatus, Msg
from ophyd import Signal

from simbeamline.devices.ioc_loss import IocLost, SessionIocs

LOST = "the beamline IOC serving sim:m:spotx stopped answering (sim:m:spotx.RBV disconnected)"


def failing_plan(exc):
    yield Msg("null")
    raise exc


def test_a_failed_status_caused_by_a_lost_ioc_is_raised_as_that_loss():
    """bluesky raises ``FailedStatus(status) from status.exception()``; its text is only
    the status's repr (a motor's MoveStatus that ophyd failed). The session's watches
    (on a signal that still answers here) see nothing lost: the cause names the IOC."""
    watches = SessionIocs({"the beamline IOC (sim:)": Signal(name="current", value=1.0)})
    try:
        raise IocLost(LOST)
    except IocLost as lost:
        try:
            raise FailedStatus("MoveStatus(done=True, success=False)") from lost
        except FailedStatus as failed:
            error = failed
    with pytest.raises(IocLost, match="stopped answering") as raised:
        RunEngine(call_returns_result=False)(watches.preprocessor(failing_plan(error)))
    assert raised.value.__cause__ is error


def test_other_failures_pass_through_unchanged():
    watches = SessionIocs({"the beamline IOC (sim:)": Signal(name="current", value=1.0)})
    with pytest.raises(ValueError, match="out of range"):
        RunEngine(call_returns_result=False)(
            watches.preprocessor(failing_plan(ValueError("out of range"))))
