"""Watch-list concepts are added, edited and removed from the Review tab's actions."""

from __future__ import annotations

from pathlib import Path

from mmsearch.service import MMSearch
from mmsearch.settings import Settings
from tests.conftest import write_image


def _actions(settings: Settings, photo_dir: Path, tmp_path: Path):
    from mmsearch.ui.review_tab import ReviewActions
    from mmsearch.ui.thumbs import Renditions

    svc = MMSearch(settings)
    svc.index([photo_dir])
    return svc, ReviewActions(svc, Renditions(tmp_path / "r", 10**8), lambda p: None)


def test_concepts_are_added_edited_and_removed(settings: Settings, photo_dir: Path, tmp_path: Path) -> None:
    from mmsearch.workflows.moderation import WatchList, watchlist_path

    svc, actions = _actions(settings, photo_dir, tmp_path)
    upload = write_image(tmp_path / "gradio-tmp" / "knife.png", seed=5)
    note = actions.save_concept("knife", "a kitchen knife\n\n a dagger ", 0.3, 0.9, [str(upload)])
    assert "added" in note and "2 prompt(s), 1 example(s)" in note
    upload.unlink()  # Gradio's temporary upload goes away; the concept keeps its own copy
    c = WatchList.load(watchlist_path(svc.library())).get("knife")
    assert c.texts == ["a kitchen knife", "a dagger"] and (c.threshold, c.example_threshold) == (0.3, 0.9)
    assert len(c.examples) == 1 and Path(c.examples[0]).is_file()
    assert str(svc.library().data_dir) in c.examples[0]
    assert actions.concepts() == ["knife"]
    assert actions.concept_fields("knife") == ("a kitchen knife\na dagger", 0.3, 0.9, "knife.png")
    edited = actions.save_concept("knife", "a knife", 0.35, 0.9, None)
    assert "updated" in edited and "1 example(s)" in edited  # examples kept, prompts replaced
    assert WatchList.load(watchlist_path(svc.library())).get("knife").texts == ["a knife"]
    assert actions.save_concept("bad", "x", 1.5, 0.9, None).startswith("⚠️")  # not a cosine
    assert actions.save_concept("", "x", 0.3, 0.9, None).startswith("⚠️")
    assert actions.save_concept("empty", "", 0.3, 0.9, None).startswith("⚠️")
    assert actions.concepts() == ["knife"]
    assert "removed" in actions.remove_concept("knife") and actions.concepts() == []
    assert actions.remove_concept("knife").startswith("⚠️")
