"""Fill a Tiled catalog on PostgreSQL with thousands of runs, row for row as TiledWriter
lays them out, without a round of HTTP requests per run.

Why: the lookup benchmark needs Tiled catalogs of 1,000 and 10,000 runs. Written
through ``TiledWriter`` a run costs about 13 HTTP requests, 0.4 runs a second on this
machine, so 10,000 runs would take some seven hours. What the benchmark measures is the
search, not the writes, so it only needs the rows to be the ones ``TiledWriter`` makes.

How: one run is written by ``TiledWriter`` through the server (the *template*). For
every further run, ``BulkTiledFill`` (a RunEngine callback) takes that run's documents
and inserts the same rows the template has, with this run's values, straight into the
server's databases: the run node (start and stop documents), its ``primary`` stream
node (the descriptor), the ``internal`` table node with its data source and asset link,
and the event rows in the table storage. Tiled's own triggers keep its closure table.
Runs filled this way read back through the Tiled client like any other (the test
``test_bulk_filled_runs_read_back_like_tiled_writer_runs`` checks it).

Only the template's shape is copied: runs of one ``primary`` stream whose data are all
internal (``count([det])`` of ``ophyd.sim``). Anything else is refused.
"""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor

#: runs inserted per transaction
BATCH = 500


class TemplateError(ValueError):
    """The template run is not one this fill can copy."""


async def _template(conn, uid: str) -> dict:
    run = await conn.fetchrow("SELECT id, specs FROM nodes WHERE parent = 0 AND key = $1", uid)
    if run is None:
        raise TemplateError(f"no run {uid} at the top of the Tiled catalog: write the "
                            "template run with TiledWriter first")
    children = await conn.fetch("SELECT id, key, specs, metadata FROM nodes WHERE parent = $1",
                                run["id"])
    if [c["key"] for c in children] != ["primary"]:
        raise TemplateError(f"template run {uid} has streams {[c['key'] for c in children]}; "
                            "the bulk fill copies runs of one 'primary' stream")
    stream = children[0]
    tables = await conn.fetch("SELECT id, key, specs, metadata, structure_family::text AS family "
                              "FROM nodes WHERE parent = $1", stream["id"])
    if len(tables) != 1 or tables[0]["key"] != "internal" or tables[0]["family"] != "table":
        raise TemplateError(f"template run {uid}'s primary stream holds "
                            f"{[t['key'] for t in tables]}; the bulk fill copies runs whose "
                            "data are one internal table")
    table = tables[0]
    source = await conn.fetchrow(
        "SELECT id, structure_id, mimetype, parameters, properties, management::text AS management, "
        "structure_family::text AS family FROM data_sources WHERE node_id = $1", table["id"])
    link = await conn.fetchrow("SELECT asset_id, parameter, num FROM data_source_asset_association "
                               "WHERE data_source_id = $1", source["id"])
    return {"run_specs": run["specs"], "stream_specs": stream["specs"],
            "stream_metadata": json.loads(stream["metadata"]), "table_specs": table["specs"],
            "table_metadata": table["metadata"], "source": source, "link": link,
            "parameters": json.loads(source["parameters"])}


async def _columns(conn, table_name: str) -> list[str]:
    rows = await conn.fetch("SELECT column_name FROM information_schema.columns "
                            "WHERE table_name = $1 ORDER BY ordinal_position", table_name)
    return [r["column_name"] for r in rows]


