"""`mmsearch mood` (mood search across images, sounds and videos) and `mmsearch board` (mood boards)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from mmsearch.cli.common import TARGETS, emit_hits, emit_records, friendly, hand_off, service
from mmsearch.cli.parts import PartsCommand, weight_option, weighted_parts


def _moods(raw: tuple[str, ...]) -> list[tuple[str, float]]:
    from mmsearch.query.parts import parse_weighted

    return [(m, w) for w, m in (parse_weighted(r) for r in raw)]


def _options(k: int, target: str):
    from mmsearch.query.parts import QueryOptions

    return QueryOptions(k=k, targets=TARGETS[target])


@click.command(cls=PartsCommand)
@click.argument("moods", nargs=-1)
@click.option("--like", "likes", multiple=True,
              help="An example: an image, a sound, or a video moment (FILE@SECONDS). Repeatable.")
@weight_option
@click.option("--target", type=click.Choice(["images", "audio", "videos", "all"]), default="all", show_default=True)
@click.option("-k", "--top", "k", type=click.IntRange(1, 1000), default=12, show_default=True)
@click.option("--list", "list_moods", is_flag=True, help="The mood vocabulary and each mood's prompts.")
@click.option("--pin", help="Pin the results to this board.")
@click.option("--plain", is_flag=True)
@click.option("--export", "export_to", type=click.Path(path_type=Path), help="Also write a .csv or .jsonl file.")
@click.option("--copy-to", type=click.Path(path_type=Path), help="Also copy the result files into this folder.")
@click.pass_context
@friendly
def mood(ctx: click.Context, moods: tuple[str, ...], likes: tuple[str, ...], weights: tuple[float, ...],
         target: str, k: int, list_moods: bool, pin: str | None, plain: bool, export_to: Path | None,
         copy_to: Path | None) -> None:
    """Search images, sounds and videos by mood ("melancholic", "2:calm morning"), optionally with examples.

    Mood names come from a fixed list (--list) with no colon in any name, so WEIGHT:MOOD is unambiguous.
    An example file is taken as written; weigh it with --weight W right after its --like.

    \b
    mmsearch mood tense
    mmsearch mood calm --like a.jpg --like b.jpg --like c.wav     # more like these, but calmer
    mmsearch mood calm --like a.jpg --weight 2
    mmsearch mood calm --like party.mp4@12.5                      # a video moment: its picture and sound
    """
    from mmsearch.query.parts import part_from_cli
    from mmsearch.workflows.boards import Boards, modality_of
    from mmsearch.workflows.mood import MOODS, MoodSearch

    if list_moods:
        for m in MOODS.values():
            click.echo(json.dumps({"mood": m.name, "image_prompts": m.image, "sound_prompts": m.sound}))
        return
    if not moods and not likes:
        raise click.UsageError("name at least one mood (see --list) or give --like examples")
    svc = service(ctx)
    search = MoodSearch.for_service(svc, with_bridge=bool(likes) and target != "images")
    examples = []
    for _, raw, weight in weighted_parts(ctx, {"likes": "image"}, weights, {"likes": likes}):
        if modality_of(raw) == "video":
            examples += search.moment_parts(_ref(raw), weight)
            continue
        part = part_from_cli("image", raw, weight)
        examples.append(part_from_cli("audio", raw, weight) if modality_of(part.value) == "audio" else part)
    answer = search.run(_moods(moods), examples, _options(k, target))
    emit_hits([h.to_dict() for h in answer.hits], plain, False, plain)
    hand_off(answer.hits, export_to, copy_to)
    if pin:
        n = Boards(svc.library()).pin(pin, [h.result.moment or h.result.path for h in answer.hits])
        click.echo(f"pinned {n} to board {pin}", err=True)


@click.group()
def board() -> None:
    """Mood boards: pin files, list boards, more like a board, export a board."""


def _ref(value: str) -> str:
    """A file, FILE@SECONDS or a moment key, with the file's path made absolute (as the index holds it)."""
    from mmsearch.store.video_table import parse_moment, split_at

    found = parse_moment(value)
    file = found[0] if found else split_at(value)[0]
    return str(Path(file).expanduser().resolve()) + value[len(file):]


