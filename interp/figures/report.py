"""The HTML pages ``interp.analyze`` writes: one report per run, one per sweep.

Each analyzer that ran contributes figures; the figure builders live in
``figures.progress`` (Nanda et al.), ``figures.lazy_rich`` (Kumar et al.),
``figures.model_curves`` (the other papers' models) and ``figures.sweep`` (sweeps).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from interp.figures import lazy_rich as lazy_figs
from interp.figures import model_curves
from interp.figures import progress as figs
from interp.figures import sweep as sweep_figs
from interp.figures.export import html_report, html_table


def progress_figures(result) -> dict[str, go.Figure]:
    """The learning curves and every Fourier/progress figure the analysis supports."""
    from interp.analysis.fourier import basis_labels

    s = result.summary
    phases, marks = s.get("phases"), s["landmarks"]
    out = {"loss_accuracy": figs.loss_and_accuracy(
        result.metrics, phases, marks, title=f"{result.run.name}: loss and accuracy")}
    fourier = result.results.get("fourier")
    if fourier is None or fourier.measures.empty:
        return out
    measures, final, over_time = fourier.measures, fourier.final, fourier.over_time
    p = result.run.config.task.p
    key, epoch = final["key_frequencies"], final["epoch"]
    if "restricted_loss" in measures:
        out["restricted_excluded"] = figs.progress_losses(result.metrics, measures, phases)
        out["excluded_per_frequency"] = figs.excluded_per_frequency(measures, phases)
    out["gini_weight_norm"] = figs.sparsity_and_weights(measures, phases)
    out["embedding_fourier"] = figs.embedding_fourier_norms(
        final["embed_component_norms"], basis_labels(p), key, epoch)
    out["embedding_fourier_over_time"] = figs.frequency_norms_over_time(
        over_time["epochs"], over_time["embed_frequency_norms"],
        "W_E norm per frequency over training")
    out["unembed_fourier_over_time"] = figs.frequency_norms_over_time(
        over_time["epochs"], over_time["unembed_frequency_norms"],
        "W_L = W_out W_U norm per output frequency over training")
    out["neuron_clusters"] = figs.neuron_clusters(final["neuron_fractions"],
                                                  final["neuron_frequency"], epoch)
    out["logits_fourier"] = figs.logit_fourier_heatmap(final["logit_fourier_norms"],
                                                       basis_labels(p), epoch)
    out["logit_cosines"] = figs.logit_frequency_cosines(final["logit_cosines"], key, epoch)
    out["attention"] = figs.attention_patterns(final["attention_to_a"],
                                               final["attention_fractions"], epoch)
    return out


def lazy_rich_figures(result, lazy_baseline=None) -> dict[str, go.Figure]:
    """Kumar et al.'s diagnostics over the run; ``lazy_baseline``: metrics of the run
    trained linearised, overlaid on the losses."""
    lazy = result.results.get("lazy_rich")
    if lazy is None or lazy.measures.empty:
        return {}
    curve, marks = lazy.measures, result.summary["landmarks"]
    out = {"lazy_rich_kernel": lazy_figs.kernel_figure(curve, marks),
           "lazy_rich_movement": lazy_figs.movement_figure(curve, marks),
           "lazy_rich_linearisation": lazy_figs.linearisation_figure(
               curve, marks, lazy_baseline, lazy.summary.get("kernel_regression"))}
    if any(c.startswith("cka/") for c in curve):
        out["lazy_rich_cka"] = lazy_figs.cka_figure(curve, marks)
    key = result.summary["lazy_rich"].get("key_frequencies")
    if key and any(c.startswith("fourier_overlap/") for c in curve):
        out["lazy_rich_fourier"] = lazy_figs.fourier_overlap_figure(curve, key, marks)
    return out


def model_figures(result) -> dict[str, go.Figure]:
    """Figures of model-specific measures: the committee machine's loss decomposition and
    the embeddings' representation quality (RQI)."""
    out = {}
    if "decomp_total" in result.metrics:
        out["committee_decomposition"] = model_curves.loss_decomposition(result.metrics)
    representation = result.results.get("representation")
    if representation is not None and not representation.measures.empty:
        out["representation"] = model_curves.representation_quality(
            representation.measures, result.metrics, representation.final["projection"])
    return out


def all_figures(result, lazy_baseline=None) -> dict[str, go.Figure]:
    """Every figure of one analysed run, by file name."""
    return {**progress_figures(result), **model_figures(result),
            **lazy_rich_figures(result, lazy_baseline)}


