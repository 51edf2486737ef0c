"""Codec1 and Codec2 (NDPluginCodec) in an ADSim IOC process of the module's own
(:class:`adsim_extra.ExtraADSimIOC`, image1 as DOUBLE so every frame type reads back
exactly), driven over Channel Access with caproto's client.

Codec1 compresses the driver's frames, Codec2 (NDArrayPort CODEC1, Mode Decompress)
decompresses them and image1 reads CODEC2: for the lossless codecs the frame equals the
driver's (Peaks, no noise, no peak variation: the same settings give the same frame,
checked), for JPEG it is close. The readbacks follow the C plugin: CompFactor_RBV,
CodecStatus/CodecError (an error passes the frame on as it came), Codec_RBV and
CompressedSize_RBV of what a plugin took, Compressor_RBV of a decompressing Codec. A
compressed frame reaches only compression-aware plugins: image1, Stats1 and HDF1 drop
it and count it; Attr1 takes it; Pva1 publishes it (codec set), and the c-blosc library decodes what it sends.
"""

from __future__ import annotations

import uuid

import blosc
import numpy as np
import pytest
from p4p.client.thread import Context

from adsim_extra import EXTRA_PORT, HOST, ExtraADSimIOC, noiseless_peak, read_image
from simbeamline_iocs.adsim.pva_address import client_conf
from waiting import wait_for

pytestmark = pytest.mark.timeout(300)

SHAPE = (48, 64)   # rows, columns


@pytest.fixture(scope="module")
def ad(tmp_path_factory):
    log = tmp_path_factory.mktemp("codec-ioc") / "ioc.log"
    with ExtraADSimIOC(["--image-ftvl", "DOUBLE"], prefix=f"cdc{uuid.uuid4().hex[:6]}:",
                       log_path=log) as ad:
        ad.camera(size=SHAPE[::-1], sim_mode="Peaks", data_type="UInt16")
        noiseless_peak(ad)
        ad.plugin("image1")
        ad.log = log
        yield ad



def driver_frame(ad, data_type: str) -> np.ndarray:
    ad.put("cam1:DataType", data_type)
    return read_image(ad, "SIM1")


def codecs(ad, compressor: str, **settings):
    """Codec1 compresses SIM1's frames with *compressor*; Codec2 decompresses Codec1's."""
    ad.plugin("Codec1")
    ad.put("Codec1:Mode", "Compress")
    ad.put("Codec1:Compressor", compressor)
    for suffix, value in settings.items():
        ad.put(f"Codec1:{suffix}", value)
    ad.plugin("Codec2")
    ad.put("Codec2:NDArrayPort", "CODEC1")
    ad.put("Codec2:Mode", "Decompress")


def status(ad, name: str) -> tuple[str, str]:
    return ad.string(f"{name}:CodecStatus"), ad.string(f"{name}:CodecError")


CODEC_NAMES = {"Blosc": "blosc", "LZ4": "lz4", "BSLZ4": "bslz4", "Zlib": "zlib",
               "LZ4HDF5": "lz4hdf5"}


@pytest.mark.parametrize("compressor, data_type, settings", [
    ("Blosc", "UInt16", {"BloscCompressor": "LZ4", "BloscCLevel": 5, "BloscShuffle": "Byte"}),
    ("Blosc", "Int32", {"BloscCompressor": "ZSTD", "BloscCLevel": 9, "BloscShuffle": "Bit",
                        "BloscNumThreads": 2}),
    ("LZ4", "UInt16", {}),
    ("BSLZ4", "UInt16", {}),
    ("BSLZ4", "Float32", {}),
    ("Zlib", "UInt8", {"ZlibCLevel": 9}),
    ("LZ4HDF5", "UInt16", {"LZ4HDF5BlockSize": 1000}),
])
def test_lossless_round_trip_through_codec1_and_codec2(ad, compressor, data_type, settings):
    reference = driver_frame(ad, data_type)
    np.testing.assert_array_equal(driver_frame(ad, data_type), reference)   # frames repeat
    assert reference.max() > 50
    codecs(ad, compressor, **settings)
    try:
        out = read_image(ad, "CODEC2")
        np.testing.assert_array_equal(out, reference)
        assert ad.string("image1:DataType_RBV") == data_type
        assert ad.get("image1:UniqueId_RBV") == ad.get("Codec1:UniqueId_RBV")
        assert (ad.string("image1:Codec_RBV"), ad.get("image1:CompressedSize_RBV")) == \
            ("", ad.get("image1:ArraySize_RBV"))
        assert status(ad, "Codec1") == ("Success", "")
        assert status(ad, "Codec2") == ("Success", "")
        # Codec2 took the compressed frame: its codec, its size; the sizes its own
        nbytes = reference.size * np.dtype(data_type.lower()).itemsize
        assert ad.string("Codec2:Codec_RBV") == CODEC_NAMES[compressor]
        assert ad.get("Codec2:ArraySize_RBV") == nbytes
        assert ad.string("Codec2:DataType_RBV") == data_type
        compressed = ad.get("Codec2:CompressedSize_RBV")
        assert 0 < compressed < nbytes
        factor = ad.get("Codec1:CompFactor_RBV")
        assert factor > 1 and factor == pytest.approx(nbytes / compressed)
        assert ad.get("Codec2:CompFactor_RBV") == pytest.approx(factor)
        assert ad.string("Codec2:Compressor_RBV") == compressor   # what it found
        assert ad.string("Codec1:Codec_RBV") == ""                  # Codec1 took raw frames
        if compressor == "LZ4HDF5":       # the block size the frame's header says
            assert ad.get("Codec2:LZ4HDF5BlockSize_RBV") == 1000
    finally:
        for name in ("Codec1", "Codec2"):
            ad.put(f"{name}:EnableCallbacks", "Disable")


