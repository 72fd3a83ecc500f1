"""What every verb shares: settings (built on first use), the service, domain errors as one-line
messages, and output (JSON lines for pipes, --plain for people, --export / --copy-to hand-off).

Nothing heavy is imported here or in any cli module at import time (no torch, lancedb, gradio,
open_clip, pydantic): `mmsearch --help` answers at once. Each verb imports what it needs inside.
"""

from __future__ import annotations

import json
import os
import sys
from functools import wraps
from typing import TYPE_CHECKING, Any, Callable, Sequence

import click

from mmsearch.errors import MMSearchError

if TYPE_CHECKING:
    from mmsearch.service import MMSearch
    from mmsearch.settings import Settings


def friendly(fn: Callable) -> Callable:
    """Domain errors become `Error: <one line>` (exit 1); Ctrl-C says what was kept (exit 130)."""

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

    wrapper.translates_domain_errors = True  # type: ignore[attr-defined]  # checked for every verb by a test
    return wrapper


class SettingError(click.ClickException):
    exit_code = 2  # a usage error: the command never started


class EnvOption(click.Option):
    """An option that may come from an MMSEARCH_* variable: a bad value from the environment is named
    by its variable in one line (click would blame the flag, which the user never typed)."""

    def process_value(self, ctx: click.Context, value: Any) -> Any:
        try:
            return super().process_value(ctx, value)
        except click.BadParameter as exc:
            from click.core import ParameterSource

            if ctx.get_parameter_source(self.name) is not ParameterSource.ENVIRONMENT:  # type: ignore[arg-type]
                raise
            name = self.envvar if isinstance(self.envvar, str) else self.envvar[0]  # type: ignore[index]
            raise SettingError(f"{name}={os.environ.get(name, value)}: {exc.message}") from None


def env_option(*decls: str, **attrs: Any) -> Callable:
    return click.option(*decls, cls=EnvOption, **attrs)


def option_sources(ctx: click.Context) -> dict[str, str]:
    """How to name each option in a message: its variable if it came from the environment."""
    from click.core import ParameterSource

    out = {}
    for p in ctx.command.params:
        if isinstance(p, click.Option) and p.name:
            env = p.envvar if isinstance(p.envvar, str) else None
            came_from_env = ctx.get_parameter_source(p.name) is ParameterSource.ENVIRONMENT
            out[p.name] = env if env and came_from_env else p.opts[0]
    return out


def settings_of(ctx: click.Context) -> "Settings":
    """The settings, built from the flags and MMSEARCH_* variables on first use (pydantic costs ~0.25 s
    to import; `--help` never pays it). A bad value is a usage error naming the variable or flag."""
    obj = ctx.find_root().obj
    if obj.get("settings") is None:
        from mmsearch.settings import BadSetting, load_settings

        try:
            obj["settings"] = load_settings(obj["overrides"], obj["sources"])
        except BadSetting as exc:
            raise SettingError(str(exc)) from None
    return obj["settings"]


def service(ctx: click.Context) -> "MMSearch":
    from mmsearch.service import MMSearch

    return MMSearch(settings_of(ctx))


def emit_hits(records: list[dict], plain: bool, paths_only: bool, explain: bool) -> None:
    """Results as dicts (FusedHit.to_dict(), or a server's answer): paths, a table, or JSON lines."""
    if paths_only:
        lines = [r["path"] for r in records]
    elif plain:
        lines = [f"{'#':>3}  {'score':>6}  {'type':<5}  {'size':>11}  path"] if records else ["no results"]
        for i, r in enumerate(records, 1):
            size = f"{r['duration_s']:.1f}s" if r.get("duration_s") else f"{r['width']}x{r['height']}"
            shown = r["path"]
            if r.get("product"):  # a catalog product: its title, price and id, then the catalog row's key
                p = r["product"]
                price = f" {p['price']}" if p.get("price") is not None else ""
                shown = f"{p.get('title') or p.get('product_id')}{price} [{p.get('catalog')}:{p.get('product_id')}]"
            at = f"  @ {r['start_s']:.1f}-{r['end_s']:.1f}s" if r.get("start_s") is not None else ""
            kind = "prod" if r["modality"] == "product" else r["modality"]
            lines.append(f"{i:>3}  {r['score']:6.3f}  {kind:<5}  {size:>11}  {shown}{at}")
            if explain and r.get("matched"):
                lines.append(f"{'':>13}matched: " + "; ".join(
                    f"{c['part']} via {c['table']} ({c['kind']} #{c['rank']}, {c['score']:.3f})" for c in r["matched"]))
    else:
        lines = [json.dumps(r) for r in records]
    for line in lines:
        click.echo(line)


def emit_records(rows: Sequence[dict], plain: bool, columns: Sequence[str]) -> None:
    if not plain:
        for r in rows:
            click.echo(json.dumps(r, default=str))
        return
    if not rows:
        click.echo("nothing")
        return
    click.echo("  ".join(columns))
    for r in rows:
        click.echo("  ".join(_short(r.get(c)) for c in columns))


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value if value is not None else "-")


def hand_off(hits: Sequence[Any], export_to: Any, copy_to: Any) -> None:
    """--export FILE and --copy-to FOLDER, shared by every command that lists results."""
    from mmsearch.workflows.export import copy_files, export, file_of

    if export_to:
        click.echo(f"wrote {len(hits)} results to {export(hits, export_to)}", err=True)
    if copy_to:
        copied = copy_files([file_of(h) for h in hits], copy_to)
        click.echo(f"copied {len(copied)} files to {copy_to}", err=True)


# --target: "all" is every kind the library holds (photos, sounds, videos, catalog products)
TARGETS = {"images": ("image",), "audio": ("audio",), "videos": ("video",), "products": ("product",),
           "all": ("image", "audio", "video", "product")}
