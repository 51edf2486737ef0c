"""Runs: where they are written, found and read back.

- :mod:`.store`: the persistent databroker catalog of a beamline (open it, record a
  RunEngine's runs into it);
- :mod:`.recording`: a RunEngine's runs recorded through the index, scan_ids continued,
  without databroker (what a session does from its first plan);
- :mod:`.on_first_use`: the session's ``db`` and ``cat``, opened at their first use;
- :mod:`.writer`: a run's documents into its run file, and its start and stop into the index;
- :mod:`.index`: the SQLite index beside the run files (lookups, scan_ids across processes);
- :mod:`.runfile`: one run file read back whatever its state (complete, cut short, damaged);
- :mod:`.check`, :mod:`.cli`: ``simbeamline catalog check [--repair]``;
- :mod:`.lazy`, :mod:`.compat`: handlers loaded on first use; databroker's one stray warning;
- :mod:`.frame_store`: camera frames as ``.npy`` files with their Resource/Datum documents;
- :mod:`.driver`: the catalog's databroker classes (intake driver, v1 Broker);
- :mod:`.paths`: where the catalog lives and how intake finds it by name (no databroker
  import, so the command line stays light);
- :mod:`.entry`: the ``intake.catalogs`` entry point (``databroker.catalog['simbeamline']``);
- :mod:`.runs`: finding a run and reading its frames, whichever databroker API is at hand.
"""
