"""The markdown summary of one bench_core.py result."""

from __future__ import annotations


def markdown(r: dict) -> str:
    parts = [f"# mmsearch core benchmark: {r['model']}\n", f"`{r['command']}`\n", _machine(r)]
    later = {name: run for name, run in r.get("section_runs", {}).items() if run["command"] != r["command"]}
    for name, run in later.items():
        m = run["machine"]
        parts.append(f"Section `{name}` comes from a later run: `{run['command']}` (mmsearch "
                     f"{m.get('mmsearch_source')}, load average at start "
                     f"{'/'.join(f'{x:.2f}' for x in m['loadavg_start'])}).\n")
    if "ingest" in r:
        parts.append(_ingest(r["ingest"]))
    if "rss" in r:
        parts.append(_rss(r["rss"]))
    if "query" in r:
        parts.append(_query(r["query"]))
    parts.append("Section wall times (s): " + ", ".join(f"{k} {v}" for k, v in r["timings_s"].items()) + ".\n")
    parts.append("Share of the CPUs used by other people's processes during each section (from /proc/stat, "
                 "minus this benchmark's own CPU time): " + ", ".join(
                     f"{k} {v:.0%}" for k, v in r.get("others_cpu_share", {}).items()) + ".\n")
    return "\n".join(parts)


def _machine(r: dict) -> str:
    m, s = r["machine"], r["settings"]
    load = lambda la: "/".join(f"{x:.2f}" for x in la)  # noqa: E731
    return (
        f"Machine: {m['cpu']}, {m['cores_usable']} usable cores, {m['ram_gb']} GB RAM; torch {m['torch']} with "
        f"{m['torch_threads']} intra-op / {m['torch_interop_threads']} inter-op threads; open_clip "
        f"{m['open_clip']}, lancedb {m['lancedb']}, numpy {m['numpy']}, Pillow {m['pillow']}, Python {m['python']}. "
        f"Load average (1/5/15 min) at start {load(m['loadavg_start'])}, at end {load(m.get('loadavg_end', []))}: "
        f"the machine is shared, so treat differences under ~10% as noise.\n\n"
        f"mmsearch source: {m.get('mmsearch_source', 'unknown')}.\n\n"
        f"Model: {s['model']} ({s['pretrained']}), device {s['device']}; batch_size {s['batch_size']}, "
        f"workers {s['workers']}, commit_every {s['commit_every']}.\n"
    )


def _ingest(g: dict) -> str:
    pre, cpu = g["prepare"], g["cpu_ms_per_image"]
    rows = [
        ("model load (s)", g["model_load_s"]),
        (f"read+hash+decode+preprocess, 1 thread, torch at {pre['torch_threads_default']} threads (ms/image)",
         pre["ms_per_image_1_thread"]),
        ("same, torch at 1 thread (ms/image)", pre["ms_per_image_1_thread_torch_1_thread"]),
        *[(f"same, {k.rsplit('_', 2)[-2]} decode threads (images/s)", v) for k, v in pre.items()
          if k.startswith("images_per_s")],
        ("**(a) bare batched forward (images/s)**", f"**{g['bare_forward_images_per_s']}**"),
        ("**(b) what `mmsearch index` does: index + maintain + moderation scan (images/s)**",
         f"**{g['pipeline_images_per_s']}**"),
        ("**ratio (b)/(a)** (goal >= 0.9)", f"**{g['ratio_pipeline_to_bare']}**"),
        *([("(b) split: MMSearch.index() / maintain_index() / scan with "
            f"{g['watch_list_concepts']} watched concepts (s, median)",
            " / ".join(str(g["pipeline_steps_s"][k]) for k in ("index_s", "maintain_s", "scan_s"))),
           ("MMSearch.index() step alone (images/s); its ratio to (a)",
            f"{g['index_step_only_images_per_s']}; {g['ratio_index_step_only_to_bare']}")]
          if "pipeline_steps_s" in g else []),
        ("best ratio if decoding and model share the cores", g["ratio_if_decode_and_model_share_cores"]),
        ("CPU ms per image: bare / pipeline", f"{cpu['bare']} / {cpu['pipeline']}"),
        ("**CPU ratio bare/pipeline** (what (b)/(a) is on a quiet machine when both are CPU-bound)",
         f"**{g['cpu_ratio_bare_to_pipeline']}**"),
    ]
    if "lancedb_open_clip_images_per_s" in g:
        rows += [("**(c) lancedb open-clip function, table.add() (images/s)**",
                  f"**{g['lancedb_open_clip_images_per_s']}**"),
                 ("ratio (c)/(a); CPU ms per image", f"{g['ratio_lancedb_to_bare']}; {cpu['lancedb']:.1f}"),
                 ("speed-up (b)/(c)", g["speedup_pipeline_vs_lancedb"])]
    table = "\n".join(f"| {k} | {v} |" for k, v in rows)
    runs = "\n".join(
        f"| {name} {i + 1} | {p['images_per_s']} | {p['cpu_ms_per_image']} | {p.get('seconds', '')} | "
        f"{p.get('model_s', '')} | {p.get('commit_s', '')} | {p.get('other_s', '')} | {p.get('maintain_s', '')} | "
        f"{p.get('scan_s', '')} |"
        for name, rs in g["runs"].items() for i, p in enumerate(rs))
    return (
        f"## 1. Ingestion ({g['images']} photos, 1024x768 JPEG, median of {len(g['runs']['bare'])} interleaved "
        f"runs)\n\n| measure | value |\n|---|---|\n{table}\n\n"
        "All runs in order. A pipeline run is what `mmsearch index` does (MMSearch.index(), then "
        "maintain_index(), then the moderation scan of the watch-list); wall s is all three. The index step's "
        "calling-thread time is split into model (encode_images), commit (SpaceTable.upsert) and other (mostly "
        "waiting for decode threads); maintain s and scan s are the two later steps:\n\n"
        "| run | images/s | CPU ms/image | wall s | model s | commit s | other s | maintain s | scan s |\n"
        f"|---|---|---|---|---|---|---|---|---|\n{runs}\n"
    )


