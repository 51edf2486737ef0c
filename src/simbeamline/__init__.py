"""simbeamline: a simulated X-ray beamline for bluesky (client side)."""

__version__ = "0.1.0"


def _register_catalog() -> None:
    # The run catalog is found by name (databroker.catalog["simbeamline"],
    # Broker.named("simbeamline")) through the intake YAML we ship; intake reads
    # INTAKE_PATH once, when first imported, so this happens at import time.
    from .catalog.paths import register_with_intake

    try:
        register_with_intake()
    except ValueError:
        pass  # a bad SIMBEAMLINE_* variable: reported when the configuration is built


_register_catalog()
