"""`mmsearch moderate`: watch-lists, scans into the review queue, decisions, audit export, calibration,
near-duplicate clusters and copies of a known-bad image."""

from __future__ import annotations

import getpass
import json
import sys
from pathlib import Path
from typing import Any

import click

from mmsearch.cli.common import emit_records, friendly, hand_off, service


def _who() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return ""


def scan_library(svc: Any) -> str:
    """Scan with the library's watch-list into the queue; the summary line."""
    from mmsearch.workflows.moderation import Scanner, WatchList, watchlist_path
    from mmsearch.workflows.review import ReviewQueue

    library = svc.library()
    watch = WatchList.load(watchlist_path(library))
    flags = Scanner(library, svc.encoders()).scan(watch)
    added = ReviewQueue(library).add(flags)
    return (f"scanned for {len(watch.concepts)} concept{'s' if len(watch.concepts) != 1 else ''}: "
            f"{len(flags)} flagged, {added.new} new in the review queue, {added.refreshed} already there")


def scan_if_watching(svc: Any) -> str | None:
    """After indexing: newly indexed files meet the watch-list too (nothing happens without one)."""
    from mmsearch.workflows.moderation import WatchList, watchlist_path

    if not WatchList.load(watchlist_path(svc.library())).concepts:
        return None
    return scan_library(svc)


@click.group(invoke_without_command=True)
@click.pass_context
@friendly
def moderate(ctx: click.Context) -> None:
    """Moderation: without a subcommand, scan the library with the watch-list into the review queue."""
    if ctx.invoked_subcommand is None:
        click.echo(scan_library(service(ctx)), err=True)


@moderate.group("watch")
def watch() -> None:
    """The watch-list: concepts as text prompts and/or example files, each with a threshold."""


@watch.command("add")
@click.argument("name")
@click.option("--text", "texts", multiple=True, help="A prompt, e.g. 'a photo of a knife'. Repeatable.")
@click.option("--example", "examples", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="An example image or sound. Repeatable.")
@click.option("--threshold", type=click.FloatRange(-1, 1), default=None, help="Cosine for the prompts (0.25).")
@click.option("--example-threshold", type=click.FloatRange(-1, 1), default=None,
              help="Cosine for the examples (0.85).")
@click.pass_context
@friendly
def watch_add(ctx: click.Context, name: str, texts: tuple[str, ...], examples: tuple[str, ...],
              threshold: float | None, example_threshold: float | None) -> None:
    """Add or replace concept NAME."""
    from mmsearch.workflows.moderation import Concept, WatchList, watchlist_path

    path = watchlist_path(service(ctx).library(create=True))
    wl = WatchList.load(path)
    concept = Concept(name, list(texts), [str(Path(e).resolve()) for e in examples])
    if threshold is not None:
        concept.threshold = threshold
    if example_threshold is not None:
        concept.example_threshold = example_threshold
    wl.put(concept)
    wl.save(path)
    click.echo(f"watching for {name}; {len(wl.concepts)} concept(s) in {path}", err=True)


@watch.command("list")
@click.pass_context
@friendly
def watch_list(ctx: click.Context) -> None:
    from dataclasses import asdict

    from mmsearch.workflows.moderation import WatchList, watchlist_path

    for c in WatchList.load(watchlist_path(service(ctx).library())).concepts:
        click.echo(json.dumps(asdict(c)))


@watch.command("remove")
@click.argument("name")
@click.pass_context
@friendly
def watch_remove(ctx: click.Context, name: str) -> None:
    from mmsearch.workflows.moderation import WatchList, watchlist_path

    path = watchlist_path(service(ctx).library())
    wl = WatchList.load(path)
    wl.remove(name)
    wl.save(path)


@moderate.command("queue")
@click.option("--status", type=click.Choice(["pending", "approved", "rejected", "escalated"]))
@click.option("--concept")
@click.option("--plain", is_flag=True)
@click.pass_context
@friendly
def queue(ctx: click.Context, status: str | None, concept: str | None, plain: bool) -> None:
    """The review queue, pending first, highest score first."""
    from mmsearch.workflows.review import ReviewQueue

    items = ReviewQueue(service(ctx).library()).items(status, concept)
    emit_records([i.record() for i in items], plain, ["id", "status", "concept", "score", "moment", "file"])


