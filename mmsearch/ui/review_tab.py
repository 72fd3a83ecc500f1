"""The Review tab: scan with the watch-list, go through the queue (approve / reject / escalate, stored with
who and when), export the queue or the decision log for audit, calibrate a concept's threshold on the
decisions made so far, and find copies of a known-bad image or video clip, or clusters of near-duplicate
photos and videos (workflows/copies.py, as `mmsearch moderate copies|dupes`).

ReviewActions holds the logic without Gradio; review_tab lays out the tab.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import gradio as gr
import pandas as pd

from mmsearch.media.video import is_video_file, supported_extensions as video_extensions
from mmsearch.query.embed import load_query_image
from mmsearch.search import SearchResult
from mmsearch.service import MMSearch
from mmsearch.ui.present import friendly
from mmsearch.ui.thumbs import Renditions
from mmsearch.ui.uploads import ImageUpload
from mmsearch.media.timecode import clock
from mmsearch.ui.videos import VideoRenditions, player_html
from mmsearch.workflows.copies import find_copies, near_duplicates
from mmsearch.workflows.export import export
from mmsearch.workflows.moderation import (EXAMPLE_THRESHOLD, TEXT_THRESHOLD, Concept, Scanner, WatchList,
                                          calibrate_spaces, watchlist_path)
from mmsearch.workflows.review import QueueItem, ReviewQueue

QUEUE_HEADERS = ["id", "status", "concept", "score", "moment", "matched", "file", "decided by", "decided at",
                 "note"]
CURVE_HEADERS = ["threshold", "precision", "recall", "f1", "tp", "fp", "fn"]


@dataclass
class Reviewed:
    items: list[QueueItem] = field(default_factory=list)
    thumbs: list[str | None] = field(default_factory=list)
    message: str = ""
    ok: bool = True

    def table(self) -> list[list[Any]]:
        return [[i.id, i.status, i.concept, round(i.score, 4), i.record()["moment"] or "", i.matched, i.file,
                 i.decided_by or "", i.decided_at.strftime("%Y-%m-%d %H:%M") if i.decided_at else "",
                 i.note or ""] for i in self.items]

    def shown(self) -> list[QueueItem]:
        """The items the gallery shows (those with a picture), in its order."""
        return [i for i, t in zip(self.items, self.thumbs) if t]

    def gallery(self) -> list[tuple[str, str]]:
        return [(t, " · ".join(x for x in (i.id, i.concept, i.record()["moment"], i.status) if x))
                for i, t in zip(self.items, self.thumbs) if t]


class ReviewActions:
    def __init__(self, service: MMSearch, renditions: Renditions, expose: Callable[[list[str]], None]) -> None:
        self.service = service
        self.renditions = renditions
        self.videos = VideoRenditions(renditions.folder / "video")  # the folder the search page's player uses
        self._expose = expose

    def _queue(self) -> ReviewQueue:
        return ReviewQueue(self.service.library())

    def scan(self) -> str:
        try:
            library = self.service.library()
            watch = WatchList.load(watchlist_path(library))
            flags = Scanner(library, self.service.encoders()).scan(watch)
            added = ReviewQueue(library).add(flags)
        except Exception as exc:  # noqa: BLE001 - the edge
            return f"⚠️ {friendly(exc)}"
        return f"{len(flags)} flagged for {len(watch.concepts)} concept(s): {added.new} new, {added.refreshed} already queued"

    def items(self, status: str) -> Reviewed:
        try:
            items = self._queue().items(None if status == "all" else status)
        except Exception as exc:  # noqa: BLE001
            return Reviewed(message=friendly(exc), ok=False)
        self._expose([str(self.renditions.folder)])
        moments = self._moments(items)
        thumbs = [self.renditions.get(i.path) if i.modality == "image" else
                  self.videos.thumb(moments[i.path]) if i.path in moments else None for i in items]
        pending = sum(i.status == "pending" for i in items)
        return Reviewed(items, thumbs, f"{len(items)} item(s), {pending} pending")

    def _moments(self, items: list[QueueItem]) -> dict[str, SearchResult]:
        """A video item's flagged moment as a result (its frame, its range), from the picture side's row
        where the moment has one (the thumbnail frame), else from the sound side's."""
        keys = [i.path for i in items if i.modality == "video"]
        found: dict[str, SearchResult] = {}
        if not keys:
            return found
        library = self.service.library()
        for table in library.tables("video"):
            for key, row in table.rows_for_paths(keys).items():
                if library.contains(row["file"]) and (key not in found or found[key].frame_s is None):
                    found[key] = SearchResult.from_row(row, 0.0, "video")
        return found

    def player(self, item_id: str) -> str:
        """A player opened at a video item's flagged moment ("" for photos and sounds, or when it cannot)."""
        item = next((i for i in self._queue().items() if i.id == item_id), None)
        if item is None or item.modality != "video":
            return ""
        hit = self._moments([item]).get(item.path)
        if hit is None:
            return ""
        hit.score = item.score
        self._expose([str(self.renditions.folder)])
        clip = self.videos.clip(hit)
        return player_html(clip, hit) if clip is not None else ""

    def decide(self, ids: str, decision: str, who: str, note: str) -> str:
        chosen = [i.strip() for i in (ids or "").replace(",", " ").split() if i.strip()]
        if not chosen:
            return "⚠️ Pick an item first (click it, or type its id)."
        try:
            done = self._queue().decide(chosen, decision, who, note)
        except Exception as exc:  # noqa: BLE001
            return f"⚠️ {friendly(exc)}"
        return f"{len(done)} item(s) {done[0].status} by {done[0].decided_by}"

    def export(self, what: str, fmt: str) -> str | None:
        q = self._queue()
        rows = q.history() if what == "decision log" else [i.record() for i in q.items()]
        folder = Path(tempfile.mkdtemp(prefix="mmsearch-export-"))
        name = "review-log" if what == "decision log" else "review-queue"
        return str(export(rows, folder / f"{name}.{fmt}"))

    def concepts(self) -> list[str]:
        try:
            return [c.name for c in WatchList.load(watchlist_path(self.service.library())).concepts]
        except Exception:  # noqa: BLE001 - no library yet
            return []

    # -- the watch-list, edited from the page ---------------------------------------------------------
    def concept_fields(self, name: str | None) -> tuple[str, float, float, str]:
        """Prompts (one per line), the two default thresholds and the example files of a concept."""
        try:
            c = WatchList.load(watchlist_path(self.service.library())).get(name or "")
        except Exception:  # noqa: BLE001 - a new name: empty fields
            return "", TEXT_THRESHOLD, EXAMPLE_THRESHOLD, ""
        return "\n".join(c.texts), c.threshold, c.example_threshold, "\n".join(Path(e).name for e in c.examples)

    def save_concept(self, name: str | None, prompts: str, threshold: float | None, example_threshold: float | None,
                     uploads: list[str] | None) -> str:
        """Add or update a concept; uploaded examples are copied into the library so they outlive the upload."""
        name = (name or "").strip()
        try:
            library = self.service.library(create=True)
            path = watchlist_path(library)
            watch = WatchList.load(path)
            old = next((c for c in watch.concepts if c.name == name), None)
            examples = list(old.examples) if old else []
            for upload in uploads or []:
                examples.append(str(_keep_example(library.data_dir, name, upload)))
            concept = Concept(name=name, texts=[t.strip() for t in (prompts or "").splitlines() if t.strip()],
                              examples=examples,
                              threshold=TEXT_THRESHOLD if threshold is None else float(threshold),
                              example_threshold=EXAMPLE_THRESHOLD if example_threshold is None else float(example_threshold),
                              space_thresholds=dict(old.space_thresholds) if old else {})
            watch.put(concept)  # validates: a name, prompts or examples, cosines within [-1, 1]
            watch.save(path)
        except Exception as exc:  # noqa: BLE001
            return f"⚠️ {friendly(exc)}"
        what = "updated" if old else "added"
        return (f"Concept “{name}” {what}: {len(concept.texts)} prompt(s), {len(concept.examples)} example(s). "
                f"Scan the library to queue what it flags.")

    def remove_concept(self, name: str | None) -> str:
        try:
            path = watchlist_path(self.service.library())
            watch = WatchList.load(path)
            watch.remove((name or "").strip())
            watch.save(path)
        except Exception as exc:  # noqa: BLE001
            return f"⚠️ {friendly(exc)}"
        return f"Concept “{name}” removed; its queued items and decisions are kept."

    def calibrate(self, concept: str | None) -> tuple[str, pd.DataFrame]:
        empty = pd.DataFrame(columns=CURVE_HEADERS)
        if not concept:
            return "⚠️ Pick a concept.", empty
        try:
            library = self.service.library()
            c = WatchList.load(watchlist_path(library)).get(concept)
            cals = calibrate_spaces(Scanner(library, self.service.encoders()), c, self._queue().labels(concept))
        except Exception as exc:  # noqa: BLE001
            return f"⚠️ {friendly(exc)}", empty
        cal = cals[0]  # the curve of the main model's space; every space's threshold is in the note
        frame = pd.DataFrame([[p.threshold, p.precision, p.recall, p.f1, p.tp, p.fp, p.fn] for p in cal.points],
                             columns=CURVE_HEADERS)
        each = "; ".join(f"in {x.space_name}: threshold **{x.best.threshold:.4f}** gives precision "
                         f"{x.best.precision:.2f} and recall {x.best.recall:.2f}" for x in cals)
        return (f"On {len(cal.labels)} decided items (best F1, each model's space on its own) {each}. "
                f"Lower thresholds catch more and flag more that is fine."), frame

    def copies(self, image: str | None, clip: str | None, cut: int, queue: bool, min_share: float = 0.5
               ) -> tuple[str, list[tuple[str, str]]]:
        """Copies of an uploaded known-bad image, or of a video clip (the clip when both are given)."""
        upload = clip or image
        if not upload:
            return "⚠️ Upload the known-bad image or video clip first.", []
        try:  # the upload first, with the query limits and messages: a bad file costs no library scan
            if not is_video_file(upload):
                load_query_image(upload, self.service.settings.max_image_pixels, what="known-bad image")
            found = find_copies(self.service, upload, int(cut), min_share=float(min_share))
            added = found.queue(self.service) if queue else None
        except Exception as exc:  # noqa: BLE001
            return f"⚠️ {friendly(exc)}", []
        self._expose([str(self.renditions.folder)])
        if found.modality == "video":
            shown = [(t, f"{c.alignment.score:.2f} · {Path(c.path).name} · {clock(c.alignment.start_s)}–"
                         f"{clock(c.alignment.end_s)}") for c in found.found
                     if (t := self.videos.thumb(_stretch(c))) is not None]
            note = (f"{len(found.found)} cop{'y' if len(found.found) == 1 else 'ies'} of the clip (frames within "
                    f"{int(cut)} bits over at least {float(min_share):.0%} of the common time)")
        else:
            shown = [(t, f"{c.distance} bits · {Path(c.path).name}") for c in found.found
                     if (t := self.renditions.get(c.path)) is not None]
            note = f"{len(found.found)} cop{'y' if len(found.found) == 1 else 'ies'} within {int(cut)} bits"
        return note + (f"; {added} new in the queue" if added is not None else ""), shown

    def dupes(self, cut: int) -> tuple[str, list[list[Any]]]:
        try:
            found = near_duplicates(self.service, int(cut))
        except Exception as exc:  # noqa: BLE001
            return f"⚠️ {friendly(exc)}", []
        rows = [[n, _match(m), m["path"]] for n, c in enumerate(found.clusters, 1) for m in c.members]
        return (f"{len(found.clusters)} cluster(s) among {found.images} images and {found.videos} videos at "
                f"{int(cut)} bits"), rows