async def _insert(catalog_uri: str, storage_uri: str, template_uid: str, runs: list) -> None:
    import asyncpg

    catalog = await asyncpg.connect(catalog_uri)
    storage = await asyncpg.connect(storage_uri)
    try:
        t = await _template(catalog, template_uid)
        table_name = t["parameters"]["table_name"]
        columns = await _columns(storage, table_name)
        n = len(runs)
        node_ids = [r[0] for r in await catalog.fetch(
            "SELECT nextval('nodes_id_seq') FROM generate_series(1, $1)", 3 * n)]
        source_ids = [r[0] for r in await catalog.fetch(
            "SELECT nextval('data_sources_id_seq') FROM generate_series(1, $1)", n)]
        dataset_ids = [r[0] for r in await storage.fetch(
            "SELECT nextval('_dataset_id_counter') FROM generate_series(1, $1)", n)]
        nodes, sources, links, rows = [], [], [], []
        for i, (start, descriptor, events, stop) in enumerate(runs):
            run_id, stream_id, table_id = node_ids[3 * i:3 * i + 3]
            stream_md = {**t["stream_metadata"], "uid": descriptor["uid"], "time": descriptor["time"]}
            nodes += [(run_id, 0, start["uid"], "container",
                       json.dumps({"start": start, "stop": stop}), t["run_specs"]),
                      (stream_id, run_id, "primary", "container", json.dumps(stream_md),
                       t["stream_specs"]),
                      (table_id, stream_id, "internal", "table", t["table_metadata"],
                       t["table_specs"])]
            parameters = {**t["parameters"], "dataset_id": dataset_ids[i]}
            src = t["source"]
            sources.append((source_ids[i], table_id, src["structure_id"], src["mimetype"],
                            json.dumps(parameters), src["properties"], src["management"],
                            src["family"]))
            links.append((source_ids[i], t["link"]["asset_id"], t["link"]["parameter"],
                          t["link"]["num"]))
            for event in events:
                values = {"_dataset_id": dataset_ids[i], "_partition_id": 0,
                          "seq_num": event["seq_num"], "time": event["time"],
                          **event["data"], **{f"ts_{k}": v for k, v in event["timestamps"].items()}}
                missing = set(columns) - set(values)
                if missing:
                    raise TemplateError(f"run {start['uid']} lacks columns {sorted(missing)} "
                                        "of the template's table")
                rows.append(tuple(values[c] for c in columns))
        async with catalog.transaction():
            await catalog.executemany(
                "INSERT INTO nodes (id, parent, key, structure_family, metadata, specs) "
                "VALUES ($1, $2, $3, $4::structurefamily, $5::jsonb, $6::jsonb)", nodes)
            await catalog.executemany(
                "INSERT INTO data_sources (id, node_id, structure_id, mimetype, parameters, "
                "properties, management, structure_family) VALUES ($1, $2, $3, $4, $5::jsonb, "
                "$6::jsonb, $7::management, $8::structurefamily)", sources)
            await catalog.executemany(
                "INSERT INTO data_source_asset_association (data_source_id, asset_id, parameter, "
                "num) VALUES ($1, $2, $3, $4)", links)
            await storage.copy_records_to_table(table_name, records=rows, columns=columns)
    finally:
        await catalog.close()
        await storage.close()


class BulkTiledFill:
    """A RunEngine callback that copies each run into Tiled in the template's layout.

    *catalog_uri* and *storage_uri* are the Tiled server's PostgreSQL databases (its
    ``uri`` and SQL ``writable_storage``); *template_uid* a run ``TiledWriter`` wrote.
    Runs are inserted ``BATCH`` at a time; call ``flush()`` after the last one.
    """

    def __init__(self, catalog_uri: str, storage_uri: str, template_uid: str):
        self.catalog_uri, self.storage_uri, self.template_uid = catalog_uri, storage_uri, template_uid
        self._pending: list = []
        self._run: dict | None = None

    def __call__(self, name: str, doc: dict) -> None:
        if name == "start":
            self._run = {"start": doc, "descriptors": [], "events": []}
        elif name == "descriptor":
            self._run["descriptors"].append(doc)
        elif name == "event":
            self._run["events"].append(doc)
        elif name == "stop":
            run, self._run = self._run, None
            if len(run["descriptors"]) != 1 or run["descriptors"][0].get("name") != "primary":
                raise TemplateError(f"run {doc['run_start']} is not one primary stream; "
                                    "the bulk fill copies only such runs")
            self._pending.append((run["start"], run["descriptors"][0], run["events"], doc))
            if len(self._pending) >= BATCH:
                self.flush()

    def flush(self) -> None:
        """Insert the runs not inserted yet."""
        if self._pending:
            runs, self._pending = self._pending, []
            # a thread of its own: RunEngine callbacks run inside the RunEngine's event loop
            with ThreadPoolExecutor(1) as pool:
                pool.submit(asyncio.run, _insert(self.catalog_uri, self.storage_uri,
                                                 self.template_uid, runs)).result()
