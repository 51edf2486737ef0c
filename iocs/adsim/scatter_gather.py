"""NDPluginScatter and NDPluginGather: one stream split among several plugins, and
several streams merged into one.

Scatter1 hands each frame to one of the plugins reading its port (SCATTER1), in
turn ("Round robin", its only ScatterMethod), as NDPluginScatter::doNDArrayCallbacks
does: the next plugin in the list takes it unless its queue is full, then the one
after; the last one tried takes it anyway (and drops it, counting DroppedArrays, if
it has no room). So N processing plugins behind Scatter1 each see every N-th frame.

Gather1 reads up to eight ports (NDArrayPort_1..8 with NDArrayAddress_1..8) and
passes on every frame from any of them. As in the real plugin, NDArrayPort_1 is the
same asyn parameter as the base NDArrayPort (address 0): a put on either shows on
both. An empty port name connects to nothing; a port named twice delivers each of
its frames twice (commonPlugins boots all eight at SIM1, with callbacks disabled).
"""

from __future__ import annotations

from .plugins import NDArray, Plugin

GATHER_PORTS = 8


class ScatterPlugin(Plugin):
    """Scatter1: each frame to the next plugin that reads SCATTER1 (round robin)."""

    def __init__(self, chain, name):
        super().__init__(chain, name)
        self.next_client = 0

    async def handle(self, array: NDArray):
        if self.get("ArrayCallbacks") != "Enable":
            return False
        clients = [p for p in self.chain.plugins
                   if p is not self and p.enabled and p.inputs_from(self.port)]
        for i in range(len(clients)):
            client = clients[(self.next_client + i) % len(clients)]
            if client.has_room() or i == len(clients) - 1:
                self.next_client = (self.next_client + i + 1) % len(clients)
                await client.receive(array)
                break
        return False           # delivered here, to one client, not to all of them


class GatherPlugin(Plugin):
    """Gather1: every frame of the ports NDArrayPort_1..8 name, passed on."""

    def __init__(self, chain, name):
        super().__init__(chain, name)
        self.ioc.register(self.pv("NDArrayPort"), self._linked("NDArrayPort_1"))
        self.ioc.register(self.pv("NDArrayPort_1"), self._linked("NDArrayPort"))
        self.ioc.register(self.pv("NDArrayAddress"), self._linked("NDArrayAddress_1"))
        self.ioc.register(self.pv("NDArrayAddress_1"), self._linked("NDArrayAddress"))

    def _linked(self, twin: str):
        async def handler(value):
            await self.post({twin: value, f"{twin}_RBV": value})
            return value
        return handler

    def inputs_from(self, port: str, addr: int = 0) -> int:
        return sum(self.get(f"NDArrayPort_{n}") == port
                   and int(self.get(f"NDArrayAddress_{n}")) == addr
                   for n in range(1, GATHER_PORTS + 1))