def _stretch(copy: Any) -> SearchResult:
    """A video copy as a result at the stretch that copies the clip (its thumbnail: the stretch's first frame)."""
    a = copy.alignment
    return SearchResult(copy.path, a.score, Path(copy.path).name, str(Path(copy.path).parent), 0, 0, "", 0,
                        modality="video", start_s=a.start_s, end_s=a.end_s, frame_s=a.start_s)


def _match(member: dict) -> str:
    """How a cluster member matches its cluster's first: '3 bits', 'score 0.94 at 0:02–0:10', or 'first'."""
    if "distance" in member:
        return f"{member['distance']} bits"
    if "score" in member:
        return f"score {member['score']:.2f} at {clock(member['start_s'])}–{clock(member['end_s'])}"
    return "first"


def _keep_example(data_dir: Path, concept: str, upload: str) -> Path:
    """A copy of an uploaded example inside the library (<data dir>/watchlist/<concept>/)."""
    import re
    import shutil

    folder = Path(data_dir) / "watchlist" / (re.sub(r"[^\w.-]+", "_", concept) or "concept")
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / Path(upload).name
    shutil.copyfile(upload, target)
    return target


def reviewer_name(typed: str | None, signed_in: str | None) -> str:
    """With auth on, a decision is the signed-in user's: a typed name cannot stand in for someone else."""
    return signed_in or (typed or "").strip()


