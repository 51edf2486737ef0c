"""The plain part of NDPluginCodec (:mod:`simbeamline_iocs.adsim.codec`): compress and
decompress, no IOC.

Round trips for every lossless codec and data type; the bytes checked against decoders
that are not the ones the codec uses (the HDF5 filters hdf5plugin bundles, through
h5py's direct chunk reads and writes: bitshuffle+LZ4 and LZ4HDF5 bytes equal the
filters', Blosc and LZ4 read back through them), so a client decoding the real IOC's compressed frames decodes these; JPEG
lossy but close and 8-bit only, with the C plugin's messages and statuses.
"""

from __future__ import annotations

import struct

import h5py
import hdf5plugin
import numpy as np
import pytest

from simbeamline_iocs.adsim.codec import (BLOSC_COMPRESSORS, BLOSC_SHUFFLES, BloscSettings,
                                          CodecError, compress, compress_array, decompress,
                                          decompress_array, lz4hdf5_block_size)
from simbeamline_iocs.adsim.plugins import NDArray

DTYPES = (np.uint8, np.int8, np.uint16, np.int16, np.uint32, np.int32, np.float32, np.float64)


def peaks(shape=(48, 64), dtype=np.uint16, top=200.0) -> np.ndarray:
    """A smooth frame with a peak, whole numbers in any type (compressible, as the
    simDetector's Peaks frames are)."""
    y, x = np.mgrid[:shape[0], :shape[1]]
    frame = top * np.exp(-((x - shape[1] / 3) ** 2 / 60 + (y - shape[0] / 2) ** 2 / 30))
    return np.round(frame).astype(dtype)


@pytest.mark.parametrize("codec", ["zlib", "blosc", "lz4", "lz4hdf5", "bslz4"])
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_lossless_round_trip(codec, dtype):
    frame = peaks(dtype=dtype)
    payload = compress(frame, codec)
    assert isinstance(payload, bytes) and len(payload) < frame.nbytes, codec
    out, mode = decompress(payload, codec, frame.shape, frame.dtype)
    assert mode is None and out.dtype == frame.dtype
    np.testing.assert_array_equal(out, frame)


@pytest.mark.parametrize("shuffle", list(BLOSC_SHUFFLES))
@pytest.mark.parametrize("compressor", [c for c in BLOSC_COMPRESSORS if c != "SNAPPY"])
def test_blosc_settings_decoded_by_hdf5plugins_blosc_filter(tmp_path, compressor, shuffle):
    """Each BloscCompressor x BloscShuffle makes a c-blosc 1 frame whose header says the
    element size, and the HDF5 Blosc filter (its own c-blosc) reads it back."""
    frame = peaks(dtype=np.uint16)
    payload = compress(frame, "blosc", blosc=BloscSettings(compressor, 5, shuffle, 2))
    version, _, flags, typesize, nbytes = struct.unpack("<BBBBI", payload[:8])
    assert typesize == 2 and nbytes == frame.nbytes
    # flags bit 0: byte shuffle, bit 2: bit shuffle (c-blosc's header)
    assert (flags & 1, flags >> 2 & 1) == {"None": (0, 0), "Byte": (1, 0), "Bit": (0, 1)}[shuffle]
    np.testing.assert_array_equal(
        via_hdf5_filter(tmp_path, frame, payload, hdf5plugin.Blosc()), frame)


def test_blosc_levels_and_unsupported_compressor():
    frame = peaks(shape=(96, 128), dtype=np.uint16)
    sizes = [len(compress(frame, "blosc", blosc=BloscSettings("LZ4", level, "Byte")))
             for level in (0, 9)]
    assert sizes[0] > frame.nbytes > sizes[1]         # level 0: stored, with a header
    with pytest.raises(CodecError, match="^Unsupported Blosc compressor snappy$") as err:
        compress(frame, "blosc", blosc=BloscSettings("SNAPPY"))
    assert err.value.status == "Error"


