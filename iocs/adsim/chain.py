"""The NDArray plugin chain: every plugin of commonPlugins, routed by port name.

A frame published on a port (the driver's "SIM1", or a plugin's own port when its
ArrayCallbacks is Enable) reaches every plugin whose NDArrayPort names that port
and whose EnableCallbacks is Enable. Kept apart from :mod:`.plugins` (the base class
the concrete plugins import), so no module imports one that imports it back.
"""

from __future__ import annotations

from .attribute import AttributePlugin
from .bad_pixel import BadPixelPlugin
from .circular_buffer import CircularBuffPlugin
from .codec import CodecPlugin
from .colorconvert import ColorConvertPlugin
from .fft import FFTPlugin
from .file_plugins import JPEGPlugin, TIFFPlugin, UnavailableFilePlugin
from .hdf_plugin import HDF5Plugin
from .plugins import ImagePlugin, NDArray, Plugin, StatsPlugin
from .pva import PvaPlugin
from .overlay import OverlayPlugin
from .process import ProcessPlugin
from .roi import ROIPlugin
from .roi_stat import ROIStatPlugin
from .scatter_gather import GatherPlugin, ScatterPlugin
from .table import plugin_table
from .timeseries import TimeSeriesPlugin
from .transform import TransformPlugin

#: compression-aware plugin types whose handling of compressed frames is not simulated:
#: they drop them, the log saying this
COMPRESSED_NOT_SIMULATED = {
    "NDFileHDF5": "would be written as HDF5 chunks as they are by NDFileHDF5, which this "
                  "simulation does not do"}


class PluginChain:
    """All plugins of the IOC (those of commonPlugins, from :mod:`.table`) and the
    routing between their ports. A plugin with no behaviour of its own here still
    takes frames from its NDArrayPort, counts them, and passes them on."""

    def __init__(self, ioc):
        self.ioc = ioc
        self.on_write_error = None
        by_type = {"NDFileHDF5": HDF5Plugin, "NDFileTIFF": TIFFPlugin, "NDFileJPEG": JPEGPlugin,
                   "NDFileNetCDF": UnavailableFilePlugin, "NDFileNexus": UnavailableFilePlugin,
                   "NDPluginStats": StatsPlugin, "NDPluginROI": ROIPlugin,
                   "NDPluginTransform": TransformPlugin, "NDPluginProcess": ProcessPlugin,
                   "NDPluginColorConvert": ColorConvertPlugin, "NDPluginOverlay": OverlayPlugin,
                   "NDPluginCircularBuff": CircularBuffPlugin, "NDPluginPva": PvaPlugin,
                   "NDPluginScatter": ScatterPlugin, "NDPluginGather": GatherPlugin,
                   "NDPluginAttribute": AttributePlugin, "NDPluginFFT": FFTPlugin,
                   "NDPluginBadPixel": BadPixelPlugin, "NDPluginCodec": CodecPlugin,
                   "NDPluginTimeSeries": TimeSeriesPlugin, "NDPluginROIStat": ROIStatPlugin,
                   "NDPluginStdArrays": lambda chain, name: ImagePlugin(
                       chain, name, image_ftvl=ioc.image_ftvl)}
        self.plugins = []
        for prefix, _, kind in plugin_table():
            if prefix == "cam1:":
                continue
            plugin = by_type.get(kind, Plugin)(self, prefix[:-1])
            if kind in COMPRESSED_NOT_SIMULATED:
                plugin.compressed_refusal = COMPRESSED_NOT_SIMULATED[kind]
            self.plugins.append(plugin)

    def __getitem__(self, name):
        return next(p for p in self.plugins if p.name == name)

    async def start(self, host: str, ca_port: int) -> None:
        """Start the plugins that serve something besides CA (Pva1's PVA server) on
        *host*, the IOC's CA address, with ports derived from *ca_port*; first the
        readbacks plugins compute at boot (Stats' HistogramX, the TS plugins' averaging)."""
        for plugin in self.plugins:
            if isinstance(plugin, (StatsPlugin, TimeSeriesPlugin)):
                await plugin.boot()
        for plugin in self.plugins:
            if isinstance(plugin, PvaPlugin):
                await plugin.start(host, ca_port)

    async def publish(self, port: str, array: NDArray, addr: int = 0) -> None:
        """Deliver *array* from address *addr* of *port* (0: the frames a plugin passes
        on; NDPluginStats and NDPluginAttribute send their time-series points on 1)
        to the plugins attached to it (NDArrayPort and NDArrayAddress)."""
        for plugin in self.plugins:
            if plugin.port != port:
                for _ in range(plugin.inputs_from(port, addr)):
                    await plugin.receive(array)

    async def drain(self) -> None:
        """Wait until every queued frame has been processed by every plugin."""
        while any(p.pending for p in self.plugins):
            for plugin in self.plugins:
                await plugin.drain()
