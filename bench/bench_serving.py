"""Serving: the in-process engine, the JSON API and the Gradio API under one and many users; cold CLI searches.

    .venv/bin/python bench/bench_serving.py                          # 100k rows, 60 s of load: ~15 min on 2 cores
    .venv/bin/python bench/bench_serving.py --rows 20000 --seconds 15 --gradio-seconds 10 --cli-runs 3   # quick

Everything in one run, on one library: an image table of --rows synthetic unit vectors in the space of the real
ViT-B-32 architecture with random weights (saved as a local model folder, open_clip_config.json + safetensors,
and loaded through the production path with model=<folder>, pretrained=""). The rows are written straight
through the store (no image is embedded); each row's keyword text holds three words of bench_fusion's
vocabulary, so the hybrid (keyword) side of a query finds rows, as file and folder names do. The keyword
index is built by the service's own maintenance, as after `mmsearch index`; the text tower is exported to
ONNX by the service, as at index time. Queries are distinct (no cache hit hides the encoding), 2-16 tokens.

1. One user: the in-process engine (MMSearch.query, text part, k=10, targets image+audio) and
   GET /api/v1/search over a loopback keep-alive connection to `mmsearch serve` (a separate process, as a
   user runs it), interleaved, the same query texts for both (each process has its own cache, so both miss).
   Cache hits timed apart.
2. 20 users: closed loop (each client sends its next query when its answer came), for --seconds, against
   the JSON API; then 20 caller threads in-process; then 20 gradio_client users on /search_text for
   --gradio-seconds. Errors: a failed request, an HTTP status other than 200, ok=false, or an answer
   without k results. After the load, a sample of the API's answers is checked against the in-process
   answer for the same text (a mixed-up answer would share almost no paths with its own query's).
3. Text encode, one query of up to 16 tokens: open_clip padded to 77, mmsearch's torch encoder on the real
   length, the exported ONNX tower (bench_text.py's functions), interleaved.
4. Cold CLI: a fresh `python -m mmsearch search "a cat" -k 10` (a) with the server running, (b) without a
   server, the ONNX export present (the light path), (c) MMSEARCH_NO_SERVER=1 and no export (the full
   path); and `mmsearch --help`. Median of --cli-runs. One more run of each records whether torch/lancedb
   were imported, peak RSS, and the paths printed (the three must agree).
Writes serving.json and serving.md to --out.
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

from common import ROOT, CpuShare, interleaved, machine, percentiles, timed

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import numpy as np  # noqa: E402

from bench_fusion import VOCAB, row_words  # noqa: E402
from bench_text import padded  # noqa: E402
from query_bench import Clusters, _chunks, _rows  # noqa: E402

from mmsearch.query.parts import QueryPart  # noqa: E402
from mmsearch.service import MMSearch  # noqa: E402
from mmsearch.settings import Settings  # noqa: E402
from mmsearch.store import Library  # noqa: E402

K = 10
TARGETS = ("image", "audio")  # what the API's and the CLI's default target=all searches
EXTRA = ("a photo of the red small big old new two green at night by the river over sea under snow with "
         "astronaut riding horse bowl ramen sunset bridge").split()
TODAY = {  # issue 11, measured before this work on the same architecture, 2 cores
    "in_process_text_query_ms": "75-92 (p50)",
    "api_text_query_ms": "no JSON API; /search_text over gradio_client 237-591, raw Gradio HTTP 124",
    "load": "20 gradio_client users, 20 s: 61 answers (3.0/s), p50 7.4 s, p95 10.2 s",
    "text_encode_ms": "72-100 (padded to 77)",
    "cold_cli_s": "11-12 (2.1 GB)",
}


# -- the library -----------------------------------------------------------------------------------
def model_folder(work: Path) -> Path:
    """The real ViT-B-32 architecture with random weights, laid out like a hub open_clip repo."""
    import open_clip

    folder = work / "models" / "vit-b-32-random"
    if not (folder / "open_clip_model.safetensors").is_file():
        sys.path.insert(0, str(ROOT / "tests"))
        saved = dict(os.environ)
        from conftest import make_tiny_model_dir  # the tests' own writer of a local model folder

        os.environ.clear()
        os.environ.update(saved)  # conftest turns the text export off for tests; this run needs it

        cfg = {"model_cfg": open_clip.get_model_config("ViT-B-32"),
               "preprocess_cfg": {"mean": list(open_clip.OPENAI_DATASET_MEAN),
                                  "std": list(open_clip.OPENAI_DATASET_STD)}}
        make_tiny_model_dir(folder, seed=0, cfg=cfg)
    return folder


def env_of(settings: Settings, **more: str) -> dict[str, str]:
    """The environment that gives a subprocess (serve, search) exactly these settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MMSEARCH_")}
    env.update({"MMSEARCH_DATA_DIR": str(settings.data_dir), "MMSEARCH_MODELS_DIR": str(settings.models_dir),
                "MMSEARCH_MODEL": settings.model, "MMSEARCH_PRETRAINED": settings.pretrained,
                "MMSEARCH_DEVICE": settings.device, "MMSEARCH_OFFLINE": "1", "HF_HUB_OFFLINE": "1",
                "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_DISABLE_TELEMETRY": "1", "TQDM_DISABLE": "1",
                "PYTHONPATH": str(ROOT)})
    env.update(more)
    return env


