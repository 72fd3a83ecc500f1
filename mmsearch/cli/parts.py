"""Query parts from the command line: values are taken as written; `--weight W` weighs the part before it.

A weight written inside a value (the old `2:beach`) collides with ordinary text such as "12:30 meeting"
or "16:9 wallpaper", and with file names such as "12:30.png". A separate option cannot: its value is a
number of its own, and it applies to the part option just before it on the command line:

    mmsearch search --text beach --image dog.jpg --text people --weight -1
"""

from __future__ import annotations

from typing import Any, Sequence

import click

ORDER_KEY = "mmsearch.param_order"
WEIGHT_HELP = "The weight of the part option just before it (default 1; negative pushes matches down)."


class PartsCommand(click.Command):
    """A command that remembers the order of its options, so `--weight` can pair with its part."""

    def make_parser(self, ctx: click.Context) -> Any:
        parser = super().make_parser(ctx)
        parse = parser.parse_args

        def recording(args: list[str]) -> Any:
            opts, rest, order = parse(args)
            ctx.meta[ORDER_KEY] = [p.name for p in order]
            return opts, rest, order

        parser.parse_args = recording
        return parser


def weighted_parts(ctx: click.Context, options: dict[str, str], weights: Sequence[float],
                   values: dict[str, Sequence[str]]) -> list[tuple[str, str, float]]:
    """(kind, value, weight) per part option in command-line order.

    options maps a parameter name ("texts") to its part kind ("text"); values holds each one's values.
    """
    queues = {name: list(values.get(name, ())) for name in options}
    left = list(weights)
    parts: list[list[Any]] = []
    weighted: set[int] = set()
    for name in ctx.meta.get(ORDER_KEY, ()):
        if name in queues and queues[name]:
            parts.append([options[name], queues[name].pop(0), 1.0])
        elif name == "weights" and left:
            weight = left.pop(0)
            if not parts:
                raise click.UsageError(f"--weight {weight:g} must follow the part it weighs, "
                                       f"e.g. --text people --weight {weight:g}")
            if len(parts) - 1 in weighted:
                raise click.UsageError(f"{_shown(parts[-1])} has two --weight options; give it one")
            weighted.add(len(parts) - 1)
            parts[-1][2] = weight
    if left or any(queues.values()):  # the order was not recorded: never drop a weight silently
        raise click.UsageError("cannot pair --weight with its part here; give --weight right after --text/--image")
    return [(kind, value, weight) for kind, value, weight in parts]


def old_form_notes(parts: Sequence[tuple[str, str, float]]) -> list[str]:
    """A note for each --text that looks like the old WEIGHT:TEXT form: it is searched as written."""
    from mmsearch.query.parts import parse_weighted

    notes = []
    for kind, value, _ in parts:
        weight, rest = parse_weighted(value)
        # "12:30 meeting" and "16:9" are times and ratios, not the old form: no note for them
        if kind == "text" and rest != value and rest.strip() and not rest.strip()[0].isdigit():
            notes.append(f"note: searching --text {value!r} as written; to weigh a part, write "
                         f"--text {rest.strip()!r} --weight {weight:g}")
    return notes


def _shown(part: list[Any]) -> str:
    return f"--{part[0]} {part[1]}"


def weight_option(fn: Any) -> Any:
    return click.option("--weight", "-w", "weights", multiple=True, type=float, help=WEIGHT_HELP)(fn)
