"""ophyd's callback threads in a session: asleep when idle, at work when a callback
comes, gone at exit (``simbeamline.devices.dispatcher``).

Each case runs in a fresh interpreter against the test beamline: the dispatcher is
ophyd's process-wide one, started by ``import ophyd``.
"""

from __future__ import annotations

import pytest

from test_session_units import fresh_process_output

pytestmark = pytest.mark.timeout(180)

#: A fresh process: calm the dispatcher (an hour's idle wait: only a wake-up can end
#: the threads at exit), count the callback threads' wake-ups over a second of
#: idleness, then have a CA monitor callback run in them. Prints the number of
#: threads, their wake-ups, whether the callback ran, and the idle wait they have.
IDLE_THEN_CALLBACK = """
import threading, time
from simbeamline.control import ca_env
config = ca_env.apply_client_env()
import ophyd
from ophyd import EpicsSignalRO
from simbeamline.devices.dispatcher import calm_dispatcher
calm_dispatcher(%(idle_wait)r)
names = {"metadata", "monitor", "get_put", "util0", "util1", "util2", "util3"}
threads = [t for t in threading.enumerate() if t.name in names]
def wakeups():
    total = 0
    for t in threads:
        status = open(f"/proc/self/task/{t.native_id}/status").read()
        total += int(status.split("voluntary_ctxt_switches:")[1].split()[0])
    return total
counts = [wakeups()]
for second in range(2):  # two measurement windows of one idle second each
    time.sleep(1.0)
    counts.append(wakeups())
idle = counts[2] - counts[1]   # the second: the threads have left ophyd's first wait
ran = threading.Event()
signal = EpicsSignalRO(config.prefix + "current", name="I")
signal.subscribe(lambda value, **kw: ran.set())
signal.wait_for_connection(timeout=60)
waits = {t.timeout for t in ophyd.get_cl().get_dispatcher().threads.values()}
print(len(threads), idle, ran.wait(60), *waits)
"""


def test_idle_callback_threads_sleep_run_callbacks_and_end_at_exit(beamline, tmp_path):
    """Seven threads, hardly woken in an idle second (ophyd's own 0.1 s wait wakes
    each ten times); a monitor's callback still runs; and the process exits although each
    thread would otherwise sleep an hour (fresh_process_output's time limit)."""
    threads, idle, ran, wait = fresh_process_output(
        IDLE_THEN_CALLBACK % {"idle_wait": 3600.0}, tmp_path, beamline.as_env())
    assert (threads, ran, float(wait)) == ("7", "True", 3600.0)
    assert int(idle) <= 2, f"{idle} wake-ups of idle callback threads in one second"


def test_without_calming_the_threads_wake_ten_times_a_second(beamline, tmp_path):
    """The measurement above can fail: with ophyd's own 0.1 s wait it counts the
    wake-ups the calm dispatcher avoids."""
    threads, idle, ran, wait = fresh_process_output(
        IDLE_THEN_CALLBACK % {"idle_wait": 0.1}, tmp_path, beamline.as_env())
    assert (threads, ran, float(wait)) == ("7", "True", 0.1)
    assert int(idle) >= 7 * 5, f"only {idle} wake-ups in one second at ophyd's 0.1 s"


#: A fresh process: a utility task still running when the process exits (as ophyd's
#: metadata read after a connection can be) waits for the dispatcher's stop, then
#: says whether the signal's channel was still open, and if so reads its limits over
#: it. Released first, libca would have crashed on that read (SIGSEGV, 1 exit in
#: about 20 before the fix).
TASK_AT_EXIT = """
from simbeamline.control import ca_env
config = ca_env.apply_client_env()
import ophyd
from ophyd import EpicsSignalRO
from simbeamline.devices.dispatcher import calm_dispatcher
if %(calm)r:
    calm_dispatcher()
signal = EpicsSignalRO(config.prefix + "current", name="I")
signal.wait_for_connection(timeout=60)
dispatcher = ophyd.get_cl().get_dispatcher()
pv = signal._read_pv
def task_running_at_exit():
    dispatcher.stop_event.wait(60)
    if pv.chid is None:
        print("released", flush=True)
    else:
        print("open", pv.get_ctrlvars(timeout=10)["units"], flush=True)
dispatcher.schedule_utility_task(task_running_at_exit)
"""


def test_at_exit_the_threads_stop_before_the_channels_are_released(beamline, tmp_path):
    """The calmed dispatcher stops (and waits for a running task) before ophyd's
    finalizers clear the signals' channels: the task still reads over its channel."""
    assert fresh_process_output(TASK_AT_EXIT % {"calm": True}, tmp_path,
                                beamline.as_env()) == ["open", "mA"]


def test_without_calming_a_task_at_exit_outlives_its_channel(beamline, tmp_path):
    """The measurement above can fail: with ophyd's own exit order the channels are
    released while the dispatcher's threads still run. The hazard shows in one of two
    ways, and each is a failure of the order the calmed dispatcher fixes: the task finds
    its channel released, or libca crashes first under ophyd's own metadata read after
    the connection (SIGSEGV in ``epics/ca.py``; about 1 exit in 8 on this machine)."""
    import os
    import signal
    import subprocess
    import sys

    env = {**os.environ, **beamline.as_env(), "PYTHONFAULTHANDLER": "1"}
    result = subprocess.run([sys.executable, "-c", TASK_AT_EXIT % {"calm": False}],
                            capture_output=True, text=True, timeout=120, cwd=tmp_path,
                            env=env)
    if result.returncode == -signal.SIGSEGV:
        crashed_in = result.stderr.split("Current thread", 1)[-1].split("\n\n", 1)[0]
        assert "epics/ca.py" in crashed_in, result.stderr
    else:
        assert result.returncode == 0, result.stderr
        assert result.stdout.split() == ["released"]


#: A fresh process: ophyd's debug monitor thread is made to sleep an hour between its
#: looks at the queues; once it has gone to sleep, the process exits.
MONITOR_ASLEEP_AT_EXIT = """
import time
from simbeamline.control import ca_env
ca_env.apply_client_env()
import ophyd
from simbeamline.devices.dispatcher import calm_dispatcher
calm_dispatcher()
dispatcher = ophyd.get_cl().get_dispatcher()
monitor = dispatcher._debug_monitor_thread
def sleeps():
    status = open(f"/proc/self/task/{monitor.native_id}/status").read()
    return int(status.split("voluntary_ctxt_switches:")[1].split()[0])
before = sleeps()
dispatcher.debug_monitor_interval = 3600.0
while sleeps() == before:   # until it has woken and gone to sleep again, for an hour
    time.sleep(0.05)
print(monitor.is_alive(), dispatcher.debug_monitor_interval)
"""


def test_exit_does_not_wait_for_the_debug_monitor(tmp_path, beamline):
    """ophyd's stop joins its debug monitor, a daemon thread asleep between looks at
    the queues (a second at a time: every exit waited up to that second). The calmed
    dispatcher's stop leaves it: this process exits although it sleeps an hour
    (fresh_process_output's time limit)."""
    assert fresh_process_output(MONITOR_ASLEEP_AT_EXIT, tmp_path,
                                beamline.as_env()) == ["True", "3600.0"]