def via_hdf5_filter(tmp_path, frame, chunk: bytes, compression) -> np.ndarray:
    """*chunk* written raw as the one chunk of a dataset with *compression*'s filter,
    read back through that filter."""
    path = tmp_path / "chunk.h5"
    with h5py.File(path, "w") as f:
        ds = f.create_dataset("d", shape=frame.shape, dtype=frame.dtype, chunks=frame.shape,
                              **compression)
        ds.id.write_direct_chunk((0,) * frame.ndim, chunk)
    with h5py.File(path, "r") as f:
        return f["d"][()]


@pytest.mark.parametrize("dtype", (np.uint8, np.uint16, np.uint32, np.float64),
                         ids=lambda d: np.dtype(d).name)
def test_bslz4_is_bshuf_compress_lz4(tmp_path, dtype):
    """The HDF5 bitshuffle filter (LZ4) stores a 12-byte header (the size in bytes, the
    block size in bytes, big-endian) then bshuf_compress_lz4's output: ours, with that
    header, reads back through hdf5plugin's filter, and ours decodes what it writes."""
    frame = peaks(shape=(40, 52), dtype=dtype)      # not a multiple of the block size
    payload = compress(frame, "bslz4")
    path = tmp_path / "bslz4.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("d", data=frame, chunks=frame.shape,
                         **hdf5plugin.Bitshuffle(cname="lz4"))
    with h5py.File(path, "r") as f:
        _, reference = f["d"].id.read_direct_chunk((0, 0))
    total, block_bytes = struct.unpack(">QI", reference[:12])
    assert total == frame.nbytes
    np.testing.assert_array_equal(
        decompress(reference[12:], "bslz4", frame.shape, frame.dtype)[0], frame)
    np.testing.assert_array_equal(via_hdf5_filter(
        tmp_path, frame, reference[:12] + payload, hdf5plugin.Bitshuffle(cname="lz4")), frame)


def test_lz4_is_one_raw_block(tmp_path):
    """LZ4_compress_default's raw block (no size header): framed as the HDF5 LZ4 filter
    frames one block (sizes big-endian), hdf5plugin's LZ4 decodes it."""
    frame = peaks(dtype=np.uint16)
    payload = compress(frame, "lz4")
    framed = struct.pack(">QII", frame.nbytes, frame.nbytes, len(payload)) + payload
    np.testing.assert_array_equal(via_hdf5_filter(tmp_path, frame, framed, hdf5plugin.LZ4()),
                                  frame)


def test_jpeg_is_8_bit_only_lossy_and_close():
    with pytest.raises(CodecError, match="^JPEG only supports 8-bit data$") as err:
        compress(peaks(dtype=np.uint16), "jpeg")
    assert err.value.status == "Error"
    frame = peaks(dtype=np.uint8)
    sizes = {}
    for quality in (10, 95):
        payload = compress(frame, "jpeg", jpeg_quality=quality)
        assert payload[:2] == b"\xff\xd8"                    # a JPEG (SOI marker)
        sizes[quality] = len(payload)
        out, mode = decompress(payload, "jpeg", frame.shape, frame.dtype)
        assert mode == "Mono" and out.dtype == np.uint8 and out.shape == frame.shape
        error = np.abs(out.astype(int) - frame)
        assert error.mean() < (3 if quality == 95 else 8), quality
    assert sizes[10] < sizes[95]
    # quality out of 1..100 is clamped, as jpeg_clamp_quality does
    assert compress(frame, "jpeg", jpeg_quality=500) == compress(frame, "jpeg", jpeg_quality=100)


