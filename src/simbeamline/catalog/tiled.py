"""Runs into Tiled, beside the embedded catalog: the RunEngine's second subscription.

:func:`record_runs_in_tiled` subscribes a :class:`TiledRecorder` when the beamline has a
catalog service (:mod:`simbeamline.control.catalog_service`): bluesky-tiled-plugins'
``TiledWriter`` writes each run's metadata and scalar data into the server, and
registers the frame files (``NPY_SEQ`` spot frames, ``AD_HDF5_SINGLE`` ADSim frames) as
external data that the server reads itself, so a remote reader needs HTTP only.

The embedded catalog never depends on the server: if Tiled (or its PostgreSQL) is down
when a run starts, or fails during the run, the recorder gives up on that run with
ONE warning and the run goes on into the embedded catalog; ``simbeamline catalog sync``
copies it later. Every run carries the beamline's identity (``beamline_prefix``,
``beamline_name`` in its start document), so one server holds many beamlines.
"""

from __future__ import annotations

import logging
import os
import warnings

from ..control.catalog_service import CatalogService, api_key
from ..control.config import BeamlineConfig

logger = logging.getLogger(__name__)

#: Tiled client retries: few and short, so a dead server costs a run seconds, not a
#: minute (the run is safe in the embedded catalog and ``sync`` copies it later).
RETRY_ATTEMPTS = 2
RETRY_TIMEOUT = 5.0
#: Seconds an HTTP request to Tiled may take (generous: a busy small machine is slow,
#: and a server that is down refuses at once).
HTTP_TIMEOUT = 60.0


class TiledUnavailable(UserWarning):
    """A run could not be written to Tiled (it is in the embedded catalog)."""


class TiledKeyError(RuntimeError):
    """No API key for the configured Tiled server."""


def identity(config: BeamlineConfig) -> dict[str, str]:
    """The start-document keys that say which beamline wrote a run."""
    name = os.environ.get("SIMBEAMLINE_NAME") or config.prefix.rstrip(":") or config.catalog_name
    return {"beamline_prefix": config.prefix, "beamline_name": name}


def _fail_fast() -> None:
    """Few, short retries in this process unless the user chose TILED_RETRY_* values."""
    from tiled.client import utils

    if "TILED_RETRY_ATTEMPTS" not in os.environ:
        utils.TILED_RETRY_ATTEMPTS = RETRY_ATTEMPTS
    if "TILED_RETRY_TIMEOUT" not in os.environ:
        utils.TILED_RETRY_TIMEOUT = RETRY_TIMEOUT


def connect(config: BeamlineConfig, service: CatalogService | None = None, role: str = "writer"):
    """A Tiled client of the beamline's server with its *role* key (raises if unreachable)."""
    import httpx
    from tiled.client import from_uri

    service = service or CatalogService.from_env(config)
    key = api_key(config, service, role)
    if not key:
        where = ("SIMBEAMLINE_TILED_API_KEY" if service.mode == "tiled"
                 else f"{config.run_dir / 'catalog' / 'api_keys.json'} (made when the service starts)")
        raise TiledKeyError(f"no {role} API key for the Tiled server {service.tiled_uri}: set {where}")
    _fail_fast()
    return from_uri(service.tiled_uri, api_key=key, timeout=httpx.Timeout(HTTP_TIMEOUT))


def directory_resource_path(doc: dict) -> dict:
    """A Resource whose file template starts with the directory (``%s%s_%6.6d.h5``, the
    AD_HDF5 specs) names its directory with a trailing ``/``, as the databroker handler
    joins it; Tiled concatenates URI and template verbatim. A copy: the embedded
    catalog gets the document unchanged."""
    template = doc.get("resource_kwargs", {}).get("template", "")
    if template.startswith("%s%s") and not doc.get("resource_path", "").endswith("/"):
        doc = {**doc, "resource_path": doc["resource_path"] + "/"}
    return doc


def tiled_writer(client, **kwargs):
    """bluesky-tiled-plugins' TiledWriter on *client* (a sibling of ``db.insert``)."""
    from bluesky_tiled_plugins import TiledWriter

    patches = kwargs.pop("patches", {})
    return TiledWriter(client, patches={"resource": directory_resource_path, **patches}, **kwargs)


class TiledRecorder:
    """A RunEngine callback: each run into Tiled, or one warning and nothing for that run.

    Connects at each run's start document when not connected, so a server that comes
    back is used again from the next run on.
    """

    def __init__(self, config: BeamlineConfig, service: CatalogService, batch_size: int | None = None):
        self.config = config
        self.service = service
        self.batch_size = batch_size
        self._client = None
        self._writer = None
        self._run_uid: str | None = None   #: the run being written, None if skipped
        self.failed: list[str] = []        #: uids of runs not (fully) written to Tiled

    def __call__(self, name: str, doc: dict) -> None:
        if name == "start":
            self._run_uid = doc["uid"]
            try:
                if self._client is None:
                    self._client = connect(self.config, self.service)
                kwargs = {} if self.batch_size is None else {"batch_size": self.batch_size}
                self._writer = tiled_writer(self._client, **kwargs)
            except Exception as err:  # down, refused, wrong key: all mean "not this run"
                self._give_up(err)
                return
        if self._run_uid is None or self._writer is None:
            return
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                self._writer(name, doc)
        except Exception as err:
            self._give_up(err)
            return
        # event_model's RunRouter turns a failure on the start document into a warning
        failed = [w for w in caught if "when RunRouter passed it" in str(w.message)]
        if failed:
            self._give_up(RuntimeError(str(failed[0].message).split(" when ")[0]))
            return
        for w in caught:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        if name == "stop":
            self._run_uid = None

    def _give_up(self, err: Exception) -> None:
        uid = self._run_uid or "?"
        self.failed.append(uid)
        self._client = self._writer = None
        self._run_uid = None
        logger.debug("Tiled write of run %s failed", uid, exc_info=err)
        warnings.warn(TiledUnavailable(
            f"run {uid[:8]} is not in Tiled ({self.service.tiled_uri}: {_reason(err)}); "
            "it is in the embedded catalog: `simbeamline catalog sync` copies it later"),
            stacklevel=2)


def _reason(err: Exception) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0][:200]}" if text else type(err).__name__


def record_runs_in_tiled(RE, config: BeamlineConfig | None) -> TiledRecorder | None:
    """Give every run the beamline's identity and, when the beamline has a catalog
    service, subscribe a :class:`TiledRecorder` beside the embedded catalog's insert."""
    if config is None:
        return None
    RE.md.update(identity(config))
    service = CatalogService.from_env(config)
    if not service.enabled:
        return None
    recorder = TiledRecorder(config, service)
    RE.subscribe(recorder)
    return recorder
