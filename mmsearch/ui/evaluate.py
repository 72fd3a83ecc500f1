"""The Evaluate tab: a judged query file in, the metrics table and a bar chart out, per configuration."""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from typing import Any

import gradio as gr
import pandas as pd

from mmsearch.errors import MMSearchError
from mmsearch.eval.judged import load_judged
from mmsearch.eval.metrics import METRICS
from mmsearch.eval.runner import CONFIGS, evaluate
from mmsearch.service import MMSearch
from mmsearch.ui.present import friendly, upload_name

COLUMNS = ["configuration", "type", "n", *METRICS]
JUDGED_HINT = ("upload a UTF-8 .jsonl file with one `{\"query\": …, \"relevant\": […]}` a line, or a .csv with "
               "the columns query,image,audio,relevant,type")


@dataclass
class Evaluated:
    rows: list[list[Any]] = field(default_factory=list)
    message: str = ""
    ok: bool = True

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows, columns=COLUMNS)

    def chart(self) -> pd.DataFrame:
        """Long format for the bar chart: one bar per (configuration, metric), overall rows only."""
        overall = [r for r in self.rows if r[1] == "all"]
        return pd.DataFrame([{"configuration": r[0], "metric": m, "value": r[3 + i]}
                             for r in overall for i, m in enumerate(METRICS)],
                            columns=["configuration", "metric", "value"])


def run_evaluation(service: MMSearch, judged_path: str | None, configs: list[str]) -> Evaluated:
    if not judged_path:
        return Evaluated(message="Upload a judged query file (.jsonl or .csv) first.", ok=False)
    try:
        judged = load_judged(judged_path)
    except (UnicodeDecodeError, csv.Error):  # a picture or other binary file under a .jsonl/.csv name
        return Evaluated(message=f"Judged query file {upload_name(judged_path)} is not UTF-8 text; {JUDGED_HINT}",
                         ok=False)
    except MMSearchError as exc:
        return Evaluated(message=f"{friendly(exc)}; {JUDGED_HINT}", ok=False)
    except Exception as exc:  # noqa: BLE001 - the edge
        return Evaluated(message=friendly(exc), ok=False)
    try:
        results = [evaluate(service, judged, c) for c in (configs or ["default"])]
    except Exception as exc:  # noqa: BLE001 - the edge
        return Evaluated(message=friendly(exc), ok=False)
    out = Evaluated(message=f"{len(judged.queries)} judged queries, {len(results)} configuration(s)")
    for r in results:
        out.rows.append([r.config, "all", len(r.per_query), *(round(r.overall()[m], 4) for m in METRICS)])
        for t, vals in sorted(r.by_type().items()):
            out.rows.append([r.config, t, int(vals["n"]), *(round(vals[m], 4) for m in METRICS)])
    return out


def evaluate_tab(service: MMSearch, private: dict) -> None:
    gr.Markdown("Upload queries you have judged (which files should come back) and see how well the library "
                "finds them: Recall@k, nDCG@10, MRR, mAP. Each line of a .jsonl file is e.g. "
                "`{\"query\": \"dog on a beach\", \"relevant\": [\"/photos/dog1.jpg\"]}`; a .csv needs the "
                "columns query,image,audio,relevant,type.", elem_classes="mms-note")
    with gr.Row():
        judged = gr.File(label="Judged queries", file_types=[".jsonl", ".csv"], type="filepath",
                         elem_id="mms-e-file")
        configs = gr.CheckboxGroup(list(CONFIGS), value=["default"], label="Configurations to compare",
                                   elem_id="mms-e-configs")
    run_btn = gr.Button("Evaluate", variant="primary", elem_id="mms-e-run")
    message = gr.Markdown("", elem_id="mms-e-message")
    table = gr.Dataframe(headers=COLUMNS, value=[], interactive=False, elem_id="mms-e-table")
    chart = gr.BarPlot(x="metric", y="value", color="configuration", label="Overall", y_lim=[0, 1],
                       elem_id="mms-e-chart")

    def run(path: str | None, chosen: list[str]) -> tuple:
        result = run_evaluation(service, path, chosen)
        note = result.message if result.ok else f"⚠️ {result.message}"
        return note, result.frame(), result.chart()

    run_btn.click(run, [judged, configs], [message, table, chart], **private)
