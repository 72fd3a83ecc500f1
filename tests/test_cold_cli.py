"""The cold text query's two speed-ups: LanceDB imported without its REST client, and the exported text
tower read on a thread while LanceDB is imported (query/light.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mmsearch.query.light import Preload, export_folder, light_engine
from mmsearch.query.parts import QueryOptions, QueryPart
from mmsearch.service import MMSearch
from mmsearch.settings import Settings
from tests.conftest import write_image

ROOT = Path(__file__).resolve().parent.parent
CLIENT = "lance_namespace_urllib3_client"


def test_lancedb_works_without_importing_its_rest_client(tmp_path: Path) -> None:
    script = f"""
import sys
import mmsearch.store.library  # imports lancedb the way mmsearch does
import lancedb
import pyarrow as pa
deferred = '{CLIENT}.api.table_api' not in sys.modules
db = lancedb.connect({str(tmp_path / 'db')!r})
t = db.create_table('t', pa.table({{'vector': pa.array([[1.0, 0.0], [0.0, 1.0]], pa.list_(pa.float32(), 2)),
                                    'text': ['red bus', 'blue sky']}}))
t.create_fts_index('text')
near = t.search([0.9, 0.1]).limit(1).to_list()[0]['text']
words = t.search('sky', query_type='fts').limit(1).to_list()[0]['text']
still = '{CLIENT}.api.table_api' not in sys.modules
import {CLIENT}
api = {CLIENT}.ApiClient.__name__  # the first real use runs the package's own __init__
print(deferred, near, words, still, api, '{CLIENT}.api.table_api' in sys.modules)
"""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["True", "red", "bus", "blue", "sky", "True", "ApiClient", "True"]


@pytest.fixture
def exported(settings: Settings, tmp_path: Path) -> tuple[Settings, MMSearch]:
    settings = settings.model_copy(update={"text_export": True, "models_dir": tmp_path / "models"})
    root = tmp_path / "pics"
    for i in range(6):
        write_image(root / f"p{i}.png", seed=90 + i)
    svc = MMSearch(settings)
    svc.index([root])
    assert svc.text_export_problem is None
    return settings, svc


def _other_space_export(folder: Path) -> Path:
    """A second, newer export for a space no table of the library has (its manifest names another space)."""
    mine = next(folder.glob("*-text.json"))
    manifest = json.loads(mine.read_text())
    manifest["space_id"] = "open_clip_some_other_space"
    other = folder / "zz-other-text.json"
    other.write_text(json.dumps(manifest))
    os.utime(other, (mine.stat().st_mtime + 10, mine.stat().st_mtime + 10))
    return other


def test_light_engine_uses_the_preloaded_tower_of_the_searched_space(exported, monkeypatch) -> None:
    settings, svc = exported
    folder = export_folder(settings.models_dir)
    _other_space_export(folder)
    made: list[Preload] = []

    class Watched(Preload):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            made.append(self)

    monkeypatch.setattr("mmsearch.query.light.Preload", Watched)
    parts = [QueryPart("text", "a red square")]
    engine = light_engine(settings.data_dir, settings.models_dir, ["image"], settings.ann_threshold, parts)
    assert engine is not None and len(made) == 1
    preload = made[0]
    assert sorted(preload.encoders) == sorted([svc.encoder.space.id, "open_clip_some_other_space"])
    [used] = engine.encoders
    assert used is preload.take(svc.encoder.space.id)  # the tower read ahead, not a second copy
    light = engine.run(parts, QueryOptions(k=4, targets=["image"], hybrid=False))
    full = svc.query(parts, QueryOptions(k=4, targets=["image"], hybrid=False))
    assert [h.result.path for h in light.hits] == [h.result.path for h in full.hits] and len(light.hits) == 4
    assert [h.score for h in light.hits] == pytest.approx([h.score for h in full.hits], abs=1e-4)


def test_light_engine_without_exports_takes_the_full_path(exported, tmp_path: Path) -> None:
    settings, _ = exported
    parts = [QueryPart("text", "a red square")]
    assert light_engine(settings.data_dir, tmp_path / "no-models", ["image"], settings.ann_threshold, parts) is None
    assert light_engine(settings.data_dir, settings.models_dir, ["image"], settings.ann_threshold,
                        [QueryPart("image", str(tmp_path / "pics" / "p0.png"))]) is None


def test_a_long_running_service_embeds_text_queries_with_the_exported_tower(exported) -> None:
    from mmsearch.encoders.onnx_text import OnnxTextEncoder
    from mmsearch.query.textcache import front

    settings, _ = exported
    svc = MMSearch(settings.model_copy(update={"text_backend": "auto"}))  # auto: the export, on this CPU
    parts = [QueryPart("text", "a red square")]
    options = QueryOptions(k=4, targets=["image"], hybrid=False)
    answer = svc.query(parts, options)
    tower = front(svc.encoder, tower=svc.text_tower).text_tower()
    assert isinstance(tower, OnnxTextEncoder) and tower.loaded  # the service's text queries ran on ONNX
    torch_svc = MMSearch(settings.model_copy(update={"text_backend": "torch"}))
    assert torch_svc.text_tower(torch_svc.encoder) is None
    by_torch = torch_svc.query(parts, options)
    assert front(torch_svc.encoder, tower=torch_svc.text_tower).text_tower() is None
    assert [h.result.path for h in answer.hits] == [h.result.path for h in by_torch.hits]
    assert [h.score for h in answer.hits] == pytest.approx([h.score for h in by_torch.hits], abs=1e-4)


def test_cold_cli_text_search_loads_neither_torch_nor_pandas(exported) -> None:
    settings, svc = exported
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MMSEARCH_DATA_DIR": str(settings.data_dir),
           "MMSEARCH_MODELS_DIR": str(settings.models_dir), "MMSEARCH_MODEL": settings.model,
           "MMSEARCH_PRETRAINED": "", "MMSEARCH_OFFLINE": "1", "MMSEARCH_DEVICE": "cpu", "MMSEARCH_NO_SERVER": "1"}
    code = ("import sys\nfrom mmsearch.cli import main\nsys.argv = ['mmsearch'] + sys.argv[1:]\ntry:\n    main()\n"
            "finally:\n    print('HEAVY', sorted(m for m in ('torch', 'pandas') if m in sys.modules), file=sys.stderr)")
    done = subprocess.run([sys.executable, "-c", code, "search", "a red square", "-k", "4"], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "HEAVY []" in done.stderr, done.stderr[-2000:]
    cli = [json.loads(line)["path"] for line in done.stdout.splitlines()]
    here = svc.query([QueryPart("text", "a red square")], QueryOptions(k=4, targets=["image"]))
    assert cli == [h.result.path for h in here.hits] and len(cli) == 4
