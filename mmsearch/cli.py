"""The `mmsearch` command line. Domain errors become one-line messages here, never tracebacks."""

from __future__ import annotations

import json
import os
import sys
from functools import wraps
from pathlib import Path
from typing import Any, Callable

import click

from mmsearch.errors import MMSearchError
from mmsearch.settings import Settings


def _friendly(fn: Callable) -> Callable:
    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except MMSearchError as exc:
            raise click.ClickException(str(exc)) from None
        except KeyboardInterrupt:
            click.echo("\ninterrupted: everything committed so far is kept; run the same command to resume",
                       err=True)
            sys.exit(130)

    return wrapper


def _service(ctx: click.Context):
    from mmsearch.service import MMSearch

    return MMSearch(ctx.obj["settings"])


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--data-dir", type=click.Path(path_type=Path), envvar="MMSEARCH_DATA_DIR",
              help="Library folder (default: your user data folder).")
@click.option("--model", envvar="MMSEARCH_MODEL", help="open_clip model name, or a folder with open_clip_config.json.")
@click.option("--pretrained", envvar="MMSEARCH_PRETRAINED", help="Pretrained tag, weights file, or 'random'.")
@click.option("--offline", is_flag=True, default=None, help="Never download; use local weights only.")
@click.option("--device", envvar="MMSEARCH_DEVICE", help="cpu, cuda, mps or auto.")
@click.option("--audio-model", envvar="MMSEARCH_AUDIO_MODEL",
              help="CLAP model for sounds: laion/clap-htsat-unfused (default), laion/larger_clap_general, "
                   "laion/larger_clap_music_and_speech, or a folder with its files.")
@click.option("--encoder", envvar="MMSEARCH_ENCODER", help="open-clip (default), bge-vl or jina-v4 (`mmsearch models`).")
@click.option("--precision", envvar="MMSEARCH_PRECISION", type=click.Choice(["auto", "fp32", "fp16", "bf16"]),
              help="auto: fp16/bf16 on a GPU, fp32 on a CPU.")
@click.option("--backend", envvar="MMSEARCH_BACKEND", type=click.Choice(["torch", "onnx", "onnx-int8"]),
              help="onnx / onnx-int8: the OpenCLIP image tower in ONNX Runtime on the CPU.")
@click.option("--batch-size", envvar="MMSEARCH_BATCH_SIZE", type=click.IntRange(1, 1024), help="Images per model call.")
@click.option("--trust-remote-code", is_flag=True, default=None,
              help="Let a model repository run its own Python code (needed by jinaai/jina-embeddings-v4). Off by default.")
@click.option("--truncate-dim", envvar="MMSEARCH_TRUNCATE_DIM", type=int, help="Matryoshka models: keep this many dimensions.")
@click.option("--text-model", envvar="MMSEARCH_TEXT_MODEL",
              help="Also embed captions (photo.jpg.txt) with this text model, e.g. sentence-transformers/all-MiniLM-L6-v2.")
@click.option("--extra-models", envvar="MMSEARCH_EXTRA_MODELS",
              help="More models, each its own table, fused at search time: [ENCODER:]MODEL[@PRETRAINED],...")
@click.pass_context
def cli(ctx: click.Context, data_dir: Path | None, model: str | None, pretrained: str | None,
        offline: bool | None, device: str | None, audio_model: str | None, **zoo: Any) -> None:
    """Search photo and sound libraries by text, by image or by sound."""
    overrides = {k: v for k, v in dict(data_dir=data_dir, model=model, pretrained=pretrained,
                                        offline=offline, device=device, audio_model=audio_model, **zoo).items()
                 if v is not None}
    if offline:
        os.environ["HF_HUB_OFFLINE"] = "1"
    ctx.obj = {"settings": Settings(**overrides)}


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@click.option("--ocr/--no-ocr", default=None, help="Read text inside images into the keyword index (slow; needs the ocr extra).")
@click.option("--id-column", help="Product catalogs: the column that identifies a product (re-indexing updates by it).")
@click.option("--catalog-name", help="Product catalogs: the catalog's name (default: the file name).")
@click.option("--image-column", help="Product catalogs: the column with each product's image path.")
@click.option("--title-column", help="Product catalogs: the product title column.")
@click.option("--description-column", help="Product catalogs: the product description column.")
@click.pass_context
@_friendly
def index(ctx: click.Context, paths: tuple[Path, ...], quiet: bool, ocr: bool | None, **catalog: str | None) -> None:
    """Index (or update) the images and sounds under PATHS, or product catalogs (.csv, .jsonl, .parquet)."""
    from tqdm import tqdm

    from mmsearch.cli_review import scan_if_watching
    from mmsearch.cli_workflows import index_catalogs

    svc = _service(ctx)
    if ocr is not None:
        svc.settings.ocr = ocr
    paths = index_catalogs(svc, paths, catalog)
    if not paths:
        return
    bar = tqdm(total=0, unit="file", disable=quiet, file=sys.stderr, dynamic_ncols=True)

    def on_progress(p) -> None:
        if p.message:
            tqdm.write(p.message, file=sys.stderr)
            bar.reset(total=p.total)
        bar.n = p.done
        bar.set_postfix(skipped=p.skipped, refresh=False)
        bar.refresh()

    def on_skip(path: str, reason: str) -> None:
        tqdm.write(f"skipped {path}: {reason}", file=sys.stderr)

    report = svc.index(paths, on_progress, on_skip)
    bar.close()
    click.echo(report.summary(), err=True)
    for done in svc.maintain_index():
        click.echo(done, err=True)
    scanned = scan_if_watching(svc)  # new files meet the moderation watch-list, if there is one
    if scanned:
        click.echo(scanned, err=True)


