"""NDFileHDF5: FilePath/CreateDirectory, file names and numbers, Single, Capture
and Stream modes, WriteFile, WriteStatus/WriteMessage, NumFramesChunks, SWMRMode
and FlushNow.

Files are written in the IOC's executor (never on the event loop); paths are
reported as the IOC names them and written through the path map.
"""

from __future__ import annotations

import asyncio
import logging
import os

from caproto import SkipWrite

from .h5writer import FrameInfo, NeXusWriter, WriteFailed, WriteOptions, write_frames
from .paths import create_file_path, format_file_name, normalize_file_path
from .plugins import NDArray, Plugin

log = logging.getLogger(__name__)

#: The chunking settings NDFileHDF5 refuses to change while a file is open.
CHUNK_SETTINGS = ("NumRowChunks", "NumColChunks", "NumFramesChunks",
                  *(f"ChunkSize{n}" for n in range(2, 10)))


class HDF5Plugin(Plugin):
    def __init__(self, chain, name):
        super().__init__(chain, name)
        self.last: NDArray | None = None
        self.buffer: list[NDArray] = []       # Capture mode
        self.stream: NeXusWriter | None = None  # Stream mode
        self.capturing = False
        self.capture_done: asyncio.Event | None = None
        self.captured = 0
        for field, handler in (("FilePath", self._put_file_path), ("Capture", self._put_capture),
                               ("WriteFile", self._put_write_file), ("FileNumber", self._put_int),
                               ("NumCapture", self._put_nonneg), ("ReadFile", self._put_read_file),
                               ("FlushNow", self._put_flush_now),
                               ("NumFramesFlush", self._put_num_frames_flush),
                               *((f, self._put_chunking(f)) for f in CHUNK_SETTINGS)):
            self.ioc.register(self.pv(field), handler)

    # -- helpers -------------------------------------------------------------
    @property
    def mode(self) -> str:
        return self.get("FileWriteMode")

    def options(self) -> WriteOptions:
        auto = self.get("ChunkSizeAuto") == "Yes"
        return WriteOptions(
            compression=self.get("Compression"), zlevel=int(self.get("ZLevel")),
            blosc_compressor=self.get("BloscCompressor"), blosc_level=int(self.get("BloscLevel")),
            blosc_shuffle=self.get("BloscShuffle"),
            store_perform=self.get("StorePerform") == "Yes",
            store_attr=self.get("StoreAttr") != "No",
            frames_per_chunk=max(int(self.get("NumFramesChunks")), 1),
            swmr=self.get("SWMRMode") == "On",
            chunk_rows=0 if auto else int(self.get("NumRowChunks")),
            chunk_cols=0 if auto else int(self.get("NumColChunks")),
            # NDFileHDF5 raises NumFramesFlush to NumFramesChunks when a file opens
            flush_every=max(int(self.get("NumFramesFlush")), int(self.get("NumFramesChunks")), 1))

    async def _opening_multi_frame_file(self, shape: tuple[int, ...]) -> None:
        """As NDFileHDF5 opens a Capture/Stream file of frames of *shape*: NumFramesChunks
        below 1 is taken as 1; the chunk's rows and columns (the whole frame with
        ChunkSizeAuto, else NumRowChunks/NumColChunks cut to the frame), the frames
        per chunk and the frames per flush (NumFramesFlush, at least NumFramesChunks)
        are what the readbacks then show."""
        options = self.options()
        chunk = options.frame_chunk(shape)
        values = {"NumFramesChunks_RBV": options.frames_per_chunk,
                  "NumFramesFlush_RBV": options.flush_every}
        if len(chunk) == 2:
            values.update(NumRowChunks_RBV=chunk[0], NumColChunks_RBV=chunk[1])
        await self.post(values)

    def _put_chunking(self, field: str):
        async def handler(value):
            if self.stream is not None or (self.capturing and self.mode == "Capture"):
                raise ValueError(f"{self.name}:{field} cannot change while a file is open "
                                 "(NDFileHDF5 refuses it): stop the capture first")
            if int(value) < 0:
                raise ValueError(f"{self.name}:{field} must be 0 or more, not {value}")
            return value
        return handler

    async def _put_num_frames_flush(self, value):
        frames = max(int(self.get("NumFramesChunks")), 1)
        if int(value) < frames:
            raise ValueError(f"{self.name}:NumFramesFlush {value} is below NumFramesChunks "
                             f"{frames} (NDFileHDF5 refuses it): flush at least every chunk")
        return value

    def next_file_name(self) -> str:
        return format_file_name(self.get("FileTemplate"), self.get("FilePath"),
                                self.get("FileName"), int(self.get("FileNumber")))

    async def status(self, ok: bool, message: str = "") -> None:
        # changed values only, as the asyn parameters call back (each file repeats "Write OK")
        await self.post_changed({"WriteStatus": "Write OK" if ok else "Write error",
                                 "WriteMessage": message})

    async def _file_written(self, ioc_name: str, increment: bool = True) -> None:
        updates = {"FullFileName_RBV": ioc_name}
        if increment and self.get("AutoIncrement") == "Yes":
            number = int(self.get("FileNumber")) + 1
            updates.update({"FileNumber": number, "FileNumber_RBV": number})
        await self.post(updates)
        await self.status(True)

    async def _in_executor(self, func, *args):
        return await asyncio.get_running_loop().run_in_executor(self.ioc.executor, func, *args)

    def _host_name(self, ioc_name: str) -> str:
        """Where *ioc_name* is on this host; raises if FilePath does not exist."""
        if self.get("FilePathExists_RBV") != "Yes":
            raise FileNotFoundError(f"directory {self.get('FilePath')} does not exist")
        return self.ioc.path_map.to_host(ioc_name)

    async def _target(self) -> tuple[str, str]:
        """The next file's name (as the IOC names it, and on this host), with
        WriteFile_RBV showing Writing."""
        ioc_name = self.next_file_name()
        host_name = self._host_name(ioc_name)
        await self.post({"WriteFile_RBV": "Writing"})
        return ioc_name, host_name

    async def _write(self, arrays: list[NDArray], multi: bool) -> bool:
        """Write one file of *arrays* under the next file name; False on failure.

        A multi-frame (Capture) file that fails part way keeps the frames written
        before the failure: it is closed with them, named in FullFileName_RBV,
        counted in NumCaptured_RBV, and those frames leave the buffer."""
        ioc_name = None
        try:
            ioc_name, host_name = await self._target()
            frames = [a.data for a in arrays]
            infos = [FrameInfo(a.unique_id, a.timestamp) for a in arrays]
            if multi:
                await self._opening_multi_frame_file(frames[0].shape)
            options, mode = self.options(), arrays[0].color_mode
            await self._in_executor(lambda: write_frames(host_name, frames, infos, options,
                                                         multi=multi, color_mode=mode))
        except WriteFailed as exc:
            await self.post({"WriteFile_RBV": "Done"})
            if exc.written:
                del self.buffer[:exc.written]
                self.captured = exc.written
                await self.post({"NumCaptured_RBV": exc.written})
                await self._file_written(ioc_name)
            await self._failed(exc, ioc_name)
            return False
        except Exception as exc:
            await self.post({"WriteFile_RBV": "Done"})
            await self._failed(exc)
            return False
        await self.post({"WriteFile_RBV": "Done"})
        await self._file_written(ioc_name)
        return True

    async def _failed(self, exc: Exception, ioc_name: str | None = None) -> None:
        message = str(exc) if isinstance(exc, WriteFailed) else f"{type(exc).__name__}: {exc}"
        if ioc_name and ioc_name not in message:
            message = f"{message} [{ioc_name}]"
        log.error("%s write failed: %s", self.name, message)
        await self.status(False, message)
        if self.chain.on_write_error is not None:
            await self.chain.on_write_error(message)

    # -- puts ----------------------------------------------------------------
    async def _put_file_path(self, value):
        path = normalize_file_path(value)
        host = self.ioc.path_map.to_host(path)
        refusal = self.ioc.path_map.outside(path)
        exists = refusal is None and os.path.isdir(host)
        message = refusal or ""
        if not exists and path and refusal is None:
            try:
                create_file_path(path, int(self.get("CreateDirectory")), self.ioc.path_map)
                exists = os.path.isdir(host)
            except OSError as exc:
                message = f"cannot create directory {path}: {exc.strerror or exc}"
        await self.post({"FilePathExists_RBV": "Yes" if exists else "No", "FilePath_RBV": path})
        if exists:
            await self.status(True)
        else:
            await self.status(False, message or f"directory {path} does not exist")
        await self.ioc.channels[self.pv("FilePath")].write(path, verify_value=False)
        return SkipWrite

    async def _put_int(self, value):
        return int(value)

    async def _put_nonneg(self, value):
        return max(int(value), 0)

    async def _put_read_file(self, value):
        return 0 if value in ("Read", 1) else value

    async def _put_flush_now(self, value):
        """FlushNow (a busy record): flush the open Stream file so readers see every
        frame written so far, then back to Done; the put completes after the flush.
        With no file open there is nothing to flush: it stays Done (NDFileHDF5 keeps
        the old value and returns an error status, which fails no CA put)."""
        stream = self.stream
        if value in ("Flush", 1) and stream is not None:
            try:
                await self._in_executor(stream.flush)
            except Exception as exc:
                if stream is self.stream:   # else it was closed meanwhile, which flushed it
                    await self._failed(exc, stream.ioc_name)
        return "Done"

    async def _put_write_file(self, value):
        if value not in ("Write", 1):
            return value
        await self.ioc.channels[self.pv("WriteFile")].write("Write", verify_value=False)
        try:
            if self.mode == "Single" and self.last is not None:
                await self._write([self.last], multi=False)
            elif self.mode == "Capture" and self.buffer:
                if await self._write(self.buffer, multi=True):
                    self.buffer = []
            elif self.mode == "Stream":
                await self.status(False, "WriteFile is not used in Stream mode")
            else:
                await self.status(False, "no array to write")
        finally:
            await self.ioc.channels[self.pv("WriteFile")].write("Done", verify_value=False)
        return SkipWrite

    async def _put_capture(self, value):
        start = value in ("Capture", 1)
        if not start:
            await self.stop_capture()
            return value
        if self.mode == "Single":
            await self.status(False, "ERROR, must be in capture or stream mode to capture")
            raise ValueError("must be in Capture or Stream mode to capture")
        if self.capturing:
            await self.capture_done.wait()
            return SkipWrite
        self.capturing = True
        self.capture_done = asyncio.Event()
        self.captured = 0
        self.buffer = []
        await self.post({"NumCaptured_RBV": 0})
        if self.mode == "Stream" and self.get("LazyOpen") != "Yes":
            if self.last is None:
                self.capturing = False
                self.capture_done.set()
                await self.status(False, "plugin not primed: no array received yet (use LazyOpen)")
                raise ValueError("HDF5 plugin not primed; set LazyOpen=Yes or acquire a frame first")
            if not await self._open_stream(self.last):
                self.capturing = False
                self.capture_done.set()
                raise ValueError(self.get("WriteMessage"))
        await self.ioc.channels[self.pv("Capture")].write("Capture", verify_value=False)
        await self.post({"Capture_RBV": "Capturing"})
        await self.capture_done.wait()   # a put with completion returns when capture ends
        return SkipWrite

    # -- capture ---------------------------------------------------------------
    async def _open_stream(self, like: NDArray) -> bool:
        try:
            ioc_name = self.next_file_name()
            host_name = self._host_name(ioc_name)
            await self._opening_multi_frame_file(like.data.shape)
            self.stream = await self._in_executor(
                lambda: NeXusWriter(host_name, like.data.shape, like.data.dtype, self.options(),
                                    multi=True, color_mode=like.color_mode))
            self.stream.ioc_name = ioc_name
            # like NDPluginFile, the number moves on when the file is opened
            await self._file_written(ioc_name)
            return True
        except Exception as exc:
            await self._failed(exc)
            return False

    async def stop_capture(self) -> None:
        """End a capture (Capture=0, NumCapture reached, or a failure)."""
        if not self.capturing:
            await self.post({"Capture": "Done", "Capture_RBV": "Done"})
            return
        self.capturing = False
        if self.mode == "Capture" and self.buffer and self.get("AutoSave") == "Yes":
            if await self._write(self.buffer, multi=True):
                self.buffer = []
        if self.stream is not None:
            stream, self.stream = self.stream, None
            try:
                await self._in_executor(stream.close)
                await self._file_written(stream.ioc_name, increment=False)
            except Exception as exc:
                await self._failed(exc)
        await self.ioc.channels[self.pv("Capture")].write("Done", verify_value=False)
        await self.post({"Capture_RBV": "Done"})
        self.capture_done.set()

    async def handle(self, array: NDArray) -> None:
        self.last = array
        mode = self.mode
        if mode == "Single":
            if self.get("AutoSave") == "Yes":
                await self._write([array], multi=False)
            return
        if not self.capturing:
            return
        target = int(self.get("NumCapture"))
        if mode == "Capture":
            self.buffer.append(array)
        else:
            if self.stream is None and not await self._open_stream(array):
                await self.stop_capture()
                return
            try:
                await self._in_executor(self.stream.add, array.data,
                                        FrameInfo(array.unique_id, array.timestamp))
            except Exception as exc:
                # keep what is written: close the file with the frames before this one
                stream, self.stream = self.stream, None
                failure = WriteFailed(exc, stream.count, target or None)
                try:
                    await self._in_executor(stream.close_after_failure)
                except Exception as close_exc:
                    failure = close_exc
                await self._failed(failure, stream.ioc_name)
                await self.stop_capture()
                return
        self.captured += 1
        await self.post({"NumCaptured_RBV": self.captured})
        if target > 0 and self.captured >= target:
            await self.stop_capture()
