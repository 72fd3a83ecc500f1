"""The Combine tab offers composed image+text queries (an image changed by words) through the one engine."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmsearch.query.parts import QueryOptions, QueryPart
from mmsearch.service import MMSearch
from tests import zoo_support as zs


@pytest.fixture(scope="module")
def bge_vl_dir(tmp_path_factory) -> Path:
    return zs.make_tiny_bge_vl(tmp_path_factory.mktemp("zoo") / "tiny-bge-vl")


def _run(actions, composed, texts=()):
    return actions.run(list(texts), [], [], "images", 3, "rrf", False, True, 1.0, None, "", "", "", "", "",
                       composed=composed)


def test_combine_tab_runs_a_composed_part(bge_vl_dir: Path, settings, photo_dir: Path, tmp_path: Path) -> None:
    from mmsearch.ui.compose import ComposeActions
    from mmsearch.ui.thumbs import Renditions

    svc = MMSearch(settings.model_copy(update={"audio": False, "encoder": "bge-vl", "model": str(bge_vl_dir)}))
    svc.index([photo_dir])
    actions = ComposeActions(svc, Renditions(tmp_path / "r", 10**8), lambda p: None)
    ref = str(photo_dir / "img1.png")
    found = _run(actions, [(ref, "but in red", 1.0)])
    assert found.ok, found.message
    want = svc.query([QueryPart("composed", (ref, "but in red"))], QueryOptions(k=3, targets=("image",),
                                                                                hybrid=False))
    assert [h.result.path for h in found.hits] == [h.result.path for h in want.hits]
    assert all(c.part.startswith("+1 composed:img1.png") for h in found.hits for c in h.contributions)
    missing = _run(actions, [(None, "but in red", 1.0)])
    assert not missing.ok and "reference image" in missing.message


def test_composed_part_on_a_clip_library_is_a_message(settings, photo_dir: Path, tmp_path: Path) -> None:
    from mmsearch.ui.compose import ComposeActions
    from mmsearch.ui.thumbs import Renditions

    svc = MMSearch(settings)
    svc.index([photo_dir])
    actions = ComposeActions(svc, Renditions(tmp_path / "r", 10**8), lambda p: None)
    found = _run(actions, [(str(photo_dir / "img1.png"), "but in red", 1.0)])
    assert not found.ok and "composed" in found.message
