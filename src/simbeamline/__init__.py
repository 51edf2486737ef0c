"""simbeamline: a simulated X-ray beamline for bluesky (client side)."""

__version__ = "0.1.0"
