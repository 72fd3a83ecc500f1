"""Ingestion: the model alone, the mmsearch pipeline, and lancedb's own open-clip embedding function."""

from __future__ import annotations

import hashlib
import os
import shutil
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from common import ModelUnderTest, Stopwatch, own_cpu_s, timed

from mmsearch.encoders import Encoder
from mmsearch.media.images import decode_image
from mmsearch.service import MMSearch
from mmsearch.store.table import SpaceTable


def prepare_one(encoder: Encoder, path: Path, max_pixels: int) -> Any:
    """The work the indexer's decode threads do for one new file: read, hash, decode, preprocess."""
    data = path.read_bytes()
    hashlib.blake2b(data, digest_size=16).hexdigest()
    decoded = decode_image(data, str(path), max_pixels, encoder.image_draft_size())
    return encoder.preprocess_image(decoded.image)


def prepare_costs(encoder: Encoder, paths: list[Path], max_pixels: int, workers: int) -> tuple[dict, list]:
    import torch

    prepare_one(encoder, paths[0], max_pixels)  # warm-up
    default = torch.get_num_threads()
    one_thread: dict[int, list[float]] = {default: [], 1: []}
    tensors: list = []
    for _ in range(2):  # each torch setting twice, in turn
        for n in one_thread:
            torch.set_num_threads(n)
            t = time.perf_counter()
            tensors = [prepare_one(encoder, p, max_pixels) for p in paths]
            one_thread[n].append(time.perf_counter() - t)
    torch.set_num_threads(default)
    with ThreadPoolExecutor(workers) as pool:
        pooled = timed(lambda: list(pool.map(lambda p: prepare_one(encoder, p, max_pixels), paths)))
    ms = {n: round(statistics.median(v) / len(paths) * 1000, 2) for n, v in one_thread.items()}
    return {
        "ms_per_image_1_thread": ms[default], "ms_per_image_1_thread_torch_1_thread": ms[1],
        "torch_threads_default": default, f"images_per_s_{workers}_threads": round(len(paths) / pooled, 1),
    }, tensors


def bare_pass(encoder: Encoder, batches: list[list]) -> dict:
    """Images/s of encoder.encode_images on tensors preprocessed beforehand, same batch size."""
    n = sum(len(b) for b in batches)
    cpu = own_cpu_s()
    wall = sum(timed(lambda b=b: encoder.encode_images(b)) for b in batches)
    return {"images_per_s": n / wall, "cpu_ms_per_image": (own_cpu_s() - cpu) / n * 1000}


# A moderation watch-list as a shop or a family library might keep: `mmsearch index` scans new files with it.
WATCH = (("knife", "a photo of a knife"), ("weapon", "a photo of a gun"), ("nudity", "a nude photo"))


def pipeline_pass(mut: ModelUnderTest, encoder: Encoder, folder: Path, data_dir: Path) -> dict:
    """What `mmsearch index FOLDER` does, end to end, into a fresh library that has a watch-list: the
    indexing pipeline, then the index maintenance (keyword index; ANN above the threshold), then the
    moderation scan of the new files. Model, commit, maintenance and scan times are split out."""
    shutil.rmtree(data_dir, ignore_errors=True)
    mm = MMSearch(mut.with_data_dir(data_dir), encoder=encoder)
    _watch_list(mm)
    model, commit = Stopwatch(), Stopwatch()
    cpu = own_cpu_s()
    with model.around(encoder, "encode_images"), commit.around(SpaceTable, "upsert"):
        parts = _index_like_the_cli(mm, folder)
    wall = sum(parts.values())
    cpu = own_cpu_s() - cpu
    shutil.rmtree(data_dir, ignore_errors=True)
    n = len(list(folder.iterdir()))
    return {"images": n, "seconds": wall, "images_per_s": n / wall, "cpu_ms_per_image": cpu / n * 1000,
            "index_only_images_per_s": n / parts["index_s"], **parts,
            "model_s": model.seconds, "commit_s": commit.seconds,
            "other_s": parts["index_s"] - model.seconds - commit.seconds}


def _watch_list(mm: MMSearch) -> None:
    from mmsearch.workflows.moderation import Concept, WatchList, watchlist_path

    watch = WatchList()
    for name, text in WATCH:
        watch.put(Concept(name, texts=[text]))
    watch.save(watchlist_path(mm.library(create=True)))


def _index_like_the_cli(mm: MMSearch, folder: Path) -> dict[str, float]:
    """The steps of mmsearch.cli's `index` command after it builds its service, each timed."""
    import mmsearch.cli  # noqa: F401 - loads the command modules in their order (cli_review imports cli)
    from mmsearch.cli_review import scan_if_watching

    t = time.perf_counter()
    report = mm.index([folder])
    index_s = time.perf_counter() - t
    if report.skipped or not report.embedded:
        raise RuntimeError(f"benchmark index run went wrong: {report.summary()}")
    maintain_s = timed(mm.maintain_index)
    scanned: list = []
    scan_s = timed(lambda: scanned.append(scan_if_watching(mm)))
    if not scanned[0] or f"scanned for {len(WATCH)} concepts" not in scanned[0]:
        raise RuntimeError(f"the moderation scan did not run: {scanned[0]!r}")
    return {"index_s": index_s, "maintain_s": maintain_s, "scan_s": scan_s}


