"""Multi-part queries: routing, retrieval, rerank, late fusion, filters, diversity.

Import from the submodules (engine, parts, fusion, filters, mmr); this package stays import-light
because the per-table search layer uses `filters` too.
"""