@cli.command()
@click.argument("query", required=False)
@click.option("--text", "texts", multiple=True, help="A text part, optionally WEIGHT:TEXT (e.g. -1:people). Repeatable.")
@click.option("--image", "images", multiple=True, help="An image part, optionally WEIGHT:PATH. Repeatable.")
@click.option("--audio", "audios", multiple=True, help="A sound part, optionally WEIGHT:PATH. Repeatable.")
@click.option("--composed", "composed", multiple=True,
              help="An image with an instruction, IMAGE::TEXT (e.g. dress.jpg::but in red); needs bge-vl.")
@click.option("--like", "like", help="More like this indexed file.")
@click.option("--target", type=click.Choice(["images", "audio", "all"]), default="all", show_default=True,
              help="Which tables to search.")
@click.option("-k", "--top", "k", type=click.IntRange(1, 1000), default=None, help="Number of results.")
@click.option("--where", multiple=True, help="Filter COLUMN OP VALUE, e.g. width>=1000, format=PNG, tags~beach.")
@click.option("--folder", help="Only files under this folder.")
@click.option("--type", "types", multiple=True, help="Only these file types (jpg, png, wav ...). Repeatable.")
@click.option("--after", help="Modified on or after this date (YYYY-MM-DD).")
@click.option("--before", help="Modified before this date (YYYY-MM-DD).")
@click.option("--fusion", type=click.Choice(["rrf", "weighted"]), default="rrf", show_default=True)
@click.option("--rrf-k", type=float, default=60.0, show_default=True)
@click.option("--norm", type=click.Choice(["minmax", "zscore"]), default="minmax", show_default=True,
              help="Score normalisation for --fusion weighted.")
@click.option("--hybrid/--no-hybrid", default=True, show_default=True, help="Fuse keyword (BM25) matches.")
@click.option("--rerank/--no-rerank", default=True, show_default=True, help="Rescore the shortlist exactly.")
@click.option("--shortlist", type=click.IntRange(1, 5000), default=100, show_default=True)
@click.option("--mmr", type=click.FloatRange(0, 1), default=None, help="Diversify: 1 = relevance only, lower = more varied.")
@click.option("--min-score", type=float, default=None, help="Cut results whose best similarity is lower.")
@click.option("--explain", is_flag=True, help="Show which query parts and tables matched each result.")
@click.option("--plain", is_flag=True, help="A readable table instead of JSON lines.")
@click.option("--paths-only", is_flag=True, help="One path per line.")
@click.option("--export", "export_to", type=click.Path(path_type=Path),
              help="Also write the results to this .csv or .jsonl file (rank, score, matched parts, metadata).")