def _rss(m: dict) -> str:
    rows = "\n".join(
        f"| {x['images']} | {x['peak_rss_mb']} | {x['hwm_after_load_mb']} | {x['peak_minus_after_load_mb']} | "
        f"{x['index_s']} | {x['process_lifetime_peak_mb']} | "
        + " / ".join(str(v) for v in x.get("hwm_along_run_mb", {}).values()) + " |" for x in m["runs"])
    return (
        "## 2. Peak RSS of one indexing process\n\n"
        "| photos | peak RSS MiB (VmHWM after index) | peak after model load MiB | indexing adds MiB | index s "
        "| whole-process peak MiB (polled, incl. shutdown) | peak at 25 / 50 / 75 / 100% of the folder |\n"
        f"|---|---|---|---|---|---|---|\n{rows}\n\n"
        f"Growth from smallest to largest folder: {m['growth_mb']} MiB "
        f"({m['growth_mb_per_1000_images']} MiB per 1000 photos).\n"
    )


def _lat(p: dict | None) -> str:
    return f"{p['p50']} / {p['p95']}" if p else "-"


def _query(q: dict) -> str:
    S = q["sizes"]
    sizes = list(S)
    head = "| measure (ms, p50 / p95) | " + " | ".join(f"{int(n):,} rows" for n in sizes) + " |\n"
    head += "|---|" + "---|" * len(sizes) + "\n"
    line = lambda label, get: f"| {label} | " + " | ".join(get(S[n]) for n in sizes) + " |"  # noqa: E731
    e2e = lambda key: lambda s: _lat(s["end_to_end_text"][key])  # noqa: E731
    ann = lambda key: lambda s: (_lat(s["ann"][key]) if isinstance(s["ann"][key], dict)  # noqa: E731
                                 else str(s["ann"][key])) if "ann" in s else "-"
    lines = [
        line("(a) Searcher exact path (numpy cache, rows to results)", lambda s: _lat(s["searcher_exact"])),
        line("(a) first query after a table change (cache build)", lambda s: str(s["searcher_exact_cold_ms"])),
        line("(b) plain numpy brute force (matmul + top-k)", lambda s: _lat(s["numpy_bruteforce"])),
        line("(b') numpy brute force with einsum (1 thread, no BLAS)", lambda s: _lat(s["numpy_einsum_1_thread"])),
        line("(a) Searcher exact, 50 ms idle before each query", lambda s: _lat(s["searcher_exact_after_idle"])),
        line("(b) numpy matmul, 50 ms idle before each query", lambda s: _lat(s["numpy_bruteforce_after_idle"])),
        line("(b') numpy einsum, 50 ms idle before each query", lambda s: _lat(s["numpy_einsum_1_thread_after_idle"])),
        line("(c) LanceDB flat search, no index", lambda s: _lat(s["lancedb_flat"]) + f" (n={s['lancedb_flat']['n']})"),
        line("LanceDB flat recall@10 vs numpy (sanity)", lambda s: str(s["lancedb_flat_recall_vs_numpy"])),
        line("text encode, one query string", e2e("text_encode")),
        line("Searcher.table() lookup (per query)", e2e("searcher_table_lookup")),
        line("**end-to-end MMSearch.search_text (encode + search)**", e2e("search_text")),
        line("indexer commit: upsert 512 rows into the table", lambda s: _lat(s["upsert_512_rows_into_table_ms"])),
        line("ANN build s (IVF_HNSW_SQ)", ann("build_s")),
        line("ANN via Searcher (what a query gets)", ann("searcher_ann")),
        line("ANN via SpaceTable.ann_search", ann("table_ann_search")),
        line("numpy brute force, timed alongside the ANN", ann("numpy_bruteforce")),
        line("ANN recall@10 vs exact", ann("recall_at_10_vs_exact")),
        line("others' share of the CPUs meanwhile", lambda s: f"{s['others_cpu_share']:.0%}"),
    ]
    e2e_dim = S[sizes[0]]["end_to_end_text"]["dim"] if sizes else q["dim"]
    return (
        f"## 3. Query latency ({q['dim']}-d clustered unit vectors, {q['clusters']} clusters, k={q['k']}, "
        f"{q['queries']} queries, the methods timed in turn per query; LanceDB flat stops after ~20 s)\n\n"
        f"End-to-end, text encode and table lookup run on a table of the model's own width ({e2e_dim}-d).\n\n"
        + head + "\n".join(lines) + "\n"
    )
