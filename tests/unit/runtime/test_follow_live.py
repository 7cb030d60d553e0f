"""A separate worker follows the live revisions the API nodes publish to the store."""

from __future__ import annotations

from pathlib import Path

from engine.flow.validate import compile_source
from engine.runtime.revisions import FlowCatalog
from engine.runtime.worker import follow_live
from engine.store import Store, StoreRevisions

FLOW = "flow: demo\nsteps:\n  listen: { wait: message }\n  reply: { say: 'v1', next: listen }\n"


def test_the_worker_catalog_takes_what_the_store_says_is_live(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'flowdesk.db'}")
    store.upgrade()
    v1, v2 = (compile_source(FLOW.replace("v1", text)).flow for text in ("v1", "v2"))
    assert v1 is not None and v2 is not None
    for flow in (v1, v2):
        store.put_revision(flow.revision, flow.source, flow=flow.name)
    catalog = FlowCatalog(StoreRevisions(store))
    store.set_live("demo", v1.revision)
    follow_live(catalog, store)
    live = catalog.live("demo")
    assert live is not None and live.revision == v1.revision
    store.set_live("demo", v2.revision)
    follow_live(catalog, store)
    assert catalog.live_map() == {"demo": v2.revision}
    store.remove_live("demo")
    follow_live(catalog, store)
    assert catalog.live("demo") is None
    # Revisions stay loadable by hash for conversations still running on them.
    assert catalog.get("demo", v1.revision) is not None
    store.close()
