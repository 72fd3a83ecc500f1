"""Ingestion: the model alone, the mmsearch pipeline, and lancedb's own open-clip embedding function."""

from __future__ import annotations

import hashlib
import shutil
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from common import ModelUnderTest, Stopwatch, timed

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
    prepare_one(encoder, paths[0], max_pixels)  # warm-up
    t = time.perf_counter()
    tensors = [prepare_one(encoder, p, max_pixels) for p in paths]
    one_thread = time.perf_counter() - t
    with ThreadPoolExecutor(workers) as pool:
        pooled = timed(lambda: list(pool.map(lambda p: prepare_one(encoder, p, max_pixels), paths)))
    return {
        "ms_per_image_1_thread": round(one_thread / len(paths) * 1000, 2),
        f"images_per_s_{workers}_threads": round(len(paths) / pooled, 1),
    }, tensors


def bare_pass(encoder: Encoder, batches: list[list]) -> float:
    """Images/s of encoder.encode_images on tensors preprocessed beforehand, same batch size."""
    n = sum(len(b) for b in batches)
    return n / sum(timed(lambda b=b: encoder.encode_images(b)) for b in batches)


def pipeline_pass(mut: ModelUnderTest, encoder: Encoder, folder: Path, data_dir: Path) -> dict:
    """One MMSearch.index() of a folder into a fresh library, with the model and commit time split out."""
    shutil.rmtree(data_dir, ignore_errors=True)
    mm = MMSearch(mut.with_data_dir(data_dir), encoder=encoder)
    model, commit = Stopwatch(), Stopwatch()
    with model.around(encoder, "encode_images"), commit.around(SpaceTable, "upsert"):
        wall = timed(lambda: _index(mm, folder))
    shutil.rmtree(data_dir, ignore_errors=True)
    n = len(list(folder.iterdir()))
    return {"images": n, "seconds": round(wall, 3), "images_per_s": round(n / wall, 2),
            "model_s": round(model.seconds, 3), "commit_s": round(commit.seconds, 3),
            "other_s": round(wall - model.seconds - commit.seconds, 3)}


def _index(mm: MMSearch, folder: Path) -> None:
    report = mm.index([folder])
    if report.skipped or not report.embedded:
        raise RuntimeError(f"benchmark index run went wrong: {report.summary()}")


# -- lancedb's own open-clip embedding function -----------------------------------------------------
def lancedb_function(mut: ModelUnderTest) -> Any:
    from lancedb.embeddings import get_registry

    # pretrained="" reaches open_clip.create_model_and_transforms(name, pretrained="") inside lancedb,
    # which builds the same architecture with random weights: lancedb's own code path, no download.
    return get_registry().get("open-clip").create(name=mut.lancedb_name, pretrained="", device="cpu")


def lancedb_pass(func: Any, paths: list[Path], db_dir: Path, chunk: int) -> float:
    """Images/s of table.add() on a SourceField/VectorField schema: lancedb embeds the files itself."""
    import lancedb
    from lancedb.pydantic import LanceModel, Vector

    class Photo(LanceModel):
        image_uri: str = func.SourceField()
        vector: Vector(func.ndims()) = func.VectorField()  # type: ignore[valid-type]

    shutil.rmtree(db_dir, ignore_errors=True)
    table = lancedb.connect(db_dir).create_table("photos", schema=Photo)
    uris = [str(p) for p in paths]
    t = time.perf_counter()
    for i in range(0, len(uris), chunk):
        table.add([{"image_uri": u} for u in uris[i:i + chunk]])
    seconds = time.perf_counter() - t
    if table.count_rows() != len(uris):
        raise RuntimeError("lancedb open-clip run lost rows")
    shutil.rmtree(db_dir, ignore_errors=True)
    return len(uris) / seconds


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

    bare, pipe, lance = [], [], []
    for r in range(repeats):  # interleaved, so load from other users hits all three alike
        bare.append(bare_pass(encoder, batches))
        pipe.append(pipeline_pass(mut, encoder, folder, work / f"lib-{r}"))
        if func is not None:
            lance.append(lancedb_pass(func, photos, work / f"lance-{r}", s.commit_every))
    return _ingest_summary(mut, len(photos), load_s, costs, bare, pipe, lance)


def _warm_folder(photos: list[Path], work: Path) -> Path:
    from photos import link_folder

    return link_folder(photos[: min(len(photos), 64)], work / "photos-warm")


def _ingest_summary(mut: ModelUnderTest, n: int, load_s: float, costs: dict, bare: list[float],
                    pipe: list[dict], lance: list[float]) -> dict:
    s = mut.settings
    bare_rate = statistics.median(bare)
    pipe_rate = statistics.median(p["images_per_s"] for p in pipe)
    cores = len(__import__("os").sched_getaffinity(0))
    # If model and decoding both want every core, the best the pipeline can do is run them back to back.
    cpu_bound_ratio = (1 / bare_rate) / (1 / bare_rate + costs["ms_per_image_1_thread"] / 1000 / cores)
    out = {
        "images": n, "batch_size": s.batch_size, "workers": s.workers, "commit_every": s.commit_every,
        "model_load_s": round(load_s, 2), "prepare": costs,
        "bare_forward_images_per_s": round(bare_rate, 2), "bare_runs": [round(b, 2) for b in bare],
        "pipeline_images_per_s": round(pipe_rate, 2), "pipeline_runs": pipe,
        "ratio_pipeline_to_bare": round(pipe_rate / bare_rate, 3),
        "ratio_if_decode_and_model_share_cores": round(cpu_bound_ratio, 3),
    }
    if lance:
        lance_rate = statistics.median(lance)
        out.update({"lancedb_open_clip_images_per_s": round(lance_rate, 2),
                    "lancedb_runs": [round(x, 2) for x in lance],
                    "ratio_lancedb_to_bare": round(lance_rate / bare_rate, 3),
                    "speedup_pipeline_vs_lancedb": round(pipe_rate / lance_rate, 2)})
    return out