@moderate.command("decide")
@click.argument("ids", nargs=-1, required=True)
@click.option("--approve", "decision", flag_value="approve", help="The item is fine.")
@click.option("--reject", "decision", flag_value="reject", help="The item breaks the rules.")
@click.option("--escalate", "decision", flag_value="escalate", help="Someone more senior decides.")
@click.option("--by", "who", default=_who, show_default="your user name", help="Who decides (stored).")
@click.option("--note", default="")
@click.pass_context
@friendly
def decide(ctx: click.Context, ids: tuple[str, ...], decision: str | None, who: str, note: str) -> None:
    """Decide on queued items by id."""
    from mmsearch.workflows.review import ReviewQueue

    if not decision:
        raise click.UsageError("say --approve, --reject or --escalate")
    for item in ReviewQueue(service(ctx).library()).decide(list(ids), decision, who, note):
        click.echo(json.dumps(item.record()))


@moderate.command("export")
@click.argument("out", type=click.Path(path_type=Path))
@click.option("--log", "log", is_flag=True, help="The decision log (audit trail) instead of the queue.")
@click.pass_context
@friendly
def export_queue(ctx: click.Context, out: Path, log: bool) -> None:
    """Write the queue (or the decision log) to OUT, a .csv or .jsonl file, for audit."""
    from mmsearch.workflows.export import export
    from mmsearch.workflows.review import ReviewQueue

    q = ReviewQueue(service(ctx).library())
    rows = q.history() if log else [i.record() for i in q.items()]
    click.echo(f"wrote {len(rows)} rows to {export(rows, out)}", err=True)


@moderate.command("calibrate")
@click.argument("concept")
@click.option("--labels", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="path,label rows (1/0, yes/no, reject/approve). Default: the queue's decisions.")
@click.option("--kind", type=click.Choice(["text", "examples"]), help="Which threshold (default: text if any).")
@click.option("--min-precision", type=click.FloatRange(0, 1), help="Best recall at this precision, not best F1.")
@click.option("--apply", is_flag=True, help="Save the suggested threshold in the watch-list.")
@click.pass_context
@friendly
def calibrate_cmd(ctx: click.Context, concept: str, labels: Path | None, kind: str | None,
                  min_precision: float | None, apply: bool) -> None:
    """Precision/recall of CONCEPT at each threshold on labelled examples, and the threshold to use."""
    from mmsearch.workflows.moderation import Scanner, WatchList, calibrate_spaces, watchlist_path
    from mmsearch.workflows.review import ReviewQueue

    svc = service(ctx)
    library = svc.library()
    path = watchlist_path(library)
    wl = WatchList.load(path)
    c = wl.get(concept)
    labelled = _read_labels(labels) if labels else ReviewQueue(library).labels(concept)
    # One threshold per embedding space: each model's cosines are measured and stored on their own.
    cals = calibrate_spaces(Scanner(library, svc.encoders()), c, labelled, kind, min_precision)
    for cal in cals:
        click.echo(f"# {cal.kind} threshold in {cal.space_name} ({len(cal.labels)} labelled files)")
        click.echo(f"{'threshold':>9}  {'precision':>9}  {'recall':>6}  {'f1':>6}  tp fp fn")
        for p in cal.points:
            mark = "  <- suggested" if p is cal.best else ""
            click.echo(f"{p.threshold:9.4f}  {p.precision:9.3f}  {p.recall:6.3f}  {p.f1:6.3f}  {p.tp} {p.fp} {p.fn}{mark}")
    if apply:
        for cal in cals:
            cal.apply(c)
        wl.put(c)
        wl.save(path)
        for cal in cals:
            click.echo(f"saved {cal.kind} threshold {cal.best.threshold:.4f} for {concept} in {cal.space_name}",
                       err=True)