@click.option("--copy-to", type=click.Path(path_type=Path), help="Also copy the result files into this folder.")
@click.pass_context
@_friendly
def search(ctx: click.Context, query: str | None, texts: tuple[str, ...], images: tuple[str, ...],
           audios: tuple[str, ...], like: str | None, target: str, k: int | None, explain: bool, plain: bool,
           paths_only: bool, composed: tuple[str, ...] = (), export_to: Path | None = None,
           copy_to: Path | None = None, **opts) -> None:
    """Search by text, images and sounds at once; parts are fused into one ranked list.

    \b
    mmsearch search "dog on a beach"
    mmsearch search --text beach --image photo.jpg --text -1:people
    mmsearch search "storm" --target images --where width>=1000 --after 2024-01-01
    """
    from mmsearch.query.parts import QueryOptions, composed_from_cli, part_from_cli

    from mmsearch.cli_workflows import hand_off

    svc = _service(ctx)
    k = svc.settings.default_k if k is None else k
    raw = [("text", query)] if query else []
    raw += [("text", t) for t in texts] + [("image", i) for i in images] + [("audio", a) for a in audios]
    if like:
        if raw:
            raise click.UsageError("--like stands alone; to mix it with other parts, pass the file as --image")
        found = svc.more_like_this(os.path.abspath(like), k)
        _emit([(h, None) for h in found], plain, paths_only, explain)
        hand_off(found, export_to, copy_to)
        return
    if not raw and not composed:
        raise click.UsageError("give a text QUERY or at least one --text, --image, --audio or --like")
    parts = [part_from_cli(kind, value) for kind, value in raw]  # type: ignore[arg-type]
    parts += [composed_from_cli(c) for c in composed]
    targets = {"images": ("image",), "audio": ("audio",), "all": ("image", "audio")}[target]
    options = QueryOptions(k=k, targets=targets, method=opts["fusion"], rrf_k=opts["rrf_k"], norm=opts["norm"],
                           hybrid=opts["hybrid"], rerank=opts["rerank"], shortlist=opts["shortlist"],
                           mmr=opts["mmr"], min_score=opts["min_score"], where=list(opts["where"]),
                           folder=opts["folder"], types=list(opts["types"]), after=opts["after"],
                           before=opts["before"])
    answer = svc.query(parts, options)
    for note in answer.notes:
        click.echo(note, err=True)
    _emit([(h.result, h) for h in answer.hits], plain, paths_only, explain)
    hand_off(answer.hits, export_to, copy_to)


def _emit(hits: list, plain: bool, paths_only: bool, explain: bool) -> None:
    if paths_only:
        lines = [r.path for r, _ in hits]
    elif plain:
        lines = [f"{'#':>3}  {'score':>6}  {'type':<5}  {'size':>11}  path"] if hits else ["no results"]
        for i, (r, fused) in enumerate(hits, 1):
            size = f"{r.duration_s:.1f}s" if r.duration_s else f"{r.width}x{r.height}"
            lines.append(f"{i:>3}  {r.score:6.3f}  {r.modality:<5}  {size:>11}  {r.path}")
            if explain and fused is not None:
                lines.append(f"{'':>13}matched: {fused.explain()}")
    else:
        lines = [json.dumps(fused.to_dict() if fused is not None else r.to_dict()) for r, fused in hits]
    for line in lines:
        click.echo(line)


@cli.command()
@click.option("--host", default=None, help="Bind address (default 127.0.0.1). Another address makes the app "
              "reachable from other machines and needs --auth (or --insecure-no-auth).")
@click.option("--port", type=int, default=None, help="Port to listen on (default 7860).")
@click.option("--auth", envvar="MMSEARCH_AUTH", help="user:password required for the UI and the API.")
@click.option("--index-root", "index_roots", multiple=True, type=click.Path(path_type=Path),
              help="A folder the web app may index (with its subfolders); repeat for more. Default: the "
                   "library's own folders and the sample library.")
@click.option("--export-root", type=click.Path(path_type=Path),
              help="The folder the web app may copy boards into (default: <data dir>/exports).")
@click.option("--allowed-host", "allowed_hosts", multiple=True,
              help="Another Host name to answer for (a DNS name in front of the server); repeat for more.")
@click.option("--insecure-no-auth", is_flag=True, default=None,
              help="Serve a non-loopback --host without --auth (anyone who reaches the port can use the app).")
@click.pass_context
@_friendly
def serve(ctx: click.Context, host: str | None, port: int | None, auth: str | None, index_roots: tuple[Path, ...],
          export_root: Path | None, allowed_hosts: tuple[str, ...], insecure_no_auth: bool | None) -> None:
    """Run the web app."""
    from mmsearch.server.guard import is_loopback
    from mmsearch.ui.app import launch

    settings: Settings = ctx.obj["settings"]
    if auth:
        settings.auth = auth
    try:
        settings.auth_pair()
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--auth") from None
    if host:
        settings.host = host
    if port is not None:
        settings.port = port
    if index_roots:
        settings.index_roots = os.pathsep.join(str(p.expanduser().resolve()) for p in index_roots)
    if export_root:
        settings.export_root = export_root.expanduser().resolve()
    if allowed_hosts:
        settings.allowed_hosts = ",".join(filter(None, [settings.allowed_hosts, *allowed_hosts]))
    if insecure_no_auth:
        settings.insecure_no_auth = True
    if not is_loopback(settings.host):
        click.echo("warning: the app will be reachable from other machines; anyone who reaches it and knows "
                   "the password can search and index the allowed folders" + ("" if settings.auth else
                   " (no password: --insecure-no-auth)"), err=True)
    launch(settings)