def photo_files(folder: Path, n: int) -> list[str]:
    """n paths of real files: one 1024x768 JPEG and n-1 symlinks to it (the web page shows only rows whose
    file exists under an indexed root, and renders each one's thumbnail, keyed by path)."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    one = folder / "_photo.jpg"
    rng = np.random.default_rng(0)
    small = rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)  # smooth noise: a photo-like JPEG size
    Image.fromarray(small).resize((1024, 768), Image.BILINEAR).save(one, quality=88)
    paths = []
    for i in range(n):
        p = folder / f"synthetic_{i:07d}.jpg"
        if not p.is_symlink():
            os.symlink(one.name, p)
        paths.append(str(p))
    return paths


def fill(table: Any, paths: list[str], chunk: int = 20_000) -> float:
    """query_bench's rows (clustered unit vectors, three vocabulary words each) at these file paths."""
    import pyarrow as pa

    clusters, rng, spent = Clusters(table.space.dim), np.random.default_rng(1), 0.0
    for start, size in _chunks(len(paths), chunk):
        rows = _rows(table, start, clusters.sample(size, rng), row_words)
        mine = paths[start:start + size]
        for name, values in (("path", mine), ("folder", [str(Path(mine[0]).parent)] * size),
                             ("name", [Path(p).name for p in mine])):
            i = rows.schema.get_field_index(name)
            rows = rows.set_column(i, rows.schema.field(i), pa.array(values, rows.schema.field(i).type))
        t = time.perf_counter()
        table.upsert(rows)
        spent += time.perf_counter() - t
    return spent


def build_library(settings: Settings, rows: int, photos: Path) -> tuple[MMSearch, dict]:
    svc = MMSearch(settings)
    t = time.perf_counter()
    svc.encoder.load()
    load_s = time.perf_counter() - t
    lib = Library(settings.data_dir, create=True)
    lib.add_root(str(photos))
    table = lib.table("image", svc.encoder.space, create=True)  # the encoder's own space: its queries reach it
    assert table is not None
    write_s = fill(table, photo_files(photos, rows))
    t = time.perf_counter()
    done = svc.maintain_index()  # the keyword index, as `mmsearch index` leaves it
    maintain_s = time.perf_counter() - t
    t = time.perf_counter()
    manifest = svc.export_text_tower()  # the ONNX text tower, as at index time
    export_s = time.perf_counter() - t
    if manifest is None:
        raise SystemExit(f"the text tower was not exported: {svc.text_export_problem}")
    return svc, {"rows": table.count(), "space": svc.encoder.space.id, "encoder_load_s": round(load_s, 2),
                 "write_s": round(write_s, 2), "maintenance": done, "maintain_s": round(maintain_s, 2),
                 "text_export_s": round(export_s, 1), "text_export": str(manifest)}


# -- queries ---------------------------------------------------------------------------------------
class Queries:
    """Distinct query texts of 2..16 tokens, handed out once each (thread-safe), in disjoint pools."""

    def __init__(self, tokenizer: Callable, n: int, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        words = VOCAB + EXTRA
        seen: dict[str, None] = {}
        while len(seen) < n:
            batch = [" ".join(rng.choice(words, size=int(rng.integers(1, 9)))) for _ in range(512)]
            lengths = tokenizer(batch).argmax(dim=-1) + 1  # the end-of-text token has the largest id
            for text, length in zip(batch, lengths.tolist()):
                if length <= 16:
                    seen.setdefault(text)
        self.texts = list(seen)[:n]
        self._next = itertools.count()
        self._lock = threading.Lock()

    def take(self) -> str:
        with self._lock:
            return self.texts[next(self._next)]

    def some(self, n: int) -> list[str]:
        return [self.take() for _ in range(n)]


# -- the server ------------------------------------------------------------------------------------
class Server:
    """`python -m mmsearch serve` on the library, in its own process, as a user starts it."""

    def __init__(self, settings: Settings, log: Path, env: dict[str, str] | None = None) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.record = Path(settings.data_dir) / "server.json"
        self.log = log.open("w")
        t = time.perf_counter()
        self.proc = subprocess.Popen([sys.executable, "-m", "mmsearch", "serve", "--port", str(self.port)],
                                     cwd=ROOT, env=env_of(settings, **(env or {})), stdout=self.log, stderr=subprocess.STDOUT)
        while True:
            if self.proc.poll() is not None:
                raise SystemExit(f"mmsearch serve exited with {self.proc.returncode}; see {log}")
            try:
                info = json.loads(self.record.read_text())
                if info.get("pid") == self.proc.pid:
                    break
            except (OSError, ValueError):
                pass
            if time.perf_counter() - t > 300:
                raise SystemExit(f"mmsearch serve did not start in 300 s; see {log}")
            time.sleep(0.2)
        self.start_s = time.perf_counter() - t
        self.url = info["url"]

    def cpu_s(self) -> float:
        """CPU seconds used by the server process so far (it is ours, not other people's load)."""
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_mb(self) -> float:
        try:
            for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return round(int(line.split()[1]) / 1024, 1)
        except OSError:
            pass
        return float("nan")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # the server's own Ctrl-C path: it forgets server.json
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


class Share(CpuShare):
    """CpuShare that also counts the server process as ours."""

    def __init__(self, server: Server | None = None) -> None:
        self.server = server
        self.server_start = server.cpu_s() if server else 0.0
        self.load_start = os.getloadavg()[0]
        super().__init__()

    def others(self) -> float:
        wall, busy, own = (b - a for a, b in zip(self.start, (time.perf_counter(), _busy_s(), _own_s())))
        if self.server:
            own += self.server.cpu_s() - self.server_start
        cores = len(os.sched_getaffinity(0))
        return round(max(0.0, busy - own) / (wall * cores), 3) if wall > 0 else 0.0

    def record(self) -> dict:
        return {"others_cpu_share": self.others(), "loadavg_1min_start": round(self.load_start, 2),
                "loadavg_1min_end": round(os.getloadavg()[0], 2)}


def _busy_s() -> float:
    from common import _busy_s as busy

    return busy()


def _own_s() -> float:
    from common import own_cpu_s

    return own_cpu_s()


class Api:
    """One keep-alive loopback connection to GET /api/v1/search (a closed idle connection is reopened once,
    as urllib3 and httpx do for an idempotent GET; such retries are counted)."""

    retries = 0

    def __init__(self, url: str) -> None:
        parts = urllib.parse.urlsplit(url)
        self.host, self.port = parts.hostname, parts.port
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=120)
        self.used = False

    def _get(self, path: str) -> tuple[int, bytes]:
        self.conn.request("GET", path)
        resp = self.conn.getresponse()
        return resp.status, resp.read()

    def search(self, text: str) -> dict:
        path = "/api/v1/search?" + urllib.parse.urlencode({"q": text, "k": K, "target": "all"})
        try:
            status, body = self._get(path)
        except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
            self.conn.close()  # the server closed the idle keep-alive connection (uvicorn: after 5 s)
            if not self.used:
                raise
            Api.retries += 1
            status, body = self._get(path)
        except (OSError, http.client.HTTPException):
            self.conn.close()
            raise
        self.used = True
        if status != 200:
            raise RuntimeError(f"HTTP {status}: {body[:200]!r}")
        answer = json.loads(body)
        if not answer.get("ok") or len(answer["results"]) != K:
            raise RuntimeError(f"bad answer: {answer.get('message')!r}, {len(answer.get('results', []))} results")
        return answer

    def close(self) -> None:
        self.conn.close()