def _summary_rows(summary: dict) -> list[tuple[str, object]]:
    marks = summary["landmarks"]
    rows = [("preset", summary["preset"]), ("complete", summary["complete"]),
            ("train acc 99% at epoch", marks.get("train_acc_99")),
            ("test acc 50% / 99% at epoch",
             f"{marks.get('test_acc_50')} / {marks.get('test_acc_99')}"),
            ("test loss peaks at epoch", marks.get("test_loss_peak"))]
    if "phases" in summary:
        phases = summary["phases"]
        rows.append(("phases (memorisation end, clean-up start, clean-up end)",
                     f"{phases['memorisation_end']}, {phases['cleanup_start']}, "
                     f"{phases['cleanup_end']}"))
    if "learning_phase" in summary:
        rows.append(("Liu et al.'s phase", summary["learning_phase"]["name"]))
    for kind, why in (("skipped", "damaged files"), ("diverged", "NaN or infinite weights")):
        if summary.get(f"{kind}_checkpoints"):
            rows.append((f"{kind} checkpoints ({why}; left out)",
                         ", ".join(summary[f"{kind}_checkpoints"])))
    fourier = summary.get("fourier", {})
    if "key_frequencies" in fourier:
        keys = fourier["key_frequencies"]
        rows += [("key frequencies (neurons / embedding)",
                  f"{keys['neurons']} / {keys['embedding']}"),
                 ("restricted loss < 1 at epoch", fourier.get("restricted_loss_below_1")),
                 ("test loss < 1 at epoch", summary.get("test_loss_below_1"))]
        rows += [(f"final {name}", f"{value:.4g}") for name, value in fourier["final"].items()
                 if isinstance(value, float) and "/" not in name]
    for name in ("representation", "lazy_rich"):
        for key, value in summary.get(name, {}).items():
            if not isinstance(value, dict):
                rows.append((f"{name}: {key}", f"{value:.4g}" if isinstance(value, float)
                             else value))
    if summary["skipped_checkpoints"]:
        rows.append(("skipped (damaged) checkpoints",
                     ", ".join(summary["skipped_checkpoints"])))
    return rows


SECTIONS = [
    ("Learning curves", ["loss_accuracy"]),
    ("Progress measures (Nanda et al.)", ["restricted_excluded", "excluded_per_frequency",
                                          "gini_weight_norm"]),
    ("Embedding and unembedding in the Fourier basis",
     ["embedding_fourier", "embedding_fourier_over_time", "unembed_fourier_over_time"]),
    ("Neurons", ["neuron_clusters"]),
    ("Logits", ["logits_fourier", "logit_cosines"]),
    ("Attention", ["attention"]),
    ("Representation (Liu et al.)", ["representation"]),
    ("Committee machine (Kumar et al.)", ["committee_decomposition"]),
    ("Lazy versus rich (Kumar et al.)", ["lazy_rich_kernel", "lazy_rich_movement",
                                         "lazy_rich_linearisation", "lazy_rich_cka",
                                         "lazy_rich_fourier"]),
]


def run_report(result, lazy_baseline=None) -> str:
    """The self-contained report.html of one analysed run."""
    figures = all_figures(result, lazy_baseline)
    sections: list[tuple[str, list]] = [("Summary", [html_table(_summary_rows(result.summary))])]
    for heading, names in SECTIONS:
        items = [figures[n] for n in names if n in figures]
        if items:
            sections.append((heading, items))
    return html_report(f"interp report: {result.run.name}", sections)


MAX_LINES = 8  # a landmark curve gets one line per value of another axis up to this many
CURVE_METRICS = (("test_acc_99", "accuracy_gap", "final_test_acc"),  # classification
                 ("test_loss_half", "loss_half_gap", "final_test_loss"))  # regression: loss


def sweep_figures(sweep, table) -> dict[str, go.Figure]:
    """The figures of a sweep's report: the phase diagram over its first two axes (seeds
    aside) when it has two, and each landmark of ``CURVE_METRICS`` against each axis, one
    line per value of the next axis when that has at most ``MAX_LINES`` values."""
    axes = sweep.grid_axes
    out = {}
    if len(axes) >= 2 and table["phase"].notna().any():
        out["phase_diagram"] = sweep_figs.phase_diagram(table, axes[0], axes[1])
    accuracy = table["final_test_acc"].notna().any()
    metrics = [m for m in CURVE_METRICS[0 if accuracy else 1] if table[m].notna().any()]
    for i, axis in enumerate(axes):
        others = [a for a in axes[i + 1:] + axes[:i] if len(a.values) <= MAX_LINES]
        for metric in metrics:
            out[f"{metric}_against_{axis.key}"] = sweep_figs.landmark_curves(
                table, axis, metric, others[0] if others else None)
    return out


def _cell(value) -> object:
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return ""
    return f"{value:.4g}" if isinstance(value, float) else value


def sweep_report(sweep, table) -> str:
    """The self-contained sweep-report.html of a sweep (``interp.sweep_table.Sweep``) and
    its table: a summary, the figures of ``sweep_figures``, and the table itself."""
    phases = table["phase"].value_counts()
    summary = [("sweep", str(sweep.path)), ("runs", len(table)),
               ("axes", "; ".join(f"{a.title}: {len(a.values)} values{', log' if a.log else ''}"
                                  f"{', a seed (pooled)' if a.seed else ''}"
                                  for a in sweep.axes) or "none"),
               ("Liu et al.'s phases", ", ".join(f"{n} {p}" for p, n in phases.items())
                or "none (no accuracy)")]
    figures = sweep_figures(sweep, table)
    sections: list[tuple[str, list]] = [("Summary", [html_table(summary)])]
    if "phase_diagram" in figures:
        sections.append(("Phase diagram (Liu et al.)", [figures.pop("phase_diagram")]))
    if figures:
        sections.append(("Landmarks against each axis", list(figures.values())))
    rows = [{k: _cell(v) for k, v in row.items()} for row in table.to_dict("records")]
    sections.append(("Runs", [html_table(rows)]))
    return html_report(f"interp sweep: {sweep.path.name}", sections)
