"""Peak memory of one indexing process, for a small and a large folder: it should not grow with the folder."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ModelUnderTest, proc_status_mb

from mmsearch.ingest.indexer import Progress
from mmsearch.service import MMSearch


def child_main(mut: ModelUnderTest, folder: Path, data_dir: Path) -> None:
    """Runs in the measured subprocess: load the model, index the folder, print one JSON line."""
    encoder = mut.encoder()
    encoder.load()
    after_load = {"rss_after_load_mb": proc_status_mb("VmRSS"), "hwm_after_load_mb": proc_status_mb("VmHWM")}
    hwm_at: dict[str, float] = {}

    def quartiles(p: Progress) -> None:  # the high-water mark along the run: a plateau means flat memory
        for q in (25, 50, 75):
            if p.total and p.done == p.total * q // 100:
                hwm_at[f"{q}%"] = proc_status_mb("VmHWM")

    t = time.perf_counter()
    report = MMSearch(mut.with_data_dir(data_dir), encoder=encoder).index([folder], on_progress=quartiles)
    hwm_at["100%"] = proc_status_mb("VmHWM")
    print(json.dumps({**after_load, "embedded": report.embedded, "index_s": round(time.perf_counter() - t, 2),
                      "hwm_end_mb": hwm_at["100%"], "hwm_along_run_mb": hwm_at}))


def measure(model_key: str, work: Path, folder: Path) -> dict:
    """Start the child and follow its kernel high-water mark (VmHWM) from outside until it exits.

    Not getrusage(RUSAGE_CHILDREN) / wait4(): on Linux the child's ru_maxrss starts from the parent's
    resident size at fork, so with a parent holding a model it reported the parent's peak, not the child's.
    """
    data_dir = work / f"rss-lib-{folder.name}"
    shutil.rmtree(data_dir, ignore_errors=True)
    cmd = [sys.executable, str(Path(__file__).with_name("bench_core.py")), "--model", model_key,
           "--work", str(work), "--rss-child", str(folder), str(data_dir)]
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err)
        peak = 0.0
        while proc.poll() is None:
            peak = max(peak, _hwm_mb(proc.pid))
            time.sleep(0.02)
        out.seek(0)
        err.seek(0)
        lines = [line for line in out.read().splitlines() if line.startswith("{")]
        if proc.returncode != 0 or not lines:
            raise RuntimeError(f"rss child failed ({proc.returncode}): {err.read()[-2000:]}")
    shutil.rmtree(data_dir, ignore_errors=True)
    result = json.loads(lines[-1])
    # The child's own VmHWM right after index() is the peak of loading + indexing; the polled one also
    # covers interpreter shutdown, which here added ~90 MiB after the work was done.
    indexing_peak = result["hwm_end_mb"]
    return {"images": len(list(folder.iterdir())), "peak_rss_mb": indexing_peak,
            "peak_minus_after_load_mb": round(indexing_peak - result["hwm_after_load_mb"], 1),
            "process_lifetime_peak_mb": max(peak, indexing_peak), **result}


def _hwm_mb(pid: int) -> float:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    kb = next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:")), 0)
    return round(kb / 1024, 1)


def run_rss(model_key: str, work: Path, folders: list[Path]) -> dict:
    runs = [measure(model_key, work, f) for f in folders]
    small, large = runs[0], runs[-1]
    return {"runs": runs, "growth_mb": round(large["peak_rss_mb"] - small["peak_rss_mb"], 1),
            "growth_mb_per_1000_images": round(
                (large["peak_rss_mb"] - small["peak_rss_mb"]) / max(1, large["images"] - small["images"]) * 1000, 2)}