def review_tab(actions: ReviewActions, private: dict) -> None:
    gr.Markdown("Flags from the watch-list (`mmsearch moderate watch add …`) wait here. Approve = fine, "
                "reject = breaks the rules, escalate = someone senior decides. Every decision is kept with "
                "who and when.", elem_classes="mms-note")
    with gr.Row(equal_height=True):
        scan_btn = gr.Button("Scan the library", variant="primary", scale=0, min_width=180, elem_id="mms-r-scan")
        status = gr.Radio(["pending", "all", "approved", "rejected", "escalated"], value="pending",
                          label="Show", scale=3, elem_id="mms-r-status")
        reload_btn = gr.Button("Reload", scale=0, min_width=100)
    message = gr.Markdown("", elem_id="mms-r-message")
    gallery = gr.Gallery(show_label=False, columns=6, height="auto", allow_preview=False, object_fit="cover",
                         elem_id="mms-r-gallery")
    player = gr.HTML("", elem_id="mms-r-player")  # a flagged video plays here from its moment
    table = gr.Dataframe(headers=QUEUE_HEADERS, value=[], interactive=False, wrap=True, elem_id="mms-r-table")
    with gr.Row(equal_height=True):
        ids = gr.Textbox(label="Item ids", placeholder="click an item, or type ids", scale=2, elem_id="mms-r-ids")
        who = gr.Textbox(label="Reviewer", scale=1, elem_id="mms-r-who")
        note = gr.Textbox(label="Note", scale=2, elem_id="mms-r-note")
    with gr.Row():
        approve = gr.Button("Approve", elem_id="mms-r-approve")
        reject = gr.Button("Reject", variant="stop", elem_id="mms-r-reject")
        escalate = gr.Button("Escalate", elem_id="mms-r-escalate")
    with gr.Accordion("Audit export", open=False):
        with gr.Row():
            what = gr.Radio(["queue", "decision log"], value="queue", label="Export")
            fmt = gr.Radio(["csv", "jsonl"], value="csv", label="as")
            export_btn = gr.Button("Export", elem_id="mms-r-export")
            download = gr.File(label="Download", interactive=False, elem_id="mms-r-download")
    with gr.Accordion("Watch-list concepts", open=False):
        with gr.Row():
            c_name = gr.Dropdown(actions.concepts(), allow_custom_value=True, label="Concept (pick, or type a new name)",
                                 elem_id="mms-r-c-name")
            c_thr = gr.Number(value=TEXT_THRESHOLD, label="Prompt threshold (cosine)", elem_id="mms-r-c-thr")
            c_ethr = gr.Number(value=EXAMPLE_THRESHOLD, label="Example threshold (cosine)", elem_id="mms-r-c-ethr")
        with gr.Row():
            c_prompts = gr.Textbox(label="Prompts, one per line", lines=3, placeholder="a kitchen knife",
                                   elem_id="mms-r-c-prompts")
            with gr.Column():
                c_examples = gr.Markdown("", elem_id="mms-r-c-examples")
                c_upload = gr.File(label="Add example images or sounds", file_count="multiple", type="filepath",
                                   elem_id="mms-r-c-upload")
        with gr.Row():
            c_save = gr.Button("Save concept", variant="primary", elem_id="mms-r-c-save")
            c_remove = gr.Button("Remove concept", variant="stop", elem_id="mms-r-c-remove")
        c_note = gr.Markdown("", elem_id="mms-r-c-note")
    with gr.Accordion("Calibrate a threshold on the decisions", open=False):
        with gr.Row():
            concept = gr.Dropdown(actions.concepts(), label="Concept", elem_id="mms-r-concept")
            cal_btn = gr.Button("Calibrate", elem_id="mms-r-calibrate")
        cal_note = gr.Markdown("", elem_id="mms-r-cal-note")
        curve = gr.LinePlot(x="recall", y="precision", label="Precision / recall", y_lim=[0, 1.05],
                            elem_id="mms-r-curve")
        points = gr.Dataframe(headers=CURVE_HEADERS, value=[], interactive=False, elem_id="mms-r-points")
    with gr.Accordion("Copies and near-duplicates", open=False):
        with gr.Row():
            bad = ImageUpload(label="Known-bad image", height=160, sources=["upload", "clipboard"],
                           elem_id="mms-r-bad")
            bad_clip = gr.File(label="…or a known-bad video clip", type="filepath", height=160,
                               file_types=sorted(video_extensions()), elem_id="mms-r-bad-clip")
            with gr.Column():
                cut = gr.Slider(0, 32, value=10, step=1, label="Cut (differing bits of 64, of a photo or a frame)",
                                elem_id="mms-r-cut")
                share = gr.Slider(0.1, 1, value=0.5, step=0.05, label="Copies of a clip: share of its frames that must line up",
                                  elem_id="mms-r-share")
                to_queue = gr.Checkbox(value=True, label="Put copies in the review queue")
                copies_btn = gr.Button("Find copies", elem_id="mms-r-copies")
                dupes_btn = gr.Button("Find near-duplicate clusters", elem_id="mms-r-dupes")
        dup_note = gr.Markdown("", elem_id="mms-r-dup-note")
        dup_gallery = gr.Gallery(show_label=False, columns=6, height="auto", allow_preview=False,
                                 elem_id="mms-r-dup-gallery")
        dup_table = gr.Dataframe(headers=["cluster", "match", "file"], value=[], interactive=False,
                                 elem_id="mms-r-dup-table")
    shown = gr.State([])

    def show(filter_: str, note_: str = "") -> tuple:
        r = actions.items(filter_)
        text = r.message if r.ok else f"⚠️ {r.message}"
        return (f"{note_} · {text}" if note_ else text), r.gallery(), r.table(), [i.id for i in r.shown()]

    def scan(filter_: str) -> tuple:
        return show(filter_, actions.scan())

    def pick(current: list[str], evt: gr.SelectData) -> tuple[str, str]:
        chosen = current[evt.index] if current and evt.index is not None and evt.index < len(current) else ""
        return chosen, actions.player(chosen) if chosen else ""

    def decider(decision: str):
        def run(ids_: str, who_: str, note_: str, filter_: str, request: gr.Request) -> tuple:
            reviewer = reviewer_name(who_, getattr(request, "username", None))
            return show(filter_, actions.decide(ids_, decision, reviewer, note_)) + ("",)
        return run

    listing = [message, gallery, table, shown]
    scan_btn.click(scan, status, listing, **private)
    reload_btn.click(show, status, listing, **private)
    gallery.select(pick, shown, [ids, player], **private)
    for btn, decision in ((approve, "approve"), (reject, "reject"), (escalate, "escalate")):
        btn.click(decider(decision), [ids, who, note, status], listing + [ids], **private)
    export_btn.click(actions.export, [what, fmt], download, **private)

    def run_calibration(name: str | None) -> tuple:
        note_, frame = actions.calibrate(name)
        return note_, frame, frame

    cal_btn.click(run_calibration, concept, [cal_note, curve, points], **private)

    def fill(name: str | None) -> tuple:
        prompts, thr, ethr, examples = actions.concept_fields(name)
        return prompts, thr, ethr, (f"Examples: {examples}".replace("\n", ", ") if examples else "No examples yet.")

    def after_edit(note_: str) -> tuple:
        names = actions.concepts()
        return note_, gr.update(choices=names), gr.update(choices=names), None

    c_name.change(fill, c_name, [c_prompts, c_thr, c_ethr, c_examples], **private)
    c_save.click(actions.save_concept, [c_name, c_prompts, c_thr, c_ethr, c_upload], c_note, **private).then(
        after_edit, c_note, [c_note, c_name, concept, c_upload], **private)
    c_remove.click(actions.remove_concept, c_name, c_note, **private).then(
        after_edit, c_note, [c_note, c_name, concept, c_upload], **private)
    copies_btn.click(actions.copies, [bad, bad_clip, cut, to_queue, share], [dup_note, dup_gallery], **private)
    dupes_btn.click(actions.dupes, cut, [dup_note, dup_table], **private)
    # No trigger: on page load and whenever the status filter changes.
    gr.on(None, lambda f: show(f) + (gr.update(choices=actions.concepts()),), status, listing + [concept], **private)
