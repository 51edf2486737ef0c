"""NDPluginCodec (Codec1, Codec2): frames compressed or decompressed as ADCore's does.

:func:`compress` and :func:`decompress` are the plain part (numpy arrays in, bytes out
and back); :class:`CodecPlugin` reads its records (Mode, Compressor, JPEGQuality,
ZlibCLevel, BloscCompressor/CLevel/Shuffle/NumThreads, LZ4HDF5BlockSize), passes the
result downstream and posts CompFactor_RBV, CodecStatus and CodecError as
NDPluginCodec.cpp does.

The compressed formats are those of the C plugin, made with the same C libraries (in
the versions their wheels bundle), so a client that decodes the real IOC's compressed
frames (over PV Access, say) decodes these:
  jpeg   baseline JPEG of an 8-bit frame (Pillow's libjpeg), quality JPEGQuality; Mono
         as greyscale, RGB1/2/3 as RGB; decompressed to UInt8 Mono or RGB1 (lossy)
  zlib   a zlib stream (compress2 at ZlibCLevel), Python's zlib module
  blosc  a c-blosc 1.x frame (blosc_compress_ctx, typesize = bytes per element), the
         ``blosc`` package
  lz4    one raw LZ4 block (LZ4_compress_default, no size header), the ``lz4`` package
  bslz4  bitshuffle + LZ4 (bshuf_compress_lz4, default block size, no header), the
         ``bitshuffle`` package (its C extension; the HDF5 filter is not used)
  lz4hdf5  the HDF5 LZ4 filter's framing (ADSupport's compress_lz4hdf5): a 12-byte
         big-endian header (size, block size: LZ4HDF5BlockSize, 0 for 1 GiB, at most the
         size), then per block its 4-byte big-endian length and the raw LZ4 block, or
         the block itself where LZ4 saves nothing; framed here around ``lz4`` blocks

A compressed frame is an :class:`~.plugins.NDArray` with ``codec`` set and ``compressed``
holding the bytes; its dims and data type stay those of the uncompressed frame, as in
the real NDArray. Only plugins that are compression aware in ADCore take it (Codec,
Pva, Attribute); the others drop it and count it in DroppedArrays (see
:meth:`.plugins.Plugin.receive`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import struct
import threading
import zlib

import numpy as np

from .plugins import NDArray, Plugin

#: Compressor's enum strings (NDCodec.template) -> NDCodecName (NDCodec.cpp)
CODEC_NAMES = {"None": "", "JPEG": "jpeg", "Zlib": "zlib", "Blosc": "blosc", "LZ4": "lz4",
               "LZ4HDF5": "lz4hdf5", "BSLZ4": "bslz4"}
#: NDCodecName -> Compressor's enum string
COMPRESSORS = {name: choice for choice, name in CODEC_NAMES.items()}
#: BloscCompressor's enum strings -> NDCodecBloscCompName (c-blosc's compressor names)
BLOSC_COMPRESSORS = {"BloscLZ": "blosclz", "LZ4": "lz4", "LZ4HC": "lz4hc",
                     "SNAPPY": "snappy", "ZLIB": "zlib", "ZSTD": "zstd"}
#: BloscShuffle's enum strings -> c-blosc's shuffle codes (BLOSC_NOSHUFFLE, ...)
BLOSC_SHUFFLES = {"None": 0, "Byte": 1, "Bit": 2}

_JPEG_COLOR_AXIS = {"RGB1": 2, "RGB2": 1, "RGB3": 0}
#: python-blosc sets the number of threads for the whole library (c-blosc 1's global
#: context): Codec1 and Codec2 working at once in executor threads take turns
_BLOSC_LOCK = threading.Lock()
#: lz4hdf5's DEFAULT_BLOCK_SIZE, taken when LZ4HDF5BlockSize is 0
LZ4HDF5_DEFAULT_BLOCK = 1 << 30


class CodecError(Exception):
    """A frame the codec refuses; *status* is the CodecStatus it sets ("Error" or
    "Warning"), the message is the C plugin's CodecError text."""

    def __init__(self, message: str, status: str = "Error"):
        super().__init__(message)
        self.status = status


