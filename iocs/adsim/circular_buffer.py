"""NDPluginCircularBuff: keeps the last PreCount frames while capturing; a trigger
(Trigger = 1, a soft trigger) passes them on, then the next PostCount frames, and
ends the trigger (Trigger/Trigger_RBV back to Done), as ophyd's
ContinuousAcquisitionTrigger expects."""

from __future__ import annotations

import collections

from .plugins import NDArray, Plugin


class CircularBuffPlugin(Plugin):
    def __init__(self, chain, name):
        super().__init__(chain, name)
        self.buffer: collections.deque = collections.deque()
        self.post_left = 0
        self.triggered = False
        self.triggers = 0
        self.ioc.register(self.pv("Capture"), self._put_capture)
        self.ioc.register(self.pv("Trigger"), self._put_trigger)

    async def _put_capture(self, value):
        capturing = value in ("Capture", 1)
        if capturing:
            self.buffer.clear()
            self.triggers = 0
            await self.post({"CurrentQty_RBV": 0, "ActualTriggerCount_RBV": 0,
                             "StatusMessage": "Buffer filling"})
        else:
            await self.post({"StatusMessage": "Acquisition stopped"})
        await self.post({"Capture_RBV": "Capturing" if capturing else "Done"})
        return value

    async def _put_trigger(self, value):
        if value not in ("Trigger", 1):
            await self._end_trigger()
            return value
        if self.get("Capture") != "Capture":
            raise ValueError("CB1 is not capturing: put Capture=1 first")
        self.triggered = True
        self.triggers += 1
        self.post_left = int(self.get("PostCount"))
        await self.post({"Trigger_RBV": "Triggered", "ActualTriggerCount_RBV": self.triggers,
                         "PostTriggerQty_RBV": 0, "StatusMessage": "Flushing"})
        pre, self.buffer = list(self.buffer), collections.deque()
        for array in pre:
            await self._pass_on(array)
        if self.get("FlushOnSoftTrg") == "Immediately" and self.post_left == 0:
            await self._end_trigger()
        return value

    async def _end_trigger(self):
        self.triggered = False
        await self.ioc.channels[self.pv("Trigger")].write("Done", verify_value=False)
        await self.post({"Trigger_RBV": "Done", "StatusMessage": "Buffer filling"})

    async def _pass_on(self, array: NDArray):
        if self.get("ArrayCallbacks") == "Enable":
            await self.chain.publish(self.port, array)

    async def handle(self, array: NDArray):
        if self.get("Capture") != "Capture":
            return None
        if self.triggered:
            await self._pass_on(array)
            done = int(self.get("PostTriggerQty_RBV")) + 1
            await self.post({"PostTriggerQty_RBV": done})
            if done >= self.post_left:
                await self._end_trigger()
            return False
        self.buffer.append(array)
        while len(self.buffer) > max(int(self.get("PreCount")), 0):
            self.buffer.popleft()
        await self.post({"CurrentQty_RBV": len(self.buffer)})
        return False