# -- lancedb's own open-clip embedding function -----------------------------------------------------
def lancedb_function(mut: ModelUnderTest) -> Any:
    from lancedb.embeddings import get_registry

    # pretrained="" reaches open_clip.create_model_and_transforms(name, pretrained="") inside lancedb,
    # which builds the same architecture with random weights: lancedb's own code path, no download.
    return get_registry().get("open-clip").create(name=mut.lancedb_name, pretrained="", device="cpu")


def lancedb_pass(func: Any, paths: list[Path], db_dir: Path, chunk: int) -> dict:
    """Images/s of table.add() on a SourceField/VectorField schema: lancedb embeds the files itself."""
    import lancedb
    from lancedb.pydantic import LanceModel, Vector

    class Photo(LanceModel):
        image_uri: str = func.SourceField()
        vector: Vector(func.ndims()) = func.VectorField()  # type: ignore[valid-type]

    shutil.rmtree(db_dir, ignore_errors=True)
    table = lancedb.connect(db_dir).create_table("photos", schema=Photo)
    uris = [str(p) for p in paths]
    t, cpu = time.perf_counter(), own_cpu_s()
    for i in range(0, len(uris), chunk):
        table.add([{"image_uri": u} for u in uris[i:i + chunk]])
    seconds, cpu = time.perf_counter() - t, own_cpu_s() - cpu
    if table.count_rows() != len(uris):
        raise RuntimeError("lancedb open-clip run lost rows")
    shutil.rmtree(db_dir, ignore_errors=True)
    return {"images_per_s": len(uris) / seconds, "cpu_ms_per_image": cpu / len(uris) * 1000}


def run_ingest(mut: ModelUnderTest, photos: list[Path], folder: Path, work: Path, repeats: int,
               with_lancedb: bool = True) -> dict:
    s = mut.settings
    encoder = mut.encoder()
    load_s = timed(encoder.load)
    costs, tensors = prepare_costs(encoder, photos, s.max_image_pixels, s.workers)
    batches = [tensors[i:i + s.batch_size] for i in range(0, len(tensors), s.batch_size)]
    func = lancedb_function(mut) if with_lancedb else None

    bare_pass(encoder, batches[:1])  # warm-up: first forward allocates and picks kernels
    pipeline_pass(mut, encoder, _warm_folder(photos, work), work / "lib-warm")
    if func is not None:
        lancedb_pass(func, photos[: min(8, len(photos))], work / "lance-warm", s.commit_every)

    runs: dict[str, list] = {"bare": [], "pipeline": [], "lancedb": []}
    for r in range(repeats):  # interleaved, so load from other users hits all alike
        runs["bare"].append(bare_pass(encoder, batches))
        runs["pipeline"].append(pipeline_pass(mut, encoder, folder, work / f"lib-{r}"))
        if func is not None:
            runs["lancedb"].append(lancedb_pass(func, photos, work / f"lance-{r}", s.commit_every))
    return _ingest_summary(mut, len(photos), load_s, costs, runs)


def _warm_folder(photos: list[Path], work: Path) -> Path:
    from photos import link_folder

    return link_folder(photos[: min(len(photos), 64)], work / "photos-warm")


def _median(runs: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def _ingest_summary(mut: ModelUnderTest, n: int, load_s: float, costs: dict, runs: dict[str, list]) -> dict:
    s = mut.settings
    bare, pipe = (_median(runs[k], "images_per_s") for k in ("bare", "pipeline"))
    bare_cpu = _median(runs["bare"], "cpu_ms_per_image")
    cores = len(os.sched_getaffinity(0))
    # If model and decoding both want every core, the best the pipeline can do is run them back to back.
    cpu_bound_ratio = (1 / bare) / (1 / bare + costs["ms_per_image_1_thread_torch_1_thread"] / 1000 / cores)
    r3 = lambda x: round(x, 3)  # noqa: E731
    out = {
        "images": n, "batch_size": s.batch_size, "workers": s.workers, "commit_every": s.commit_every,
        "model_load_s": round(load_s, 2), "prepare": costs,
        "bare_forward_images_per_s": round(bare, 2), "pipeline_images_per_s": round(pipe, 2),
        "index_step_only_images_per_s": round(_median(runs["pipeline"], "index_only_images_per_s"), 2),
        "ratio_index_step_only_to_bare": r3(_median(runs["pipeline"], "index_only_images_per_s") / bare),
        "pipeline_steps_s": {k: round(_median(runs["pipeline"], k), 3) for k in ("index_s", "maintain_s", "scan_s")},
        "watch_list_concepts": len(WATCH),
        "ratio_pipeline_to_bare": r3(pipe / bare),
        "ratio_if_decode_and_model_share_cores": r3(cpu_bound_ratio),
        "cpu_ms_per_image": {"bare": round(bare_cpu, 1),
                             "pipeline": round(_median(runs["pipeline"], "cpu_ms_per_image"), 1)},
        "runs": {k: [{m: round(v, 2) for m, v in r.items()} for r in rs] for k, rs in runs.items()},
    }
    out["cpu_ratio_bare_to_pipeline"] = r3(bare_cpu / out["cpu_ms_per_image"]["pipeline"])
    if runs["lancedb"]:
        lance = _median(runs["lancedb"], "images_per_s")
        out.update({"lancedb_open_clip_images_per_s": round(lance, 2), "ratio_lancedb_to_bare": r3(lance / bare),
                    "speedup_pipeline_vs_lancedb": round(pipe / lance, 2)})
        out["cpu_ms_per_image"]["lancedb"] = round(_median(runs["lancedb"], "cpu_ms_per_image"), 1)
    return out