@dataclasses.dataclass(frozen=True)
class BloscSettings:
    """Blosc's settings as the C plugin takes them from its records."""

    compressor: str = "BloscLZ"   #: a key of :data:`BLOSC_COMPRESSORS`
    clevel: int = 5
    shuffle: str = "None"         #: a key of :data:`BLOSC_SHUFFLES`
    num_threads: int = 1


def _jpeg_encode(data: np.ndarray, quality: int, color_mode: str) -> bytes:
    from PIL import Image

    if data.dtype not in (np.uint8, np.int8):
        raise CodecError("JPEG only supports 8-bit data")
    pixels = data.view(np.uint8)
    if data.ndim == 2:
        image = Image.fromarray(np.ascontiguousarray(pixels), mode="L")
    elif data.ndim == 3 and color_mode in _JPEG_COLOR_AXIS:
        rgb = np.moveaxis(pixels, _JPEG_COLOR_AXIS[color_mode], 2)     # (y, x, colour)
        if rgb.shape[2] != 3:
            raise CodecError("Unsupported array structure")
        image = Image.fromarray(np.ascontiguousarray(rgb), mode="RGB")
    else:
        raise CodecError("Unsupported array structure")
    out = io.BytesIO()
    # jpeg_set_quality(clamped 1..100), libjpeg's default 4:2:0 sampling for colour
    image.save(out, format="JPEG", quality=min(max(int(quality), 1), 100))
    return out.getvalue()


def lz4hdf5_compress(raw: bytes, block_size: int = 0) -> bytes:
    """*raw* as ADSupport's compress_lz4hdf5 frames it (see the module's docstring)."""
    import lz4.block

    nbytes = len(raw)
    block = block_size if block_size > 0 else LZ4HDF5_DEFAULT_BLOCK
    block = min(block, nbytes)
    parts = [struct.pack(">QI", nbytes, block)]
    for start in range(0, nbytes, max(block, 1)):
        chunk = raw[start:start + block]
        packed = lz4.block.compress(chunk, mode="default", store_size=False)
        if len(packed) >= len(chunk):          # LZ4 saved nothing: the block as it is
            packed = chunk
        parts += [struct.pack(">I", len(packed)), packed]
    return b"".join(parts)


def lz4hdf5_block_size(payload: bytes) -> int:
    """The block size an lz4hdf5 frame's header says (at most its size), as
    decompress_lz4hdf5 reports it."""
    size, block = struct.unpack(">QI", payload[:12])
    return int(min(block, size))


def lz4hdf5_decompress(payload: bytes) -> bytes:
    """The bytes an lz4hdf5 frame holds (decompress_lz4hdf5)."""
    import lz4.block

    size = struct.unpack(">Q", payload[:8])[0]
    block = lz4hdf5_block_size(payload)
    out, pos = [], 12
    done = 0
    while done < size:
        block = min(block, size - done)
        (length,) = struct.unpack(">I", payload[pos:pos + 4])
        data = payload[pos + 4:pos + 4 + length]
        if len(data) != length:
            raise ValueError("truncated block")
        out.append(data if length == block else
                   lz4.block.decompress(data, uncompressed_size=block))
        pos += 4 + length
        done += block
    return b"".join(out)


