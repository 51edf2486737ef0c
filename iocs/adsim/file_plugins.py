"""The other NDFile plugins of commonPlugins: TIFF1 (tifffile) and JPEG1 (Pillow)
write real files; netCDF1 and Nexus1 refuse to write, saying so in WriteMessage.

They share NDFileHDF5's file handling (FilePath, FileTemplate, AutoIncrement,
AutoSave, WriteFile, Single/Capture/Stream, WriteStatus/WriteMessage: see
:mod:`.hdf_plugin`). TIFF and JPEG hold one frame per file, as in the C plugins
(supportsMultipleArrays is false): Capture writes each buffered frame to a file
of its own, Stream each frame as it arrives.

Colour frames (RGB1/RGB2/RGB3, e.g. from CC1) are written as the C plugins write
them: TIFF as RGB, contiguous for RGB1 and in three planes for RGB2/RGB3
(:func:`tiff_layout`); JPEG as RGB pixels whatever the layout.
"""

from __future__ import annotations

import os

import numpy as np

from .hdf_plugin import HDF5Plugin
from .plugins import NDArray


class SingleFramePlugin(HDF5Plugin):
    """An NDFile plugin writing one frame per file with :meth:`write_file`."""

    def write_file(self, host_name: str, array: NDArray) -> None:
        raise NotImplementedError

    def _write_one(self, host_name: str, array: NDArray) -> None:
        # complete files only: written under a temporary name, then renamed
        tmp = f"{host_name}.part"
        try:
            self.write_file(tmp, array)
            os.replace(tmp, host_name)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    async def _write(self, arrays: list[NDArray], multi: bool) -> bool:
        for index, array in enumerate(arrays):
            ioc_name = None
            try:
                ioc_name, host_name = await self._target()
                await self._in_executor(self._write_one, host_name, array)
            except Exception as exc:
                await self.post({"WriteFile_RBV": "Done"})
                if multi:
                    del self.buffer[:index]
                await self._failed(exc, ioc_name)
                return False
            await self.post({"WriteFile_RBV": "Done"})
            await self._file_written(ioc_name)
        return True

    async def _open_stream(self, like: NDArray) -> bool:
        return True      # nothing to open: each frame is a file

    async def handle(self, array: NDArray) -> None:
        if self.mode != "Stream":
            return await super().handle(array)
        self.last = array
        if not self.capturing:
            return None
        if not await self._write([array], multi=False):
            await self.stop_capture()
            return None
        self.captured += 1
        await self.post({"NumCaptured_RBV": self.captured})
        target = int(self.get("NumCapture"))
        if target > 0 and self.captured >= target:
            await self.stop_capture()
        return None


def tiff_layout(data: np.ndarray, color_mode: str) -> tuple[np.ndarray, str, str]:
    """(the pixels as tifffile writes them, photometric, planar config), as
    NDFileTIFF::openFile chooses: a 1-D or 2-D frame is MINISBLACK; an RGB1 frame
    (y, x, 3) is RGB, PLANARCONFIG_CONTIG; an RGB2 (y, 3, x) or RGB3 (3, y, x) frame
    is RGB, PLANARCONFIG_SEPARATE (three planes, red first: NDFileTIFF writes RGB2's
    rows as strips of each plane). Any other structure (a 3-D frame whose mode is
    not RGB or whose colour axis is not 3 long) is refused, as the C plugin refuses
    it ("unsupported array structure")."""
    if data.ndim in (1, 2):
        return data, "minisblack", "contig"
    if data.ndim == 3:
        if color_mode == "RGB1" and data.shape[2] == 3:
            return data, "rgb", "contig"
        if color_mode == "RGB2" and data.shape[1] == 3:
            return np.ascontiguousarray(np.moveaxis(data, 1, 0)), "rgb", "separate"
        if color_mode == "RGB3" and data.shape[0] == 3:
            return data, "rgb", "separate"
    raise ValueError(f"TIFF: unsupported array structure: {data.ndim}-D, dims "
                     f"{list(reversed(data.shape))}, ColorMode {color_mode}")


class TIFFPlugin(SingleFramePlugin):
    def write_file(self, host_name, array):
        import tifffile

        pixels, photometric, planar = tiff_layout(array.data, array.color_mode)
        tifffile.imwrite(host_name, pixels, photometric=photometric, planarconfig=planar,
                         metadata={"UniqueId": array.unique_id, "TimeStamp": array.timestamp})


class JPEGPlugin(SingleFramePlugin):
    def write_file(self, host_name, array):
        from PIL import Image

        data = array.data
        if data.dtype != np.uint8:   # NDFileJPEG takes 8-bit data only
            raise ValueError(f"JPEG takes UInt8 frames, not {array.data_type}")
        pixels, photometric, _ = tiff_layout(data, array.color_mode)   # its structures
        if photometric == "rgb":     # NDFileJPEG gathers each pixel's r, g, b (JCS_RGB)
            pixels = np.ascontiguousarray(pixels if array.color_mode == "RGB1"
                                          else np.moveaxis(pixels, 0, 2))
        Image.fromarray(pixels).save(host_name, format="JPEG",
                                   quality=int(self.get("JPEGQuality")))


class UnavailableFilePlugin(SingleFramePlugin):
    """netCDF1 / Nexus1: present, but this IOC does not write their formats."""

    def write_file(self, host_name, array):
        raise NotImplementedError(
            f"{self.get('PluginType_RBV')} files are not written by this simulated IOC; "
            "use HDF1 (NeXus/HDF5) or TIFF1")