def test_jpeg_round_trip_is_close_and_quality_matters(ad):
    reference = driver_frame(ad, "UInt8")
    codecs(ad, "JPEG", JPEGQuality=95)
    try:
        out = read_image(ad, "CODEC2")
        assert ad.string("image1:DataType_RBV") == "UInt8"
        error = np.abs(out - reference)
        assert error.mean() < 2 and error.max() < 40
        good = ad.get("Codec1:CompFactor_RBV")
        assert good > 1 and status(ad, "Codec1") == ("Success", "")
        assert ad.string("Codec2:Codec_RBV") == "jpeg"
        assert ad.string("Codec2:Compressor_RBV") == "JPEG"
        ad.put("Codec1:JPEGQuality", 5)
        rough = read_image(ad, "CODEC2")
        assert ad.get("Codec1:CompFactor_RBV") > good
        assert np.abs(rough - reference).mean() > error.mean()
        ad.put("Codec1:JPEGQuality", 1000)                  # clamped, as writeInt32 does
        assert ad.get("Codec1:JPEGQuality_RBV") == 100
    finally:
        for name in ("Codec1", "Codec2"):
            ad.put(f"{name}:EnableCallbacks", "Disable")


def test_jpeg_of_uint16_is_refused_and_the_frame_goes_on(ad):
    reference = driver_frame(ad, "UInt16")
    codecs(ad, "JPEG")
    try:
        out = read_image(ad, "CODEC2")
        assert status(ad, "Codec1") == ("Error", "JPEG only supports 8-bit data")
        assert ad.get("Codec1:CompFactor_RBV") == 1.0
        # the C plugin passes the frame it could not compress on as it came
        np.testing.assert_array_equal(out, reference)
        assert ad.string("Codec2:Codec_RBV") == ""
        assert ad.string("Codec2:Compressor_RBV") == "None"   # nothing to decompress
        assert status(ad, "Codec2") == ("Success", "")
        # a good frame again clears the error
        ad.put("Codec1:Compressor", "LZ4")
        np.testing.assert_array_equal(read_image(ad, "CODEC2"), reference)
        assert status(ad, "Codec1") == ("Success", "")
    finally:
        for name in ("Codec1", "Codec2"):
            ad.put(f"{name}:EnableCallbacks", "Disable")


@pytest.mark.parametrize("settings, expected", [
    ({"Compressor": "Blosc", "BloscCompressor": "SNAPPY"},
     ("Error", "Unsupported Blosc compressor snappy")),
])
def test_unsupported_choices_say_why(ad, settings, expected):
    reference = driver_frame(ad, "UInt16")
    codecs(ad, "None", **settings)
    try:
        np.testing.assert_array_equal(read_image(ad, "CODEC2"), reference)
        assert status(ad, "Codec1") == expected
    finally:
        for name in ("Codec1", "Codec2"):
            ad.put(f"{name}:EnableCallbacks", "Disable")


def test_compressing_a_compressed_frame_is_a_warning(ad):
    driver_frame(ad, "UInt16")
    codecs(ad, "LZ4")
    ad.put("Codec2:Mode", "Compress")
    ad.put("Codec2:Compressor", "Blosc")
    ad.put("Codec2:EnableCallbacks", "Enable")
    try:
        before = ad.get("Codec2:ArrayCounter_RBV")
        ad.acquire()
        wait_for(lambda: ad.get("Codec2:ArrayCounter_RBV") == before + 1, 30,
                 "Codec2 to take Codec1's frame")
        assert status(ad, "Codec2") == ("Warning", "Array already compressed")
        assert ad.string("Codec2:CodecStatus") == "Warning"
    finally:
        for name in ("Codec1", "Codec2"):
            ad.put(f"{name}:EnableCallbacks", "Disable")


