"""BadPix1 (NDPluginBadPixel): the numpy part against pixels written out by hand,
then on an ADSim IOC of the module's own over Channel Access: a JSON file named in
BadPix1:FileName fixes the pixels of the frames BadPix1 passes on; a broken file
changes nothing."""

from __future__ import annotations

import json
import uuid

import numpy as np
import pytest

from adsim_extra import ExtraADSimIOC, noiseless_peak, read_image
from simbeamline_iocs.adsim.bad_pixel import fix_bad_pixels, read_bad_pixels

pytestmark = pytest.mark.timeout(300)

BAD = {"Bad pixels": [{"Pixel": [3, 2], "Set": 7},
                      {"Pixel": [5, 4], "Replace": [-1, 0]},
                      {"Pixel": [1, 1], "Median": [1, 1]},
                      {"Pixel": [2, 1], "Set": 300},                  # a neighbour of (1, 1)
                      {"Pixel": [50, 50], "Set": 1}]}                 # off the frame


def write(path, document) -> str:
    path.write_text(json.dumps(document))
    return str(path)


def test_fix_bad_pixels_by_hand(tmp_path):
    frame = np.arange(8 * 6, dtype=np.uint8).reshape(6, 8)            # value = 8 y + x
    entries = read_bad_pixels(write(tmp_path / "bad.json", BAD))
    out = fix_bad_pixels(frame, entries)
    assert out[2, 3] == 7
    assert out[4, 5] == frame[4, 4]
    # the median of (1,1)'s neighbours without the bad (2,1): 0 1 2 8 16 17 18 -> 8
    assert out[1, 1] == 8
    assert out[1, 2] == np.uint8(300 % 256)                           # C conversion
    changed = {tuple(i) for i in np.argwhere(out != frame)}
    assert changed == {(2, 3), (4, 5), (1, 1), (1, 2)}
    # sensor coordinates through a region offset and 2x2 binning: (5, 4) -> (1, 1)
    binned = fix_bad_pixels(frame, [{"pixel": (5, 4), "mode": "Set", "arg": 99}],
                            offset=(3, 2), binning=(2, 2))
    assert binned[1, 1] == 99 and np.count_nonzero(binned != frame) == 1


def test_read_bad_pixels_refuses_broken_json(tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text('{"Bad pixels": [')
    with pytest.raises(ValueError):
        read_bad_pixels(str(broken))
    assert read_bad_pixels(write(tmp_path / "none.json", {"Other": 1})) == []


@pytest.fixture(scope="module")
def ad(tmp_path_factory):
    log = tmp_path_factory.mktemp("badpix-ioc") / "ioc.log"
    with ExtraADSimIOC(["--image-ftvl", "DOUBLE"], prefix=f"bp{uuid.uuid4().hex[:6]}:",
                       env={"SIMBEAMLINE_AD_PATH_MAP": None}, log_path=log) as ad:
        ad.camera(size=(40, 30), sim_mode="Peaks")
        noiseless_peak(ad)
        ad.plugin("image1")
        ad.plugin("BadPix1")
        ad.put("BadPix1:BlockingCallbacks", "Yes")
        yield ad


def test_badpix1_fixes_the_pixels_its_file_names(ad, tmp_path):
    frame = read_image(ad, "SIM1")
    np.testing.assert_array_equal(frame, read_image(ad, "SIM1"))     # the frames repeat
    ad.put("BadPix1:FileName", write(tmp_path / "bad.json", BAD))
    fixed = read_image(ad, "BADPIX1")
    expected = fix_bad_pixels(frame.astype(np.uint8), read_bad_pixels(str(tmp_path / "bad.json")))
    np.testing.assert_array_equal(fixed, expected)
    assert fixed[2, 3] == 7 and not np.array_equal(fixed, frame)

    # a broken file leaves the list as it was; the IOC says why in its log
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    ad.put("BadPix1:FileName", str(broken))
    np.testing.assert_array_equal(read_image(ad, "BADPIX1"), expected)
    # a region of the sensor: the file's sensor coordinates follow MinX/MinY
    ad.put("BadPix1:FileName", write(tmp_path / "one.json",
                                     {"Bad pixels": [{"Pixel": [12, 9], "Set": 5}]}))
    ad.put("cam1:MinX", 10)
    ad.put("cam1:MinY", 4)
    try:
        region = read_image(ad, "BADPIX1")
        assert region[5, 2] == 5
    finally:
        ad.put("cam1:MinX", 0)
        ad.put("cam1:MinY", 0)