@cli.command("eval")
@click.argument("queries", type=click.Path(path_type=Path), required=False)
@click.option("--captions", type=click.Path(path_type=Path), help="A Flickr30k/MSCOCO caption file instead of QUERIES.")
@click.option("--images", type=click.Path(path_type=Path), help="The image folder the caption file refers to.")
@click.option("--limit", type=click.IntRange(1), help="Use only the first N captions.")
@click.option("--root", type=click.Path(path_type=Path), help="Resolve relative paths against this folder.")
@click.option("--compare", default="default", show_default=True,
              help="Comma-separated configurations: default, rrf, weighted, weighted-zscore, no-hybrid, no-rerank, mmr.")
@click.option("--depth", type=click.IntRange(10, 1000), default=100, show_default=True, help="Results ranked per query.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per configuration.")
@click.pass_context
@_friendly
def eval_(ctx: click.Context, queries: Path | None, captions: Path | None, images: Path | None, limit: int | None,
          root: Path | None, compare: str, depth: int, as_json: bool) -> None:
    """Recall@1/5/10, nDCG@10, MRR and mAP on judged queries (JSONL or CSV), overall and per query type."""
    from mmsearch.eval.judged import load_caption_benchmark, load_judged
    from mmsearch.eval.report import table
    from mmsearch.eval.runner import evaluate

    if bool(queries) == bool(captions):
        raise click.UsageError("give a judged QUERIES file, or --captions FILE --images FOLDER")
    if captions and not images:
        raise click.UsageError("--captions needs --images FOLDER")
    judged = load_judged(queries, root) if queries else load_caption_benchmark(captions, images, limit)
    svc = _service(ctx)
    results = [evaluate(svc, judged, name.strip(), depth) for name in compare.split(",") if name.strip()]
    if as_json:
        for r in results:
            click.echo(json.dumps(r.to_dict()))
        return
    click.echo(table(results, judged.source))


@cli.command()
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@_friendly
def status(ctx: click.Context, as_json: bool) -> None:
    """Rows per table, model, and size on disk."""
    st = _service(ctx).status()
    if as_json:
        click.echo(json.dumps(st, indent=2))
        return
    click.echo(f"library: {st['data_dir']} ({st['size_bytes'] / 1e6:.1f} MB on disk)")
    click.echo(f"roots:   {', '.join(st['roots']) or '(none)'}")
    for t in st["tables"]:
        click.echo(f"  {t['modality']:<6} {t['rows']:>8} rows  {t['encoder']} {t['model']} ({t['weights']}, {t['dim']}-d)")


@cli.group(invoke_without_command=True)
@click.option("--all", "include_all", is_flag=True, help="Every open_clip pretrained pair, not just the curated list.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per model.")
@click.pass_context
@_friendly
def models(ctx: click.Context, include_all: bool, as_json: bool) -> None:
    """The model zoo: modalities, dimension, size, licence, GPU need, local weights, published quality."""
    if ctx.invoked_subcommand is not None:
        return
    from mmsearch.model_zoo import format_table, table

    settings: Settings = ctx.obj["settings"]
    rows = table(settings.models_dir, include_all)
    for line in ([json.dumps(r) for r in rows] if as_json else format_table(rows)):
        click.echo(line)


@models.command("pull")
@click.argument("name")
@click.pass_context
@_friendly
def models_pull(ctx: click.Context, name: str) -> None:
    """Download NAME (MODEL, MODEL@TAG or ENCODER:MODEL) into the model cache; needs internet access."""
    from mmsearch.model_zoo import pull

    settings: Settings = ctx.obj["settings"]
    for path in pull(name, settings.models_dir, None, settings.is_offline):
        click.echo(str(path))


@cli.group()
def bridge() -> None:
    """The audio <-> image bridge (sound -> photos, photo -> sounds)."""


@bridge.command("fit")
@click.pass_context
@_friendly
def bridge_fit(ctx: click.Context) -> None:
    """Fit (or refit) the bridge for the configured image and audio models, and save it."""
    provider = _service(ctx).bridge()
    fitted = provider.refit()
    click.echo(f"fitted {fitted.audio_space.describe()} <-> {fitted.image_space.describe()} on "
               f"{len(fitted.captions)} captions from {provider.vocabulary}", err=True)
    click.echo(str(provider.path))


@bridge.command("show")
@click.pass_context
@_friendly
def bridge_show(ctx: click.Context) -> None:
    """Which bridge the configured models use, and whether it has been fitted."""
    provider = _service(ctx).bridge()
    saved = provider.saved()
    if saved is None:
        click.echo(f"not fitted yet (the first sound <-> photo search fits it, or `mmsearch bridge fit`): "
                   f"{provider.path}")
        return
    click.echo(f"{saved.audio_space.describe()} <-> {saved.image_space.describe()}, {len(saved.captions)} captions: "
               f"{provider.path}")


from mmsearch.cli_workflows import register  # noqa: E402 - the workflow commands use the helpers above

register(cli)


def main() -> None:
    cli(prog_name="mmsearch")


if __name__ == "__main__":
    main()