def in_process(svc: MMSearch, text: str) -> list[str]:
    answer = svc.query([QueryPart("text", text)], svc.options(K, TARGETS))
    if len(answer.hits) != K:
        raise RuntimeError(f"{len(answer.hits)} hits for {text!r}")
    return [h.result.path for h in answer.hits]


def api_paths(answer: dict) -> list[str]:
    return [r["file"] for r in answer["results"]]


# -- 1. one user -----------------------------------------------------------------------------------
def one_user(svc: MMSearch, server: Server, queries: Queries, n: int) -> dict:
    api = Api(server.url)
    texts = queries.some(n + 2)  # the first two are interleaved's warm-up
    share = Share(server)
    stats = interleaved({"in-process engine": lambda i: in_process(svc, texts[i]),
                         "JSON API (GET /api/v1/search)": lambda i: api.search(texts[i])}, n, warmup=2)
    out: dict[str, Any] = {"queries": n, "latency_ms": stats, **share.record()}
    same = same_set = 0
    worst = 0.0
    for t in texts[:10]:  # both cached now
        mine = {h.result.path: h.result.score for h in svc.query([QueryPart("text", t)], svc.options(K, TARGETS)).hits}
        theirs = {r["file"]: r["score"] for r in api.search(t)["results"]}
        same += list(mine) == list(theirs)
        same_set += set(mine) == set(theirs)
        worst = max([worst] + [abs(mine[p] - theirs[p]) for p in set(mine) & set(theirs)])
    out["same_ranked_list_api_vs_in_process"] = f"{same}/10"
    out["same_top10_set_api_vs_in_process"] = f"{same_set}/10"
    out["max_abs_score_diff_api_vs_in_process"] = worst
    hits = interleaved({"in-process engine, cache hit": lambda i: in_process(svc, texts[i % len(texts)]),
                        "JSON API, cache hit": lambda i: api.search(texts[i % len(texts)])}, n, warmup=2)
    out["cache_hit_latency_ms"] = hits
    out["api_over_in_process_p50"] = round(stats["JSON API (GET /api/v1/search)"]["p50"]
                                           / stats["in-process engine"]["p50"], 3)
    api.close()
    return out


# -- 2. many users ---------------------------------------------------------------------------------
def closed_loop(clients: int, seconds: float, make: Callable[[int], Callable[[str], Any]], queries: Queries,
                keep: int = 0) -> dict:
    """`clients` users, each sending its next query when the last was answered, until `seconds` have passed."""
    callers = [make(i) for i in range(clients)]  # connections and clients made before the clock starts
    start = threading.Barrier(clients + 1)
    lat: list[list[float]] = [[] for _ in range(clients)]
    errors: list[list[str]] = [[] for _ in range(clients)]
    kept: list[tuple[str, Any]] = []
    deadline = [0.0]

    def user(i: int) -> None:
        start.wait()
        while time.perf_counter() < deadline[0]:
            text = queries.take()
            t = time.perf_counter()
            try:
                answer = callers[i](text)
            except Exception as exc:  # noqa: BLE001 - every failure is counted and a few are shown
                errors[i].append(f"{type(exc).__name__}: {str(exc)[:200]}")
                continue
            lat[i].append(time.perf_counter() - t)
            if len(kept) < keep:
                kept.append((text, answer))

    threads = [threading.Thread(target=user, args=(i,), daemon=True) for i in range(clients)]
    for th in threads:
        th.start()
    deadline[0] = time.perf_counter() + seconds
    t0 = time.perf_counter()
    start.wait()
    for th in threads:
        th.join()
    wall = time.perf_counter() - t0
    done = [x for xs in lat for x in xs]
    errs = [e for es in errors for e in es]
    out = {"clients": clients, "seconds": round(wall, 2), "answers": len(done), "errors": len(errs),
           "error_samples": sorted(set(errs))[:5], "answers_per_s": round(len(done) / wall, 2),
           "latency_s": percentiles(done, scale=1.0) if done else None,
           "slowest_client_answers": min(len(xs) for xs in lat)}
    out["_kept"] = kept
    return out


