"""``python -m simbeamline_iocs.adsim``: serve the ADSimDetector IOC (prefix ``ad:``).

Extra flags: ``--path-map IOCDIR=HOSTDIR`` (repeatable; also the environment
variable SIMBEAMLINE_AD_PATH_MAP="IOCDIR=HOSTDIR[,...]"), ``--image-ftvl`` (element
type of image1:ArrayData), ``--stage-scale`` (pixels the Peaks follow per unit of
the sample stage), ``--beamline-prefix`` (default $SIMBEAMLINE_PREFIX or "sim:").
"""

from __future__ import annotations

import os

from ..server import serve
from .beamline import BEAMLINE_PREFIX_ENV, BeamlineLink
from .channels import IMAGE_FTVL
from .ioc import ADSimIOC
from .paths import PATH_MAP_ENV, PathMap


def add_arguments(parser) -> None:
    group = parser.add_argument_group("ADSimDetector")
    group.add_argument("--path-map", action="append", default=[], metavar="IOCDIR=HOSTDIR",
                       help="the directory the IOC calls IOCDIR is HOSTDIR on this host "
                            f"(repeatable; default from ${PATH_MAP_ENV})")
    group.add_argument("--image-ftvl", choices=sorted(IMAGE_FTVL), default="UCHAR",
                       help="element type of image1:ArrayData (default UCHAR, 8-bit)")
    group.add_argument("--stage-scale", type=float, default=4.0,
                       help="pixels the Peaks move per unit of the sample stage (default 4)")
    group.add_argument("--beamline-prefix", default=os.environ.get(BEAMLINE_PREFIX_ENV, "sim:"),
                       help="prefix of the beamline IOC (shutter, sample stage)")


def build_ioc(prefix: str, macros=None, *, path_map=(), image_ftvl="UCHAR",
              stage_scale=4.0, beamline_prefix="sim:") -> ADSimIOC:
    """The IOC from the command line's values (``serve`` passes the flags by name)."""
    specs = list(path_map) or [os.environ.get(PATH_MAP_ENV, "")]
    try:
        mapping = PathMap.parse(*specs)
    except ValueError as exc:
        raise SystemExit(f"error: {exc}") from None
    return ADSimIOC(prefix, macros, path_map=mapping, image_ftvl=image_ftvl,
                    stage_scale=stage_scale, beamline=BeamlineLink(beamline_prefix))


def main() -> None:
    serve(build_ioc, default_prefix="ad:", prefix_env="SIMBEAMLINE_AD_PREFIX",
          description="ADSimDetector IOC: cam1, HDF1, image1, Stats1",
          extra_arguments=add_arguments, startup=lambda ioc, address: ioc.startup(address))


if __name__ == "__main__":
    main()