def compress(data: np.ndarray, codec: str, *, color_mode: str = "Mono", jpeg_quality: int = 85,
             zlib_level: int = 6, blosc: BloscSettings = BloscSettings(),
             lz4hdf5_block: int = 0) -> bytes:
    """*data* (a frame, rows y) compressed with *codec* (an NDCodecName: "jpeg",
    "zlib", "blosc", "lz4", "bslz4"), as the C plugin's compressXxx makes it; raises
    :class:`CodecError` with the C plugin's message for what it refuses."""
    if codec == "jpeg":
        return _jpeg_encode(data, jpeg_quality, color_mode)
    raw = np.ascontiguousarray(data)
    if codec == "zlib":
        return zlib.compress(raw.tobytes(), min(max(int(zlib_level), 0), 9))
    if codec == "blosc":
        import blosc as cblosc

        name = BLOSC_COMPRESSORS.get(blosc.compressor)
        if name is None or name not in cblosc.compressor_list():
            raise CodecError(f"Unsupported Blosc compressor {name or blosc.compressor}")
        try:
            with _BLOSC_LOCK:
                cblosc.set_nthreads(max(int(blosc.num_threads), 1))
                return cblosc.compress(raw.tobytes(), typesize=raw.dtype.itemsize,
                                       clevel=min(max(int(blosc.clevel), 0), 9),
                                       shuffle=BLOSC_SHUFFLES.get(blosc.shuffle, 0), cname=name)
        except Exception as exc:
            raise CodecError("Internal Blosc error") from exc
    if codec == "lz4":
        import lz4.block

        return lz4.block.compress(raw.tobytes(), mode="default", store_size=False)
    if codec == "bslz4":
        import bitshuffle

        out = bitshuffle.compress_lz4(raw.reshape(-1), 0)
        return out.tobytes()
    if codec == "lz4hdf5":
        if raw.nbytes > 2**31 - 1:
            raise CodecError("Internal LZ4HDF5 error")   # chunks up to 2 GB only
        return lz4hdf5_compress(raw.tobytes(), max(int(lz4hdf5_block), 0))
    raise CodecError(f"Unexpected codec: '{codec}'")


def decompress(payload: bytes, codec: str, shape: tuple, dtype,
               *, num_threads: int = 1) -> tuple[np.ndarray, str | None]:
    """The frame of *shape* and *dtype* that *payload* (made by :func:`compress` with
    *codec*) holds, and the colour mode it comes back in (None: unchanged). JPEG
    comes back as UInt8, Mono or RGB1, as decompressJPEG gives it. Raises
    :class:`CodecError` with the C plugin's message if the bytes do not decode."""
    dtype = np.dtype(dtype)
    count = int(np.prod(shape))
    if codec == "jpeg":
        from PIL import Image

        try:
            image = Image.open(io.BytesIO(payload))
            image.load()
        except Exception as exc:
            raise CodecError("Error decoding JPEG") from exc
        pixels = np.asarray(image, dtype=np.uint8)
        return pixels, ("Mono" if pixels.ndim == 2 else "RGB1")
    try:
        if codec == "zlib":
            raw = zlib.decompress(payload)
        elif codec == "blosc":
            import blosc as cblosc

            with _BLOSC_LOCK:
                cblosc.set_nthreads(max(int(num_threads), 1))
                raw = cblosc.decompress(payload)
        elif codec == "lz4":
            import lz4.block

            raw = lz4.block.decompress(payload, uncompressed_size=count * dtype.itemsize)
        elif codec == "lz4hdf5":
            raw = lz4hdf5_decompress(payload)
        elif codec == "bslz4":
            import bitshuffle

            out = bitshuffle.decompress_lz4(np.frombuffer(payload, dtype=np.uint8),
                                            (count,), dtype, 0)
            return out.reshape(shape), None
        else:
            raise CodecError(f"Unexpected codec: '{codec}'")
    except CodecError:
        raise
    except Exception as exc:
        label = {"zlib": "zlib uncompress failed", "blosc": "Failed to Blosc decompress",
                 "lz4": "Failed to LZ4 decompress", "bslz4": "Failed to BSLZ4 decompress",
                 "lz4hdf5": "Failed to LZ4HDF5 decompress"}[codec]
        raise CodecError(f"{label}: {exc}") from exc
    if len(raw) != count * dtype.itemsize:
        raise CodecError(f"{codec} data decompressed to {len(raw)} bytes, "
                         f"expected {count * dtype.itemsize}")
    return np.frombuffer(raw, dtype=dtype).reshape(shape).copy(), None