def many_users(svc: MMSearch, server: Server, queries: Queries, clients: int, seconds: float,
               gradio_seconds: float) -> dict:
    out: dict[str, Any] = {}
    share = Share(server)
    rss0 = server.rss_mb()
    api = closed_loop(clients, seconds, lambda i: Api(server.url).search, queries, keep=10**6)
    api.update(share.record(), server_rss_mb_before=rss0, server_rss_mb_after=server.rss_mb())
    kept = api.pop("_kept")
    out["json_api"] = api
    say("2. many users: in-process")
    share = Share(server)
    engine = closed_loop(clients, seconds, lambda i: (lambda text: in_process(svc, text)), queries)
    engine.pop("_kept")
    engine.update(share.record())
    out["in_process"] = engine
    out["api_over_in_process_throughput"] = round(api["answers_per_s"] / engine["answers_per_s"], 3)
    out["answers_checked"] = check_answers(svc, kept)
    if gradio_seconds > 0:
        say("2. many users: gradio_client")
        out["gradio_client"] = gradio_load(server, queries, clients, gradio_seconds)
        out["gradio_client_one_user"] = gradio_one_user(server, queries, 10)
    return out


def check_answers(svc: MMSearch, kept: list[tuple[str, Any]], n: int = 40) -> dict:
    """Each API answer under load against the in-process answer for its own text (a mix-up shares ~nothing)."""
    step = max(1, len(kept) // n)
    sample = kept[::step][:n]
    overlaps = [len(set(api_paths(a)) & set(in_process(svc, text))) / K for text, a in sample]
    return {"checked": len(sample), "identical_top10_sets": sum(o == 1.0 for o in overlaps),
            "min_overlap": min(overlaps) if overlaps else None,
            "mixed_up (overlap < 0.5)": sum(o < 0.5 for o in overlaps)}


def gradio_caller(url: str, queries: Queries) -> Callable[[str], Any]:
    """One gradio_client user (its defaults, as a user's script has them) calling /search_text."""
    from gradio_client import Client

    client = Client(url, verbose=False)

    def call(text: str) -> Any:
        answer = client.predict(text, K, api_name="/search_text")
        results = answer.get("results") if isinstance(answer, dict) else None
        if not isinstance(answer, dict) or not answer.get("ok", True) or not results or len(results) != K:
            raise RuntimeError(f"bad answer: {str(answer)[:200]}")
        return answer

    call.client = client  # type: ignore[attr-defined]
    return call


def gradio_one_user(server: Server, queries: Queries, n: int) -> dict:
    call = gradio_caller(server.url, queries)
    call(queries.take())
    share = Share(server)
    texts = queries.some(n)
    return {"latency_ms": percentiles([timed(lambda t=t: call(t)) for t in texts]), **share.record()}


def gradio_load(server: Server, queries: Queries, clients: int, seconds: float) -> dict:
    callers, setup_errors = [], []
    for _ in range(clients):  # one by one, each warmed (its first call sets up its session), before the clock
        call = gradio_caller(server.url, queries)
        try:
            call(queries.take())
        except Exception as exc:  # noqa: BLE001 - counted, and the client still joins the load
            setup_errors.append(f"{type(exc).__name__}: {str(exc)[:200]}")
        callers.append(call)
    share = Share(server)
    out = closed_loop(clients, seconds, lambda i: callers[i], queries)
    out.pop("_kept")
    out.update(share.record(), setup_errors=setup_errors)
    for c in callers:
        try:
            c.client.close()
        except Exception:  # noqa: BLE001 - older clients have no close
            pass
    return out


# -- 3. text encode --------------------------------------------------------------------------------
def text_encode(svc: MMSearch, manifest: Path, queries: Queries, n: int) -> dict:
    """Run in a worker thread, as every production encode is (TextFront's worker, the server's pool): on this
    machine torch called from the main thread ran several times slower (see main_thread_sample)."""
    box: dict[str, Any] = {}

    def work() -> None:
        try:
            box["out"] = _text_encode(svc, manifest, queries, n)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller
            box["error"] = exc

    th = threading.Thread(target=work, name="bench-text-encode")
    th.start()
    th.join()
    if "error" in box:
        raise box["error"]
    out = box["out"]
    enc, texts = svc.encoder, queries.some(8)
    enc.encode_text([texts[0]])
    out["main_thread_sample"] = {"torch, real length, called from the main thread":
                                 percentiles([timed(lambda t=t: enc.encode_text([t])) for t in texts[1:]])}
    return out


def _text_encode(svc: MMSearch, manifest: Path, queries: Queries, n: int) -> dict:
    from mmsearch.encoders.onnx_text import OnnxTextEncoder

    enc = svc.encoder
    onnx = OnnxTextEncoder(manifest)  # the light path's own settings (threads) as the CLI makes it
    onnx.load()
    texts = queries.some(n + 3)
    lengths = [int(r.argmax()) + 1 for r in enc._tokenizer(texts).numpy()]
    share = Share()
    stats = interleaved({"torch, padded to 77 (before)": lambda i: padded(enc, [texts[i]]),
                         "torch, real length": lambda i: enc.encode_text([texts[i]]),
                         "onnx runtime, real length": lambda i: onnx.encode_text([texts[i]])}, n, warmup=3)
    ref = padded(enc, texts)
    diffs = {"torch, real length": float(np.abs(enc.encode_text(texts) - ref).max()),
             "onnx runtime, real length": float(np.abs(onnx.encode_text(texts) - ref).max())}
    gaps = np.linalg.norm(ref[:, None] - ref[None], axis=-1)[~np.eye(len(texts), dtype=bool)]
    return {"queries": n, "tokens": {"min": min(lengths), "median": statistics.median(lengths),
                                     "max": max(lengths)},
            "latency_ms": stats, "max_abs_diff_vs_padded": diffs,
            "min_distance_between_queries": round(float(gaps.min()), 3), **share.record()}


# -- 4. cold CLI -----------------------------------------------------------------------------------
PROBE = """
import runpy, sys, json
sys.argv = ["mmsearch"] + sys.argv[1:]
try:
    runpy.run_module("mmsearch", run_name="__main__", alter_sys=True)
except SystemExit as e:
    code = e.code
else:
    code = 0
sys.stdout.flush()
print(json.dumps({"torch": "torch" in sys.modules, "lancedb": "lancedb" in sys.modules,
                  "onnxruntime": "onnxruntime" in sys.modules, "code": code,
                  "peak_rss_mb": round(int(next(l for l in open("/proc/self/status") if l.startswith("VmHWM:"))
                                           .split()[1]) / 1024, 1)}),
      file=sys.stderr)
"""


def cold_cli(name: str, args: list[str], env: dict[str, str], runs: int) -> dict:
    cmd = [sys.executable, "-m", "mmsearch", *args]
    walls = []
    for _ in range(runs):
        t = time.perf_counter()
        done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
        walls.append(time.perf_counter() - t)
        if done.returncode != 0:
            raise SystemExit(f"{name}: `mmsearch {' '.join(args)}` failed ({done.returncode}): {done.stderr[-800:]}")
    probe = subprocess.run([sys.executable, "-c", PROBE, *args], cwd=ROOT, env=env, capture_output=True, text=True)
    facts = json.loads(probe.stderr.strip().splitlines()[-1])
    paths = [json.loads(line)["path"] for line in done.stdout.splitlines() if line.startswith("{")]
    return {"command": "mmsearch " + " ".join(args), "runs_s": [round(w, 3) for w in walls],
            "median_s": round(statistics.median(walls), 3), **facts, "paths": paths}


def cli_without_server(settings: Settings, empty_models: Path, runs: int) -> dict:
    query = ["search", "a cat", "-k", str(K)]
    share = Share()
    out = {"help": cold_cli("help", ["--help"], env_of(settings), runs),
           "b_light_onnx": cold_cli("light", query, env_of(settings, MMSEARCH_NO_SERVER="1"), runs),
           "c_full_no_export": cold_cli("full", query, env_of(settings, MMSEARCH_NO_SERVER="1",
                                                             MMSEARCH_MODELS_DIR=str(empty_models)), runs)}
    out["help"].pop("paths")
    out.update(share.record())
    return out


# -- what dominates -----------------------------------------------------------------------------
IMPORTS = ("lancedb", "mmsearch.settings", "mmsearch.query.parts", "onnxruntime", "tokenizers")


def what_dominates(settings: Settings, photos: Path, runs: int = 3) -> dict:
    """Fresh-process import costs (wall and CPU) behind the cold CLI, and a thumbnail behind /search_text."""
    import resource

    from mmsearch.ui.thumbs import Renditions

    env = env_of(settings)
    imports = {}
    for mod in IMPORTS:
        walls, cpus = [], []
        for _ in range(runs):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            t = time.perf_counter()
            subprocess.run([sys.executable, "-c", f"import {mod}"], cwd=ROOT, env=env, check=True)
            walls.append(time.perf_counter() - t)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpus.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
        imports[mod] = {"wall_s": round(statistics.median(walls), 3), "cpu_s": round(statistics.median(cpus), 3)}
    bare = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], cwd=ROOT, env=env, check=True)
        bare.append(time.perf_counter() - t)
    thumbs = Renditions(Path(tempfile.mkdtemp(prefix="bench-thumbs-")), settings.max_image_pixels)
    paths = [str(photos / f"synthetic_{i:07d}.jpg") for i in range(10)]
    per = [timed(lambda p=p: thumbs.get(p)) for p in paths]
    shutil.rmtree(thumbs.folder, ignore_errors=True)
    return {"fresh_process_import": imports, "python_startup_s": round(statistics.median(bare), 3),
            "thumbnail_384_webp_ms": percentiles(per)}