@pytest.mark.parametrize("mode", ["RGB1", "RGB2", "RGB3"])
def test_jpeg_colour_comes_back_rgb1(mode):
    """An RGB frame in any layout is compressed as RGB; decompressJPEG gives RGB1."""
    grey = peaks(dtype=np.uint8)
    rgb1 = np.stack([grey, grey // 2, np.full_like(grey, 40)], axis=2)     # (y, x, 3)
    layout = {"RGB1": rgb1, "RGB2": np.moveaxis(rgb1, 2, 1), "RGB3": np.moveaxis(rgb1, 2, 0)}
    payload = compress(np.ascontiguousarray(layout[mode]), "jpeg", color_mode=mode,
                       jpeg_quality=95)
    out, out_mode = decompress(payload, "jpeg", layout[mode].shape, np.uint8)
    assert out_mode == "RGB1" and out.shape == rgb1.shape
    assert np.abs(out.astype(int) - rgb1).mean() < 4


def test_compressed_ndarray_keeps_dims_type_and_refuses_compressing_twice():
    frame = peaks(dtype=np.int32)
    array = NDArray(frame, 7, 1.5e9)
    assert (array.codec, array.compressed_size) == ("", frame.nbytes)
    packed = compress_array(array, "blosc")
    assert packed.codec == "blosc" and packed.compressed_size == len(packed.compressed)
    assert packed.compressed_size < frame.nbytes
    assert (packed.dims, packed.data_type, packed.unique_id) == (array.dims, "Int32", 7)
    assert packed.data.nbytes == frame.nbytes and not packed.data.flags.writeable
    with pytest.raises(CodecError, match="already compressed") as err:
        compress_array(packed, "lz4")
    assert err.value.status == "Warning"
    back = decompress_array(packed)
    assert back.codec == "" and back.compressed is None
    np.testing.assert_array_equal(back.data, frame)


@pytest.mark.parametrize("codec, message", [("blosc", "Failed to Blosc decompress"),
                                            ("lz4", "Failed to LZ4 decompress"),
                                            ("bslz4", "Failed to BSLZ4 decompress"),
                                            ("lz4hdf5", "Failed to LZ4HDF5 decompress"),
                                            ("zlib", "zlib uncompress failed"),
                                            ("jpeg", "Error decoding JPEG"),
                                            ("snappy", "Unexpected codec: 'snappy'")])
def test_corrupt_bytes_are_refused(codec, message):
    with pytest.raises(CodecError, match=message):
        decompress(b"\x01\x02not compressed data" * 3, codec, (48, 64), np.uint16)


def lz4hdf5_blocks(payload: bytes) -> list[int]:
    """The stored lengths of an lz4hdf5 frame's blocks, walking its framing."""
    size, block = struct.unpack(">QI", payload[:12])
    lengths, pos, done = [], 12, 0
    while done < size:
        (length,) = struct.unpack(">I", payload[pos:pos + 4])
        lengths.append(length)
        pos, done = pos + 4 + length, done + min(block, size - done)
    assert pos == len(payload)
    return lengths


@pytest.mark.parametrize("block", [0, 1000, 6144])
def test_lz4hdf5_is_the_hdf5_lz4_filters_framing(tmp_path, block):
    """LZ4HDF5 frames as hdf5plugin's LZ4 filter (H5Zlz4, whose framing ADSupport's
    lz4hdf5 copies) does for the same block size: the same header and number of
    blocks; the filter reads ours back, and ours decodes the filter's. (The LZ4 bytes
    themselves differ with the LZ4 library's version.) Block 0 is one block of the
    whole frame; 1000 leaves a short last block."""
    frame = peaks(dtype=np.uint16)
    payload = compress(frame, "lz4hdf5", lz4hdf5_block=block)
    path = tmp_path / "lz4.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("d", data=frame, chunks=frame.shape, **hdf5plugin.LZ4(nbytes=block))
    with h5py.File(path, "r") as f:
        _, reference = f["d"].id.read_direct_chunk((0, 0))
    assert payload[:12] == reference[:12]
    assert len(lz4hdf5_blocks(payload)) == len(lz4hdf5_blocks(reference)) \
        == -(-frame.nbytes // (block or frame.nbytes))
    assert lz4hdf5_block_size(payload) == (block or frame.nbytes)
    np.testing.assert_array_equal(
        via_hdf5_filter(tmp_path, frame, payload, hdf5plugin.LZ4(nbytes=block)), frame)
    for data in (payload, reference):
        np.testing.assert_array_equal(
            decompress(data, "lz4hdf5", frame.shape, frame.dtype)[0], frame)


def test_lz4hdf5_stores_blocks_lz4_does_not_shrink():
    noise = np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8)
    payload = compress(noise, "lz4hdf5", lz4hdf5_block=1024)
    size, block, first = struct.unpack(">QII", payload[:16])
    assert (size, block, first) == (4096, 1024, 1024)          # stored as it is
    assert payload[16:16 + 1024] == noise[:1024].tobytes()
    np.testing.assert_array_equal(decompress(payload, "lz4hdf5", (4096,), np.uint8)[0], noise)