def _read_labels(path: Path) -> dict[str, bool]:
    """read_labels, with the ways a file can be unreadable said in one line that names it."""
    import csv

    from mmsearch.workflows.moderation import read_labels

    fix = "write path,label rows (CSV with a header) or JSON lines with path and label"
    try:
        labelled = read_labels(path)
    except UnicodeDecodeError:
        raise click.ClickException(f"cannot read labels {path}: not a text file; {fix}") from None
    except json.JSONDecodeError:
        raise click.ClickException(f"cannot read labels {path}: line {_bad_json_line(path)} is not JSON; {fix}") from None
    except csv.Error as exc:
        raise click.ClickException(f"cannot read labels {path}: {exc}; {fix}") from None
    except (AttributeError, TypeError):  # a JSON line that is a list or a number, not an object
        raise click.ClickException(f"cannot read labels {path}: each JSON line must be an object; {fix}") from None
    except OSError as exc:
        raise click.ClickException(f"cannot read labels {path}: {exc.strerror or exc}") from None
    if not labelled:
        raise click.ClickException(f"no labels in {path}: {fix}")
    return labelled


def _bad_json_line(path: Path) -> int:
    """read_labels parses line by line, so its error says line 1: find the real one."""
    for n, line in enumerate(path.read_text().splitlines(), 1):
        try:
            if line.strip():
                json.loads(line)
        except json.JSONDecodeError:
            return n
    return 1


@moderate.command("dupes")
@click.option("--cut", type=click.IntRange(0, 64), default=10, show_default=True,
              help="Most differing bits (of 64) for two images, or two video frames, to count as copies.")
@click.option("--min-share", type=click.FloatRange(0, 1), default=0.7, show_default=True,
              help="Videos: the share of their common time, and of the shorter video, whose frames must line up.")
@click.option("--plain", is_flag=True)
@click.pass_context
@friendly
def dupes(ctx: click.Context, cut: int, min_share: float, plain: bool) -> None:
    """Clusters of near-identical images (re-encodes, resizes, crops, colour edits), by perceptual hash, and of
    videos that copy one another (re-encoded, resized, trimmed), by frame hashes lined up in time."""
    from mmsearch.workflows.copies import near_duplicates

    found = near_duplicates(service(ctx), cut, min_share)
    per = {m: sum(c.modality == m for c in found.clusters) for m in ("image", "video")}
    click.echo(f"{found.images} images and {found.videos} videos ({found.hashed} hashed now, {found.seconds:.1f}s): "
               f"{len(found.clusters)} cluster(s) at cut {cut} ({per['image']} of images, {per['video']} of videos)",
               err=True)
    for path, reason in found.skipped:
        click.echo(f"skipped {path}: {reason}", err=True)
    for n, cluster in enumerate(found.clusters, 1):
        if plain:
            click.echo(f"cluster {n} ({cluster.modality}s): " + ", ".join(_member(m) for m in cluster.members))
        else:
            click.echo(json.dumps(cluster.record(n)))


def _member(m: dict) -> str:
    if "distance" in m:
        return f"{m['path']} ({m['distance']})"
    return f"{m['path']} ({m['score']:.2f} at {m['start_s']:g}-{m['end_s']:g}s)" if "score" in m else m["path"]


@moderate.command("copies")
@click.argument("image", metavar="FILE", type=click.Path(exists=True, dir_okay=False))
@click.option("--cut", type=click.IntRange(0, 64), default=10, show_default=True,
              help="Most differing bits (of 64) of an image, or of a video's frames.")
@click.option("--similarity", type=click.FloatRange(-1, 1), default=None,
              help="Also embedding matches at or above this cosine (crops and heavier edits). Images only.")
@click.option("--min-share", type=click.FloatRange(0, 1), default=0.5, show_default=True,
              help="A video: the share of the clip's frames that must line up with a library video's.")
@click.option("--queue", "to_queue", is_flag=True, help="Put the copies in the review queue.")
@click.option("--plain", is_flag=True)
@click.option("--export", "export_to", type=click.Path(path_type=Path))
@click.pass_context
@friendly
def copies(ctx: click.Context, image: str, cut: int, similarity: float | None, min_share: float, to_queue: bool,
           plain: bool, export_to: Path | None) -> None:
    """All copies of a known-bad FILE in the library: an image (perceptual hash, optionally embeddings) or a
    video clip (frame hashes lined up in time: re-encoded, resized and trimmed copies)."""
    from mmsearch.workflows.copies import find_copies

    svc = service(ctx)
    found = find_copies(svc, image, cut, similarity, min_share)
    emit_records(found.records(), plain, found.columns)
    hand_off(found.found, export_to, None)
    if to_queue:
        click.echo(f"{found.queue(svc)} new in the review queue", err=True)
    if not found.found:
        sys.exit(1)
