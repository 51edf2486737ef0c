"""HDF5 files in the layout NDFileHDF5 writes by default (no XML layout file).

/entry                               NXentry
/entry/instrument                    NXinstrument
/entry/instrument/detector           NXdetector
/entry/instrument/detector/data      the frames, @signal=1
/entry/instrument/detector/NDAttributes  NXcollection (ColorMode)
/entry/instrument/NDAttributes       NXcollection: NDArrayUniqueId, NDArrayTimeStamp,
                                     NDArrayEpicsTSSec, NDArrayEpicsTSnSec
/entry/instrument/performance        timestamps of each write (StorePerform = Yes)
/entry/data                          NXdata
/entry/data/data                     hard link to /entry/instrument/detector/data

Single mode stores one 2-D (rows, columns) frame per file; Capture and Stream
store a 3-D (frames, rows, columns) dataset, chunked NumFramesChunks frames at a
time (at least 1, as NDFileHDF5 chunks it). With SWMRMode On a multi-frame file is
written in HDF5's single-writer/multiple-reader mode once its layout is made, so a
reader (h5py ``swmr=True``) follows the frames while the file is open; every object
of the file, the performance dataset too, is therefore created when it opens.

An uncompressed Single-mode file (the benchmark's and the seed's case) is written
from a :class:`SingleFileTemplate`: the bytes HDF5 wrote for the first such file of
that frame shape and type, with the frame's pixels and the four NDAttributes values
put in at the places HDF5 reports, in one ``os.writev``. The file is byte for byte
the one :class:`NeXusWriter` writes (checked before a template is used), without
making its groups, datasets, 28 attributes and link again for every frame.

A multi-frame file survives a write that fails part way (disk full, file size
limit): HDF5 itself cannot close a file cleanly once one of its writes has failed
(the file is left unreadable), so before each frame the writer reserves on disk
the space that frame and its metadata can take. A full disk then fails the
reservation, before HDF5 has touched anything, and the file closes with the frames
already in it. The unused tail of the reservation is cut off at close. A
Single-mode file is made by HDF5 in memory and written to disk by plain writes, so
a full disk fails it with ENOSPC and nothing else (HDF5 failing to close a file on
a full disk crashed the IOC).
"""

from __future__ import annotations

import dataclasses
import errno
import logging
import os
import struct
import tempfile
import threading
import time

import numpy as np

log = logging.getLogger(__name__)

COMPRESSIONS = ("None", "N-bit", "szip", "zlib", "Blosc", "BSLZ4", "LZ4", "JPEG")
BLOSC_COMPRESSORS = ("BloscLZ", "LZ4", "LZ4HC", "SNAPPY", "ZLIB", "ZSTD")
BLOSC_SHUFFLES = ("None", "Byte", "Bit")

_ATTRIBUTES = (
    ("NDArrayUniqueId", np.int32, "The unique ID of the NDArray"),
    ("NDArrayTimeStamp", np.float64, "The timestamp of the NDArray as float64"),
    ("NDArrayEpicsTSSec", np.uint32, "The NDArray EPICS timestamp seconds past epoch"),
    ("NDArrayEpicsTSnSec", np.uint32, "The NDArray EPICS timestamp nanoseconds"),
)
#: NDColorMode_t, by value (the ColorMode NDAttribute is its index).
COLOR_MODES = ("Mono", "Bayer", "RGB1", "RGB2", "RGB3", "YUV444", "YUV422", "YUV421")
#: Seconds between the POSIX and the EPICS epochs.
EPICS_EPOCH = 631152000
#: Disk space reserved ahead of a multi-frame file, once, and per frame besides the
#: frame's bytes (metadata: chunk index, NDAttributes, performance rows).
RESERVE_FIXED = 256 * 1024
RESERVE_PER_FRAME = 4096