def test_compressed_frames_are_dropped_by_plugins_that_are_not_compression_aware(ad):
    """image1 and Stats1 on CODEC1 count each compressed frame in DroppedArrays and
    process none (NDPluginDriver::driverCallback); HDF1 too (compression aware in ADCore,
    which writes such frames as chunks: not simulated); the IOC's log says why."""
    driver_frame(ad, "UInt16")
    codecs(ad, "BSLZ4")
    ad.put("image1:NDArrayPort", "CODEC1")
    plugins = ("image1", "Stats1", "HDF1")
    for name in plugins[1:]:
        ad.plugin(name)
        ad.put(f"{name}:NDArrayPort", "CODEC1")
    counters = {name: ad.get(f"{name}:ArrayCounter_RBV") for name in plugins}
    dropped = {name: ad.get(f"{name}:DroppedArrays_RBV") for name in plugins}
    try:
        for n in (1, 2):
            ad.acquire()
            for name in plugins:
                wait_for(lambda: ad.get(f"{name}:DroppedArrays_RBV") == dropped[name] + n, 30,
                         f"{name} to drop compressed frame {n}")
        assert {name: ad.get(f"{name}:ArrayCounter_RBV") for name in counters} == counters
        log = ad.log.read_text()
        assert "Stats1 got a compressed array (codec bslz4) and is not compression aware" in log
        assert "HDF1 got a compressed array (codec bslz4) and would be written as HDF5 chunks" \
            in log
    finally:
        ad.put("image1:NDArrayPort", "SIM1")
        for name in ("Codec1", "Codec2") + plugins[1:]:
            ad.put(f"{name}:EnableCallbacks", "Disable")
        for name in plugins[1:]:
            ad.put(f"{name}:NDArrayPort", "SIM1")


def test_attr1_is_compression_aware(ad):
    """Attr1 (compression aware in ADCore: it reads attributes, not pixels) takes
    Codec1's compressed frames: it counts them, shows their codec and size, and reads
    their NDArrayUniqueId."""
    driver_frame(ad, "UInt16")
    codecs(ad, "LZ4")
    ad.plugin("Attr1")
    ad.put("Attr1:NDArrayPort", "CODEC1")
    ad.put("Attr1:1:AttrName", "NDArrayUniqueId")
    dropped = ad.get("Attr1:DroppedArrays_RBV")
    try:
        ad.acquire()
        uid = ad.get("Codec1:UniqueId_RBV")
        wait_for(lambda: ad.get("Attr1:UniqueId_RBV") == uid, 30, "Attr1 to take the frame")
        assert ad.get("Attr1:1:Value_RBV") == uid
        assert ad.string("Attr1:Codec_RBV") == "lz4"
        assert 0 < ad.get("Attr1:CompressedSize_RBV") < ad.get("Attr1:ArraySize_RBV")
        assert ad.get("Attr1:DroppedArrays_RBV") == dropped
    finally:
        for name in ("Codec1", "Codec2", "Attr1"):
            ad.put(f"{name}:EnableCallbacks", "Disable")
        ad.put("Attr1:NDArrayPort", "SIM1")


def test_pva1_publishes_compressed_frames_that_blosc_decodes(ad):
    """Pva1 on CODEC1: the NTNDArray carries the compressed bytes (ubyteValue), codec
    "blosc", the uncompressed type in codec.parameters (pvUShort, 6) and the frame's
    dims; c-blosc's decompress gives the driver's frame."""
    reference = driver_frame(ad, "UInt16")
    codecs(ad, "Blosc", BloscCompressor="ZLIB", BloscShuffle="Byte")
    ad.plugin("Pva1")
    ad.put("Pva1:NDArrayPort", "CODEC1")
    name = ad.name("Pva1:Image")
    try:
        with Context("pva", conf=client_conf(HOST, EXTRA_PORT), useenv=False, nt=False) as ctx:
            before = ad.get("Pva1:ArrayCounter_RBV")
            ad.acquire()
            wait_for(lambda: ad.get("Pva1:ArrayCounter_RBV") == before + 1, 30,
                     "Pva1 to take Codec1's frame")
            uid = ad.get("Codec1:UniqueId_RBV")
            value = wait_for(lambda: (v := ctx.get(name, timeout=10)).uniqueId == uid and v,
                             30, f"frame {uid} over PVA")
        assert value.codec.name == "blosc" and value.codec.parameters == 6
        payload = np.asarray(value.value)
        assert payload.dtype == np.uint8 and value.compressedSize == payload.size
        assert value.uncompressedSize == reference.size * 2 > payload.size
        assert [d.size for d in value.dimension] == [SHAPE[1], SHAPE[0]]
        frame = np.frombuffer(blosc.decompress(payload.tobytes()), dtype=np.uint16)
        np.testing.assert_array_equal(frame.reshape(SHAPE), reference)
    finally:
        for plugin in ("Codec1", "Codec2", "Pva1"):
            ad.put(f"{plugin}:EnableCallbacks", "Disable")
        ad.put("Pva1:NDArrayPort", "SIM1")