# -- the report ------------------------------------------------------------------------------------
def verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def report(r: dict) -> str:
    m, lib = r["machine"], r["library"]
    one, many, enc, cli = r["one_user"], r["many_users"], r["text_encode"], r["cli"]
    api_l, eng_l = one["latency_ms"]["JSON API (GET /api/v1/search)"], one["latency_ms"]["in-process engine"]
    api, eng = many["json_api"], many["in_process"]
    real = enc["latency_ms"]["torch, real length"]["p50"]
    onnx = enc["latency_ms"]["onnx runtime, real length"]["p50"]
    a, b, c = cli["a_with_server"], cli["b_light_onnx"], cli["c_full_no_export"]
    cmd = r["command"]
    lines = [
        "# Serving: engine, JSON API, Gradio API, cold CLI (ViT-B-32 architecture, random weights)", "",
        f"`{cmd}` ({'the full run' if r['full_run'] else 'a reduced run'}: {lib['rows']:,} rows, "
        f"{r['seconds']} s of load, {r['gradio_seconds']} s through gradio_client) on {m['cpu']}, "
        f"{m['cores_usable']} usable cores shared with other sessions; load average at start "
        f"{', '.join(f'{x:.2f}' for x in m['loadavg_start'])}, at end {', '.join(f'{x:.2f}' for x in r['loadavg_end'])}. "
        f"mmsearch {m['mmsearch_source']}; torch {m['torch']}, {m['torch_threads']} threads. "
        f"Took {r['wall_s'] / 60:.1f} min in all.", "",
        f"Library: one image table of {lib['rows']:,} synthetic unit vectors in the model's space "
        f"(`{lib['space']}`), keyword index built by the service's maintenance, text tower exported to ONNX by "
        f"the service ({lib['text_export_s']:.0f} s). The server is `python -m mmsearch serve` in its own process "
        f"(started in {r['server']['start_s']:.0f} s, {r['server']['rss_mb']:.0f} MB RSS after the load). "
        "\"others' CPU\" is the share of both cores used by processes other than this benchmark and its server "
        "while a section ran.", "",
        "## Against the targets (issue 11)", "",
        "| figure | measured | target | today (issue 11) | |", "|---|---:|---:|---|---|",
        f"| JSON API text query p50 / in-process p50 | {api_l['p50']:.0f} / {eng_l['p50']:.0f} ms = "
        f"**{one['api_over_in_process_p50']:.2f}x** | <= 1.25x | {TODAY['api_text_query_ms']} ms; in-process "
        f"{TODAY['in_process_text_query_ms']} ms | {verdict(one['api_over_in_process_p50'] <= 1.25)} |",
        f"| {api['clients']} clients, {api['seconds']:.0f} s, JSON API: errors | **{api['errors']}** "
        f"({api['answers']} answers) | 0 | 3.0/s through Gradio | {verdict(api['errors'] == 0)} |",
        f"| ... throughput | **{api['answers_per_s']:.1f}/s** | >= 12/s (4x 3/s) | 3.0/s "
        f"| {verdict(api['answers_per_s'] >= 12)} |",
        f"| ... throughput / in-process with {eng['clients']} threads ({eng['answers_per_s']:.1f}/s) | "
        f"**{many['api_over_in_process_throughput']:.2f}x** | >= 0.7x | | "
        f"{verdict(many['api_over_in_process_throughput'] >= 0.7)} |",
        f"| ... p95 latency | **{api['latency_s']['p95']:.2f} s** (p50 {api['latency_s']['p50']:.2f} s) | <= 1.5 s "
        f"| p95 10.2 s, p50 7.4 s | {verdict(api['latency_s']['p95'] <= 1.5)} |",
        f"| text encode p50, <= 16 tokens: torch real length / ONNX | **{real:.1f} / {onnx:.1f} ms** (padded "
        f"{enc['latency_ms']['torch, padded to 77 (before)']['p50']:.1f}) | <= 20 ms | {TODAY['text_encode_ms']} ms "
        f"| {verdict(min(real, onnx) <= 20)} ({'ONNX' if onnx < real else 'torch'}) |",
        f"| cold `mmsearch search \"a cat\"`, server running | **{a['median_s']:.2f} s** | <= 0.5 s | "
        f"{TODAY['cold_cli_s']} s | {verdict(a['median_s'] <= 0.5)} |",
        f"| cold `mmsearch search \"a cat\"`, no server (ONNX export) | **{b['median_s']:.2f} s** | <= 2.5 s | "
        f"{TODAY['cold_cli_s']} s | {verdict(b['median_s'] <= 2.5)} |",
        f"| `mmsearch --help` | **{cli['help']['median_s']:.2f} s** | <= 0.5 s | | "
        f"{verdict(cli['help']['median_s'] <= 0.5)} |",
        "",
        f"## 1. One user ({one['queries']} distinct queries, interleaved; others' CPU {one['others_cpu_share']:.0%})",
        "", "| path | p50 ms | p95 ms | mean ms |", "|---|---:|---:|---:|",
    ]
    for name, st in {**one["latency_ms"], **one["cache_hit_latency_ms"]}.items():
        lines.append(f"| {name} | {st['p50']:.1f} | {st['p95']:.1f} | {st['mean']:.1f} |")
    lines += ["", f"Same ranked list from the API and in-process for the same text: "
                  f"{one['same_ranked_list_api_vs_in_process']}; same top-10 set: "
                  f"{one['same_top10_set_api_vs_in_process']}; largest score difference of a shared result "
                  f"{one['max_abs_score_diff_api_vs_in_process']:.1e} (the two processes embed the text separately).", "",
              f"## 2. Many users (closed loop: each client sends its next query when answered; distinct queries)", "",
              "| surface | clients | seconds | answers | errors | answers/s | p50 s | p95 s | others' CPU |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, key in (("JSON API, GET /api/v1/search (keep-alive)", "json_api"),
                      ("in-process engine, caller threads", "in_process"),
                      ("gradio_client /search_text", "gradio_client")):
        s = many.get(key)
        if s:
            lat = s["latency_s"] or {"p50": float("nan"), "p95": float("nan")}
            lines.append(f"| {name} | {s['clients']} | {s['seconds']:.0f} | {s['answers']} | {s['errors']} | "
                         f"{s['answers_per_s']:.1f} | {lat['p50']:.2f} | {lat['p95']:.2f} | "
                         f"{s['others_cpu_share']:.0%} |")
    chk = many["answers_checked"]
    lines += ["", f"Answers under load checked against the in-process answer for the same text: {chk['checked']} "
                  f"checked, {chk['identical_top10_sets']} with the identical top-10 set, minimum overlap "
                  f"{chk['min_overlap']}, mixed up (overlap < 0.5): {chk['mixed_up (overlap < 0.5)']}.", ""]
    for key in ("json_api", "in_process", "gradio_client"):
        if many.get(key, {}).get("error_samples"):
            lines.append(f"Errors ({key}): " + "; ".join(f"`{e}`" for e in many[key]["error_samples"]))
    lines += ["", f"## 3. Text encode, one query ({enc['queries']} distinct, {enc['tokens']['min']}-"
                  f"{enc['tokens']['max']} tokens, median {enc['tokens']['median']}; others' CPU "
                  f"{enc['others_cpu_share']:.0%})", "",
              "| path | p50 ms | p95 ms | max abs diff vs padded |", "|---|---:|---:|---:|"]
    for name, st in {**enc["latency_ms"], **enc["main_thread_sample"]}.items():
        d = enc["max_abs_diff_vs_padded"].get(name)
        lines.append(f"| {name} | {st['p50']:.1f} | {st['p95']:.1f} | {'' if d is None else f'{d:.1e}'} |")
    lines += ["", f"Different queries are at least {enc['min_distance_between_queries']} apart (L2).", "",
              f"## 4. Cold CLI (a fresh process each run; median of {len(a['runs_s'])})", "",
              "| case | median s | runs s | imports torch | imports lancedb | peak RSS MB |",
              "|---|---:|---|---|---|---:|"]
    for name, key in (("(a) server running", "a_with_server"), ("(b) no server, ONNX export (light path)",
                                                                "b_light_onnx"),
                      ("(c) MMSEARCH_NO_SERVER=1, no export (full path)", "c_full_no_export"),
                      ("`mmsearch --help`", "help")):
        s = cli[key]
        lines.append(f"| {name} | {s['median_s']:.2f} | {', '.join(f'{x:.2f}' for x in s['runs_s'])} | "
                     f"{'yes' if s['torch'] else 'no'} | {'yes' if s['lancedb'] else 'no'} | {s['peak_rss_mb']:.0f} |")
    lines += ["", f"The three searches print the same {K} paths: {cli['same_paths']}.", ""]
    dom = r["dominates"]
    lines += ["## What the time goes to", "",
              f"Fresh-process imports (median of 3; Python itself starts in {dom['python_startup_s']:.2f} s):", "",
              "| import | wall s | CPU s |", "|---|---:|---:|"]
    for mod, st in dom["fresh_process_import"].items():
        lines.append(f"| `{mod}` | {st['wall_s']:.2f} | {st['cpu_s']:.2f} |")
    th = dom["thumbnail_384_webp_ms"]
    lines += ["", f"One 384-px WebP thumbnail of a 1024x768 JPEG (what /search_text and the Search tab render for "
                  f"each result not yet cached): p50 {th['p50']:.0f} ms, so {K * th['p50']:.0f} ms of CPU per "
                  f"query with {K} new results. Keep-alive connections the server had closed while idle, reopened "
                  f"by the benchmark's client: {r['api_keepalive_reopens']}.", ""]
    if r.get("notes"):
        lines += ["## Notes", ""] + [f"- {n}" for n in r["notes"]] + [""]
    return "\n".join(lines)


