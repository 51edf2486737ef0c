"""Subscribers cannot grow the ADSimDetector IOC without bound (issue 9, item 4).

Twenty Channel Access clients subscribe to image1:ArrayData during Continuous
acquisition of 1024x1024 frames and never read their sockets (the worst client
there is: a stalled viewer). The IOC keeps at most a few frames per subscription
(caproto's per-channel backlog, set for the image channel), so its memory stays
bounded while it keeps acquiring and answering. The RSS figures are printed.
"""

from __future__ import annotations

import socket

import caproto as ca
import pytest
from caproto.sync import client as sync_client

from adsim_extra import ExtraADSimIOC
from waiting import wait_for

pytestmark = pytest.mark.timeout(300)

SUBSCRIBERS = 20
FRAME_BYTES = 1024 * 1024
#: frames acquired while the subscribers are stalled
FRAMES = 150
#: growth allowed: a few frames per subscriber and the interpreter's own slack
#: (without a bound, 20 stalled subscribers grew the IOC by more than 1 GB)
MAX_GROWTH_MB = 250


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def _stalled_subscriber(name: str, priority: int):
    """A CA circuit of its own that subscribes to *name* and never reads again."""
    udp = ca.bcast_socket()
    try:
        chan = sync_client.make_channel(name, udp, priority, 30)
    finally:
        udp.close()
    sock = sync_client.sockets[chan.circuit]
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sync_client.send(chan.circuit, chan.subscribe(data_count=0), name)
    # the synchronous client's reads (priority 0) must never share this circuit
    sync_client.global_circuits.pop((chan.circuit.address, chan.circuit.priority), None)
    return chan, sock


def _close(chan, sock):
    sock.close()
    sync_client.sockets.pop(chan.circuit, None)


def test_stalled_image_subscribers_keep_the_ioc_bounded(tmp_path):
    extra = ExtraADSimIOC(log_path=tmp_path / "ioc.log")
    with extra as ad:
        ad.camera(exposure=0.0, period=0.02, mode="Continuous")
        ad.plugin("image1")
        # warm up: the first frames allocate what every later frame reuses
        ad.put("cam1:Acquire", 1, wait=False)
        wait_for(lambda: ad.get("image1:ArrayCounter_RBV") >= 20, 60, "warm-up frames")
        ad.put("cam1:Acquire", 0)
        before = _rss_mb(extra.proc.pid)
        subscribers = [_stalled_subscriber(ad.name("image1:ArrayData"), priority)
                       for priority in range(1, SUBSCRIBERS + 1)]
        try:
            start = ad.get("image1:ArrayCounter_RBV")
            ad.put("cam1:Acquire", 1, wait=False)
            peak = before
            def enough():
                nonlocal peak
                peak = max(peak, _rss_mb(extra.proc.pid))
                return ad.get("image1:ArrayCounter_RBV") >= start + FRAMES
            wait_for(enough, 240, f"{FRAMES} frames with {SUBSCRIBERS} stalled subscribers")
            ad.put("cam1:Acquire", 0)
            dropped = ad.get("image1:DroppedArrays_RBV")
        finally:
            for chan, sock in subscribers:
                _close(chan, sock)
        print(f"\nADSim IOC RSS: {before:.0f} MB before, {peak:.0f} MB peak with "
              f"{SUBSCRIBERS} stalled image1:ArrayData subscribers over {FRAMES} frames of "
              f"{FRAME_BYTES // 1024} kB (growth {peak - before:.0f} MB; image1 DroppedArrays "
              f"{dropped})")
        assert peak - before < MAX_GROWTH_MB
        # still answering and acquiring
        assert ad.string("cam1:Acquire_RBV") in ("Done", "Acquiring")