@board.command("pin")
@click.argument("name")
@click.argument("paths", nargs=-1, required=True)
@click.option("--note")
@click.pass_context
@friendly
def board_pin(ctx: click.Context, name: str, paths: tuple[str, ...], note: str | None) -> None:
    """Pin files to board NAME: images, sounds, or video moments (FILE@SECONDS; a video file: its first)."""
    from mmsearch.workflows.boards import Boards

    n = Boards(service(ctx).library(create=True)).pin(name, [_ref(p) for p in paths], note)
    click.echo(f"pinned {n} to board {name}", err=True)


@board.command("unpin")
@click.argument("name")
@click.argument("paths", nargs=-1, required=True)
@click.pass_context
@friendly
def board_unpin(ctx: click.Context, name: str, paths: tuple[str, ...]) -> None:
    from mmsearch.workflows.boards import Boards

    Boards(service(ctx).library()).unpin(name, [_ref(p) for p in paths])


@board.command("list")
@click.pass_context
@friendly
def board_list(ctx: click.Context) -> None:
    from mmsearch.workflows.boards import Boards

    for name, n in Boards(service(ctx).library()).names().items():
        click.echo(json.dumps({"board": name, "items": n}))


@board.command("show")
@click.argument("name")
@click.option("--plain", is_flag=True)
@click.pass_context
@friendly
def board_show(ctx: click.Context, name: str, plain: bool) -> None:
    from mmsearch.workflows.boards import Boards

    emit_records([p.record() for p in Boards(service(ctx).library()).items(name)], plain, ["modality", "path"])


@board.command("like")
@click.argument("name")
@click.option("--mood", "moods", multiple=True, help="Nudge by a mood too, e.g. calm or 0.5:tense.")
@click.option("--target", type=click.Choice(["images", "audio", "videos", "all"]), default="all", show_default=True)
@click.option("-k", "--top", "k", type=click.IntRange(1, 1000), default=12, show_default=True)
@click.option("--plain", is_flag=True)
@click.option("--export", "export_to", type=click.Path(path_type=Path))
@click.pass_context
@friendly
def board_like(ctx: click.Context, name: str, moods: tuple[str, ...], target: str, k: int, plain: bool,
               export_to: Path | None) -> None:
    """More like board NAME: its items fused as one multi-part query (the items themselves left out)."""
    from mmsearch.workflows.boards import Boards, more_like_board
    from mmsearch.workflows.mood import MoodSearch

    svc = service(ctx)
    search = MoodSearch.for_service(svc, with_bridge=target != "images")
    answer = more_like_board(search, Boards(svc.library()), name, _moods(moods), _options(k, target))
    emit_hits([h.to_dict() for h in answer.hits], plain, False, plain)
    hand_off(answer.hits, export_to, None)


@board.command("export")
@click.argument("name")
@click.option("--to", "folder", type=click.Path(path_type=Path), help="Copy the files into this folder.")
@click.option("--sheet", type=click.Path(path_type=Path), help="Write a contact sheet PNG here.")
@click.option("--columns", type=click.IntRange(1, 20), default=5, show_default=True)
@click.pass_context
@friendly
def board_export(ctx: click.Context, name: str, folder: Path | None, sheet: Path | None, columns: int) -> None:
    """Hand a board off: its files copied to a folder, and/or a contact sheet PNG."""
    from mmsearch.workflows.boards import Boards, contact_sheet, export_folder

    if not folder and not sheet:
        raise click.UsageError("say --to FOLDER and/or --sheet FILE.png")
    pins = Boards(service(ctx).library()).items(name)
    if folder:
        click.echo(f"copied {len(export_folder(pins, folder))} files to {folder}", err=True)
    if sheet:
        click.echo(f"contact sheet: {contact_sheet(pins, sheet, columns, title=name)}", err=True)