NOTES = [
    "Two server fixes came out of this benchmark (same branch): (1) the listening socket is made with "
    "proto=IPPROTO_TCP, so asyncio turns Nagle off on accepted connections; before, each answer on a kept-alive "
    "connection waited ~40 ms for the delayed ACK (GET /openapi.json 44 ms -> 0.9 ms, a cached text query 68 -> "
    "22 ms over http.client keep-alive; gradio_client's httpx connections paid it too). (2) `mmsearch serve` sets "
    "OMP_WAIT_POLICY=PASSIVE before torch loads: with 20 clients the server's OpenMP threads spin-waited between "
    "torch calls and took 99 ms of CPU per text query against 45 ms (8.7 -> 21.8 answers/s on a 2,000-row "
    "library in a probe run, in-process 23.2/s). The bench process itself keeps the default policy, as a "
    "program embedding the engine would.",
    "Section 3 runs in a worker thread, as production encodes do (TextFront's worker, the server's threads): "
    "on this loaded machine the same torch call made from the main thread ran several times slower (the "
    "main-thread row), which is OpenMP spin-waiting too (OMP_WAIT_POLICY=PASSIVE brought it back in a probe).",
    "gradio_client users go through /search_text, which renders a WebP thumbnail for every result not yet "
    "cached (see 'What the time goes to'); the JSON API returns a thumbnail URL instead and renders on request. "
    "Each synthetic row points at its own symlink to one real 1024x768 JPEG under an indexed root, so the page's "
    "existence check and thumbnails do real work.",
    "The in-process engine runs in this benchmark's process with the default OpenMP policy, so under 20 "
    "callers it spin-waits as the server did before fix (2); that is why the API beat it in some earlier runs. In the probe "
    "with OMP_WAIT_POLICY=PASSIVE for both, the API sustained 0.94x the in-process rate (21.8 vs 23.2/s).",
    "Cold light path (b), stop 19: lancedb is imported without its REST client and without pandas "
    "(mmsearch/lazy_imports.py), the exported ONNX text tower loads on a thread meanwhile (query/light.Preload), "
    "and the engine scans in LanceDB (no matrix loaded). The 'What the time goes to' import row for lancedb is "
    "a bare `import lancedb` (both pieces included), not what the CLI pays.",
    "Many users, stop 19: searches that arrive while another scans the same resident table share its next "
    "scan (search/batching.py), and the rerank confirms candidate paths from the path column alone; the JSON "
    "API went from 13.8 to 22.0 answers/s and p95 1.82 -> 1.26 s between the stop-18 and stop-19 runs, both "
    "on a quiet machine.",
    "gradio_client /search_text returns each result's thumbnail as a URL (/api/v1/thumb?file=...), yet renders "
    "the WebP for every result first (the page's existence check): ~0.37 s of CPU per query that an API caller "
    "never receives; that, more than Gradio's queue, keeps it near the old 3/s.",
]
T0 = time.perf_counter()