def compress_array(array: NDArray, codec: str, **settings) -> NDArray:
    """*array* compressed (its dims and data type kept: see :meth:`NDArray.compressed_frame`)."""
    if array.codec:
        raise CodecError("Array is already compressed", "Warning")
    payload = compress(array.data, codec, color_mode=array.color_mode, **settings)
    return NDArray.compressed_frame(array, codec, payload)


def decompress_array(array: NDArray, num_threads: int = 1) -> NDArray:
    """*array* (compressed) decompressed: the frame its bytes hold."""
    data, mode = decompress(array.compressed, array.codec, array.data.shape, array.data.dtype,
                            num_threads=num_threads)
    return NDArray(data, array.unique_id, array.timestamp, mode or array.color_mode)


class CodecPlugin(Plugin):
    """Codec1/Codec2: Mode Compress compresses each frame with Compressor (None passes
    it on), Mode Decompress decompresses whatever codec a frame carries (and shows it in
    Compressor_RBV); CompFactor_RBV is uncompressed/compressed bytes. A frame that
    fails is passed on as it came, CodecStatus and CodecError saying why."""

    compression_aware = True

    def __init__(self, chain, name):
        super().__init__(chain, name)
        self._factor = 1.0      # CompFactor_RBV of the frame in hand
        for field, low, high in (("JPEGQuality", 1, 100), ("ZlibCLevel", 0, 9),
                                 ("BloscCLevel", 0, None), ("BloscNumThreads", 1, None),
                                 ("LZ4HDF5BlockSize", 0, None)):
            self.ioc.register(self.pv(field), self._clamp(low, high))

    @staticmethod
    def _clamp(low, high):
        """writeInt32's clamping of the codec settings (NDPluginCodec.cpp)."""
        async def handler(value):
            value = max(int(value), low)
            return value if high is None else min(value, high)
        return handler

    def _settings(self) -> dict:
        return dict(jpeg_quality=int(self.get("JPEGQuality")),
                    zlib_level=int(self.get("ZlibCLevel")),
                    lz4hdf5_block=int(self.get("LZ4HDF5BlockSize")),
                    blosc=BloscSettings(self.get("BloscCompressor"), int(self.get("BloscCLevel")),
                                        self.get("BloscShuffle"),
                                        int(self.get("BloscNumThreads"))))

    async def handle(self, array: NDArray) -> NDArray:
        loop = asyncio.get_running_loop()
        result, status, message, factor = array, "Success", "", 1.0
        readbacks = {}
        try:
            if self.get("Mode") == "Compress":
                codec = CODEC_NAMES.get(self.get("Compressor"), "")
                if codec:
                    if array.codec:
                        raise CodecError("Array already compressed", "Warning")
                    settings = self._settings()
                    result = await loop.run_in_executor(
                        None, lambda: compress_array(array, codec, **settings))
                    factor = array.data.nbytes / max(result.compressed_size, 1)
            elif array.codec:
                if array.codec in COMPRESSORS:
                    readbacks["Compressor_RBV"] = COMPRESSORS[array.codec]
                if array.codec == "lz4hdf5" and len(array.compressed) >= 12:
                    readbacks["LZ4HDF5BlockSize_RBV"] = lz4hdf5_block_size(array.compressed)
                threads = int(self.get("BloscNumThreads"))
                result = await loop.run_in_executor(None, decompress_array, array, threads)
                factor = result.data.nbytes / max(array.compressed_size, 1)
            else:
                readbacks["Compressor_RBV"] = "None"
        except CodecError as exc:
            result, status, message = array, exc.status, str(exc)
        await self.post({**readbacks, "CodecError": message, "CodecStatus": status})
        # CompFactor after the frame went on, as endProcessCallbacks then setDoubleParam
        self._factor = factor
        return result

    async def _process(self, array: NDArray) -> None:
        self._factor = 1.0
        await super()._process(array)
        await self.post({"CompFactor_RBV": self._factor})