class WriteFailed(Exception):
    """A multi-frame file whose writing failed after *written* frames; the file
    was closed with those frames (when *written* > 0) or removed."""

    def __init__(self, cause: BaseException, written: int, total: int | None = None):
        self.cause = cause
        self.written = written
        self.total = total
        of = f" of {total}" if total is not None else ""
        kept = f"file closed with {written} frame(s)" if written else "no file written"
        super().__init__(f"{type(cause).__name__}: {cause} (writing frame {written + 1}{of}; {kept})")


@dataclasses.dataclass(frozen=True)
class WriteOptions:
    compression: str = "None"
    zlevel: int = 6
    blosc_compressor: str = "BloscLZ"
    blosc_level: int = 5
    blosc_shuffle: str = "None"
    store_perform: bool = False
    store_attr: bool = True
    #: frames per chunk of a multi-frame dataset (NumFramesChunks; 0 counts as 1)
    frames_per_chunk: int = 1
    #: SWMRMode On: a multi-frame file is written in SWMR mode
    swmr: bool = False
    #: rows and columns of a frame per chunk of a multi-frame dataset (NumRowChunks,
    #: NumColChunks); 0 is the whole frame (ChunkSizeAuto Yes), more is cut to it
    chunk_rows: int = 0
    chunk_cols: int = 0
    #: a multi-frame file is flushed after every this many frames (NumFramesFlush; 0 never)
    flush_every: int = 0

    def frame_chunk(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        """The chunk of one frame of *shape* (a colour frame's chunk is the whole frame)."""
        if len(shape) != 2:
            return tuple(shape)
        rows, cols = shape
        return (min(self.chunk_rows, rows) if self.chunk_rows > 0 else rows,
                min(self.chunk_cols, cols) if self.chunk_cols > 0 else cols)


@dataclasses.dataclass(frozen=True)
class FrameInfo:
    """What the NDArray carries besides its pixels."""

    unique_id: int
    timestamp: float  # POSIX seconds

    @property
    def epics_ts(self) -> tuple[int, int]:
        sec = int(self.timestamp)
        return sec - EPICS_EPOCH, int(round((self.timestamp - sec) * 1e9)) % 1_000_000_000


def _h5py():
    """h5py with hdf5plugin's filters registered (Blosc, LZ4, bitshuffle), imported with
    the IOC's first HDF5 file rather than at its start: 0.06 s of the ADSim IOC's 0.7 s
    to answer (benchmarks/README.md, "Launcher")."""
    import h5py
    import hdf5plugin  # noqa: F401  (registers its filters with HDF5)

    return h5py


def filter_options(opts: WriteOptions) -> dict:
    """h5py ``create_dataset`` keywords for the plugin's Compression settings."""
    c = opts.compression
    if c == "None":
        return {}
    import hdf5plugin   # the filters' options; see _h5py
    if c == "zlib":
        return {"compression": "gzip", "compression_opts": min(max(int(opts.zlevel), 0), 9)}
    if c == "Blosc":
        cname = {"BloscLZ": "blosclz", "LZ4": "lz4", "LZ4HC": "lz4hc", "SNAPPY": "snappy",
                 "ZLIB": "zlib", "ZSTD": "zstd"}[opts.blosc_compressor]
        shuffle = {"None": hdf5plugin.Blosc.NOSHUFFLE, "Byte": hdf5plugin.Blosc.SHUFFLE,
                   "Bit": hdf5plugin.Blosc.BITSHUFFLE}[opts.blosc_shuffle]
        return dict(hdf5plugin.Blosc(cname=cname, clevel=min(max(int(opts.blosc_level), 0), 9),
                                     shuffle=shuffle))
    if c == "LZ4":
        return dict(hdf5plugin.LZ4())
    if c == "BSLZ4":
        return dict(hdf5plugin.Bitshuffle(cname="lz4"))
    raise ValueError(f"Compression {c} is not supported by this simulator "
                     "(use None, zlib, Blosc, BSLZ4 or LZ4)")


class NeXusWriter:
    """One open NDFileHDF5 file; frames are appended with :meth:`add`."""

    def __init__(self, path: str, shape: tuple[int, ...], dtype, opts: WriteOptions,
                 *, multi: bool, in_memory: bool = False, color_mode: str = "Mono"):
        self.path = path
        self.multi = multi
        self.count = 0
        self.opts = opts
        self._t0 = time.time()
        self._perf = []
        kwargs = filter_options(opts)   # raises before the file exists
        memory = {"driver": "core", "backing_store": False} if in_memory else {}
        self.file = _h5py().File(path, "w", libver="latest" if multi else "earliest", **memory)
        self._fd = None
        try:
            entry = self._group(self.file, "entry", "NXentry")
            instrument = self._group(entry, "instrument", "NXinstrument")
            detector = self._group(instrument, "detector", "NXdetector")
            if multi:
                self.data = detector.create_dataset(
                    "data", shape=(0, *shape), maxshape=(None, *shape), dtype=dtype,
                    chunks=(max(int(opts.frames_per_chunk), 1), *opts.frame_chunk(shape)),
                    **kwargs)
            else:
                if kwargs:
                    kwargs.setdefault("chunks", shape)
                self.data = detector.create_dataset("data", shape=shape, dtype=dtype, **kwargs)
            self.data.attrs["signal"] = np.int32(1)
            # a frame's dataset dims are the NDArray dims reversed (numpy's order), so
            # colour frames are (y, x, 3) RGB1, (y, 3, x) RGB2, (3, y, x) RGB3
            rank = len(shape)
            self.data.attrs["NDArrayNumDims"] = np.int32(rank)
            self.data.attrs["NDArrayDimOffset"] = np.zeros(rank, np.int32)
            self.data.attrs["NDArrayDimBinning"] = np.ones(rank, np.int32)
            self.data.attrs["NDArrayDimReverse"] = np.zeros(rank, np.int32)
            det_attrs = self._group(detector, "NDAttributes", "NXcollection")
            det_attrs.create_dataset("ColorMode", data=np.int32(COLOR_MODES.index(color_mode)))
            self.attrs = {}
            if opts.store_attr:
                nd = self._group(instrument, "NDAttributes", "NXcollection")
                nd.attrs["hostname"] = os.uname().nodename
                self._nd = nd
                # a Single-mode file creates them with its one frame's values (add)
                for name, dt, description in (_ATTRIBUTES if multi else ()):
                    ds = nd.create_dataset(name, shape=(0,), maxshape=(None,), dtype=dt,
                                           chunks=(16,))
                    self._describe(ds, name, description)
                    self.attrs[name] = ds
            self.instrument = instrument
            self._perf_ds = None
            if opts.store_perform:
                perf = self._group(instrument, "performance", "NXcollection")
                self._perf_ds = perf.create_dataset("timestamp", shape=(0, 5), maxshape=(None, 5),
                                                    dtype=np.float64, chunks=(64, 5))
            data_group = self._group(entry, "data", "NXdata")
            data_group["data"] = self.data   # hard link
            if multi:
                self.file.flush()
                if opts.swmr:
                    self.file.swmr_mode = True   # no object can be created after this
                self._fd = self.file.id.get_vfd_handle()
                self._reserve_base = os.fstat(self._fd).st_size + RESERVE_FIXED
                self._reserved_bytes = 0
        except BaseException:
            self.abort()
            raise

    @staticmethod
    def _describe(ds, name: str, description: str) -> None:
        ds.attrs["NDAttrDescription"] = description
        ds.attrs["NDAttrName"] = name
        ds.attrs["NDAttrSource"] = "Driver"
        ds.attrs["NDAttrSourceType"] = "NDAttrSourceDriver"

    @staticmethod
    def _group(parent, name, nx_class):
        group = parent.create_group(name)
        group.attrs["NX_class"] = nx_class
        return group

    def _reserve(self, nbytes: int) -> None:
        """Make sure the disk holds room for one more frame of *nbytes* (raises
        OSError, e.g. ENOSPC or EFBIG, before anything is written otherwise)."""
        # compressed chunks may exceed the raw size a little (filter headers)
        self._reserved_bytes += nbytes + nbytes // 64 + RESERVE_PER_FRAME
        target = self._reserve_base + self._reserved_bytes
        size = os.fstat(self._fd).st_size
        if target <= size:
            return
        if hasattr(os, "posix_fallocate"):
            try:
                os.posix_fallocate(self._fd, size, target - size)
                return
            except OSError as exc:
                if exc.errno not in (errno.EINVAL, errno.EOPNOTSUPP):  # unsupported here
                    raise
        os.pwrite(self._fd, b"\0", target - 1)   # no fallocate here: at least the size limit

    def add(self, frame: np.ndarray, info: FrameInfo) -> None:
        """Store one frame (a Single-mode file takes exactly one)."""
        t = time.time()
        if self.multi:
            self._reserve(frame.nbytes)
            try:
                self.data.resize(self.count + 1, axis=0)
                self.data[self.count] = frame
            except BaseException:
                self.data.resize(self.count, axis=0)
                raise
        else:
            if self.count:
                raise RuntimeError("a Single-mode file holds one frame")
            self.data[...] = frame
        values = _attribute_values(info)
        if self.opts.store_attr and not self.multi:
            # one call per dataset instead of create, resize and write
            for name, dt, description in _ATTRIBUTES:
                ds = self._nd.create_dataset(name, data=np.array([values[name]], dtype=dt),
                                             maxshape=(None,), chunks=(16,))
                self._describe(ds, name, description)
        else:
            for name, value in values.items():
                ds = self.attrs.get(name)
                if ds is not None:
                    ds.resize(self.count + 1, axis=0)
                    ds[self.count] = value
        self.count += 1
        if self.multi and self.opts.flush_every > 0 and self.count % self.opts.flush_every == 0:
            self.file.flush()             # NumFramesFlush: readers see the frames so far
        if self.opts.store_perform:
            now = time.time()
            self._perf.append((now - self._t0, now - t, self.count, frame.nbytes, now))

    def flush(self) -> None:
        """Make what is written visible to readers (FlushNow; SWMR readers refresh)."""
        self.file.flush()

    def _store_perform(self) -> None:
        if self._perf_ds is not None and self.file:
            rows = np.array(self._perf, dtype=np.float64).reshape(-1, 5)
            self._perf_ds.resize(len(rows), axis=0)
            self._perf_ds[...] = rows

    def image(self) -> bytes:
        """The whole file's bytes, once its frames are added (an ``in_memory`` writer)."""
        self._store_perform()
        self.file.flush()
        return self.file.id.get_file_image()

    def close(self) -> None:
        self._store_perform()
        self.file.close()
        if self._fd is not None:
            self._fd = None
            _trim_to_end_of_allocation(self.path)

    def close_after_failure(self) -> None:
        """After a failed :meth:`add`: keep the frames written (a multi-frame file
        with at least one) by closing the file, else remove it."""
        if self.multi and self.count:
            self.close()
        else:
            self.abort()

    def abort(self) -> None:
        """Close and remove a file whose writing failed (no partial file is left)."""
        try:
            self.file.close()
        finally:
            try:
                os.unlink(self.path)
            except OSError:
                pass


def _trim_to_end_of_allocation(path: str) -> None:
    """Cut a closed file back to the end of what HDF5 allocated (the superblock's
    end-of-file address; superblock versions 2 and 3, which libver="latest" writes)."""
    with open(path, "rb") as f:
        head = f.read(64)
    if len(head) < 12 or head[:8] != b"\x89HDF\r\n\x1a\n" or head[8] not in (2, 3):
        return
    size_of_offsets = head[9]
    fmt = {4: "<I", 8: "<Q"}.get(size_of_offsets)
    if fmt is None:
        return
    at = 12 + 2 * size_of_offsets       # after base address and extension address
    (end,) = struct.unpack_from(fmt, head, at)
    if 0 < end < os.path.getsize(path):
        os.truncate(path, end)


def _partial_name(path: str) -> str:
    head, name = os.path.split(path)
    return os.path.join(head, f".{name}.part")


def _attribute_values(info: FrameInfo) -> dict:
    sec, nsec = info.epics_ts
    return {"NDArrayUniqueId": info.unique_id, "NDArrayTimeStamp": info.timestamp,
            "NDArrayEpicsTSSec": sec, "NDArrayEpicsTSnSec": nsec}


def _write_all(fd: int, parts: list) -> None:
    """Write every buffer of *parts* to *fd* in order (``os.writev``, continued
    after a short write; a failing write raises, e.g. ENOSPC or EFBIG)."""
    parts = [memoryview(p).cast("B") for p in parts]
    while parts:
        n = os.writev(fd, parts[:1024])
        while parts and n >= len(parts[0]):
            n -= len(parts[0])
            parts.pop(0)
        if parts and n:
            parts[0] = parts[0][n:]


class SingleFileTemplate:
    """The bytes of an uncompressed Single-mode file for frames of one shape and
    type, and where in them the values of one frame go.

    HDF5 lays out a file the same way for the same calls, so the file
    :class:`NeXusWriter` writes for one frame differs from the next frame's only in
    the frame's pixels (a contiguous dataset, at ``get_offset()``) and in the
    NDAttributes values (one chunk each, at ``get_chunk_info(0)``); with
    ``libver="earliest"`` there are no checksums or times in the metadata. A
    template is built by writing two files with :class:`NeXusWriter` and kept only
    if rendering the second one's values into the first one's bytes gives exactly
    the second file (:meth:`build` returns None otherwise, and the writer is used).
    """

    def __init__(self, image: bytes, slots: list[tuple[int, int, str, np.dtype | None]]):
        self.image = memoryview(image)
        #: (offset, size, "frame" or an NDAttribute name, its dtype), by offset
        self.slots = sorted(slots)

    def parts(self, frame: np.ndarray, info: FrameInfo) -> list:
        """The file's bytes for *frame* and *info*, as buffers in file order."""
        values = _attribute_values(info)
        frame = np.ascontiguousarray(frame)
        parts, at = [], 0
        for offset, size, name, dtype in self.slots:
            parts.append(self.image[at:offset])
            parts.append(frame if name == "frame" else np.array([values[name]], dtype=dtype))
            at = offset + size
        parts.append(self.image[at:])
        return parts

    @classmethod
    def build(cls, shape: tuple, dtype, opts: WriteOptions,
              color_mode: str = "Mono") -> "SingleFileTemplate | None":
        """A proven template for uncompressed Single-mode frames of *shape* and
        *dtype* written with *opts*, or None (then :class:`NeXusWriter` writes)."""
        if opts.compression != "None" or opts.store_perform:
            return None
        dtype = np.dtype(dtype)
        n = int(np.prod(shape))
        pattern = (np.arange(n, dtype=np.uint64) * 2654435761 % 251).astype(np.uint8)
        frames = [pattern.view(np.uint8).repeat(dtype.itemsize)[:n * dtype.itemsize]
                  .view(dtype).reshape(shape), None]
        frames[1] = np.ascontiguousarray(frames[0][::-1])
        infos = [FrameInfo(123456789, 1.7e9 + 0.123456), FrameInfo(987654, 1.8e9 + 0.654321)]
        try:
            with tempfile.TemporaryDirectory(prefix="adsim-template-") as tmp:
                images = []
                for i, (frame, info) in enumerate(zip(frames, infos)):
                    path = os.path.join(tmp, f"{i}.h5")
                    writer = NeXusWriter(path, shape, dtype, opts, multi=False,
                                         color_mode=color_mode)
                    writer.add(frame, info)
                    writer.close()
                    with open(path, "rb") as f:
                        images.append(f.read())
                with _h5py().File(os.path.join(tmp, "0.h5"), "r") as f:
                    data = f["/entry/instrument/detector/data"]
                    offset = data.id.get_offset()
                    if offset is None or data.chunks is not None:
                        return None
                    slots = [(offset, frames[0].nbytes, "frame", None)]
                    if opts.store_attr:
                        group = f["/entry/instrument/NDAttributes"]
                        for name, dt, _ in _ATTRIBUTES:
                            chunk = group[name].id.get_chunk_info(0)
                            slots.append((chunk.byte_offset, np.dtype(dt).itemsize, name, np.dtype(dt)))
            template = cls(images[0], slots)
            if b"".join(bytes(p) for p in template.parts(frames[0], infos[0])) != images[0]:
                return None
            if b"".join(bytes(p) for p in template.parts(frames[1], infos[1])) != images[1]:
                return None
            return template
        except Exception as exc:                   # never in the way of writing the file
            log.warning("no Single-mode file template for %s %s: %s", shape, dtype, exc)
            return None


_templates: dict = {}
_templates_lock = threading.Lock()


def single_template(shape: tuple, dtype, opts: WriteOptions,
                    color_mode: str = "Mono") -> SingleFileTemplate | None:
    """The template for Single-mode files of *shape*, *dtype* and *opts* (built on
    first use; None where the writer is used). The last few are kept."""
    key = (tuple(shape), np.dtype(dtype).str, opts.compression, opts.store_perform,
           opts.store_attr, os.uname().nodename, color_mode)
    with _templates_lock:
        if key not in _templates:
            if len(_templates) >= 8:
                _templates.pop(next(iter(_templates)))
            _templates[key] = SingleFileTemplate.build(shape, dtype, opts, color_mode)
        return _templates[key]


def write_frames(path: str, frames: list[np.ndarray], infos: list[FrameInfo],
                 opts: WriteOptions, *, multi: bool, color_mode: str = "Mono") -> None:
    """Write a whole file at once (Single mode, or a Capture buffer).

    A multi-frame file that fails part way is closed with the frames written so
    far and :class:`WriteFailed` says how many; a Single-mode file is removed.
    A Single-mode file is written under a hidden temporary name beside *path* and
    renamed when complete, so no reader (nor an IOC killed mid-write) ever leaves a
    half-written file under its real name."""
    if not multi:
        template = single_template(frames[0].shape, frames[0].dtype, opts, color_mode) \
            if len(frames) == 1 else None
        parts = (template.parts(frames[0], infos[0]) if template is not None
                 else [_single_image(frames, infos, opts, color_mode)])
        _write_file(_partial_name(path), path, parts)
        return
    writer = NeXusWriter(path, frames[0].shape, frames[0].dtype, opts, multi=True,
                         color_mode=color_mode)
    try:
        for frame, info in zip(frames, infos):
            writer.add(frame, info)
        writer.close()
    except Exception as exc:
        writer.close_after_failure()
        raise WriteFailed(exc, writer.count, len(frames)) from exc
    except BaseException:
        writer.abort()
        raise


def _single_image(frames, infos, opts: WriteOptions, color_mode: str = "Mono") -> bytes:
    """The bytes of a Single-mode file, made by HDF5 in memory.

    HDF5 writing to a full disk cannot close the file, and h5py then crashes the
    process (SIGSEGV) when the file object goes away: the disk is only written by
    :func:`_write_file`, whose failure is a plain ``OSError``."""
    writer = NeXusWriter("single.h5", frames[0].shape, frames[0].dtype, opts, multi=False,
                         in_memory=True, color_mode=color_mode)
    try:
        for frame, info in zip(frames, infos):
            writer.add(frame, info)
        return writer.image()
    finally:
        writer.file.close()


def _write_file(partial: str, target: str, parts: list) -> None:
    """Write *parts* to *partial*, then rename it *target*; nothing is left on failure."""
    try:
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
        try:
            _write_all(fd, parts)
        finally:
            os.close(fd)
        os.replace(partial, target)
    except BaseException:
        try:
            os.unlink(partial)
        except OSError:
            pass
        raise