def say(what: str) -> None:
    print(f"[{time.perf_counter() - T0:6.0f} s] {what} ...", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--seconds", type=float, default=60.0, help="load per surface (JSON API, in-process)")
    ap.add_argument("--gradio-seconds", type=float, default=20.0, help="load through gradio_client (0: skip)")
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--queries", type=int, default=40, help="single-user queries per path (sections 1 and 3)")
    ap.add_argument("--cli-runs", type=int, default=5)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    ap.add_argument("--name", default="serving", help="result file names: NAME.json, NAME.md")
    ap.add_argument("--work", type=Path, default=None, help="keep the library and model here (default: a temp dir)")
    ap.add_argument("--report-from", type=Path, default=None, help="only rewrite NAME.md from this JSON")
    args = ap.parse_args()
    if args.report_from:
        result = json.loads(args.report_from.read_text())
        result["notes"] = NOTES
        args.report_from.write_text(json.dumps(result, indent=1, default=str))
        (args.out / f"{args.name}.md").write_text(report(result))
        return
    t_all = time.perf_counter()
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-serving-"))
    full = args.rows >= 100_000 and args.seconds >= 60 and args.clients >= 20
    result: dict[str, Any] = {"command": "python bench/bench_serving.py " + " ".join(sys.argv[1:]),
                              "full_run": full, "rows": args.rows, "seconds": args.seconds,
                              "gradio_seconds": args.gradio_seconds, "clients": args.clients,
                              "today_issue_11": TODAY, "machine": machine()}
    folder = model_folder(work)
    shutil.rmtree(work / "library", ignore_errors=True)
    settings = Settings(data_dir=work / "library", models_dir=work / "models", model=str(folder), pretrained="",
                        device="cpu", offline=True)
    say(f"building the library in {work}")
    svc, result["library"] = build_library(settings, args.rows, work / "photos")
    queries = Queries(svc.encoder._tokenizer, 40_000)
    say("3. text encode")
    result["text_encode"] = text_encode(svc, Path(result["library"]["text_export"]), queries, args.queries)
    say("4. cold CLI without a server")
    empty_models = work / "no-export-models"
    empty_models.mkdir(exist_ok=True)
    result["cli"] = cli_without_server(settings, empty_models, args.cli_runs)
    say("starting mmsearch serve")
    server = Server(settings, work / "serve.log")
    try:
        warm = Api(server.url)
        t = time.perf_counter()
        warm.search(queries.take())  # the server's first query loads its model
        first_s = time.perf_counter() - t
        for _ in range(5):
            warm.search(queries.take())
        warm.close()
        for _ in range(3):
            in_process(svc, queries.take())
        say("1. one user")
        result["one_user"] = one_user(svc, server, queries, args.queries)
        say("2. many users")
        result["many_users"] = many_users(svc, server, queries, args.clients, args.seconds, args.gradio_seconds)
        say("4a. cold CLI with the server")
        share = Share(server)
        result["cli"]["a_with_server"] = cold_cli("server", ["search", "a cat", "-k", str(K)], env_of(settings),
                                                  args.cli_runs)
        result["cli"]["a_with_server"].update(share.record())
        result["server"] = {"start_s": round(server.start_s, 1), "first_query_s": round(first_s, 2),
                            "rss_mb": server.rss_mb(), "url": server.url}
    finally:
        server.stop()
    say("what dominates")
    result["dominates"] = what_dominates(settings, work / "photos")
    result["api_keepalive_reopens"] = Api.retries
    cli = result["cli"]
    cli["same_paths"] = (cli["a_with_server"]["paths"] == cli["b_light_onnx"]["paths"]
                         == cli["c_full_no_export"]["paths"] and len(cli["a_with_server"]["paths"]) == K)
    result["queries_used"] = next(queries._next)
    result["loadavg_end"] = os.getloadavg()
    result["wall_s"] = round(time.perf_counter() - t_all, 1)
    result["notes"] = NOTES
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.name}.json").write_text(json.dumps(result, indent=1, default=str))
    text = report(result)
    (args.out / f"{args.name}.md").write_text(text)
    print(text)
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
