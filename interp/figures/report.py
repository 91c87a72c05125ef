"""The HTML pages ``interp.analyze`` writes: one report per run, a comparison of runs."""

from __future__ import annotations

import plotly.graph_objects as go

from interp.figures import progress as figs
from interp.figures.export import html_report, html_table


def progress_figures(result) -> dict[str, go.Figure]:
    """Every progress-measures figure the analysis of one run supports, by file name."""
    from interp.analysis.fourier import basis_labels

    s = result.summary
    phases, marks = s["phases"], s["landmarks"]
    out = {"loss_accuracy": figs.loss_and_accuracy(result.metrics, phases, marks,
                                                   title=f"{result.run.name}: loss and "
                                                         "accuracy")}
    if result.measures.empty:
        return out
    final, over_time = result.final, result.over_time
    p = result.run.config.task.p
    key, epoch = final["key_frequencies"], final["epoch"]
    if "restricted_loss" in result.measures:
        out["restricted_excluded"] = figs.progress_losses(result.metrics, result.measures,
                                                          phases)
        out["excluded_per_frequency"] = figs.excluded_per_frequency(result.measures, phases)
    out["gini_weight_norm"] = figs.sparsity_and_weights(result.measures, phases)
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


def _summary_rows(summary: dict) -> list[tuple[str, object]]:
    marks, phases = summary["landmarks"], summary["phases"]
    rows = [("preset", summary["preset"]), ("complete", summary["complete"]),
            ("train acc 99% at epoch", marks["train_acc_99"]),
            ("test acc 50% / 99% at epoch", f"{marks['test_acc_50']} / {marks['test_acc_99']}"),
            ("test loss peaks at epoch", marks["test_loss_peak"]),
            ("phases (memorisation end, clean-up start, clean-up end)",
             f"{phases['memorisation_end']}, {phases['cleanup_start']}, "
             f"{phases['cleanup_end']}")]
    if "key_frequencies" in summary:
        keys, final = summary["key_frequencies"], summary["final"]
        rows += [("key frequencies (neurons / embedding)",
                  f"{keys['neurons']} / {keys['embedding']}"),
                 ("restricted loss < 1 at epoch", summary.get("restricted_loss_below_1")),
                 ("test loss < 1 at epoch", summary["test_loss_below_1"])]
        rows += [(f"final {name}", f"{value:.4g}") for name, value in final.items()
                 if isinstance(value, float) and "/" not in name]
    if summary["skipped_checkpoints"]:
        rows.append(("skipped (damaged) checkpoints", ", ".join(summary["skipped_checkpoints"])))
    return rows


def run_report(result) -> str:
    """The self-contained report.html of one analysed run."""
    figures = progress_figures(result)
    sections: list[tuple[str, list]] = [
        ("Summary", [html_table(_summary_rows(result.summary))]),
        ("Learning curves", [figures.pop("loss_accuracy")]),
    ]
    groups = [("Progress measures", ["restricted_excluded", "excluded_per_frequency",
                                     "gini_weight_norm"]),
              ("Embedding and unembedding in the Fourier basis",
               ["embedding_fourier", "embedding_fourier_over_time",
                "unembed_fourier_over_time"]),
              ("Neurons", ["neuron_clusters"]),
              ("Logits", ["logits_fourier", "logit_cosines"]),
              ("Attention", ["attention"])]
    for heading, names in groups:
        items = [figures[n] for n in names if n in figures]
        if items:
            sections.append((heading, items))
    return html_report(f"interp report: {result.run.name}", sections)


def comparison_report(results: list) -> str:
    """One page comparing several analysed runs: a landmark table and test-loss curves."""
    rows = []
    fig = go.Figure()
    for result in results:
        s = result.summary
        rows.append({"run": s["run"], "preset": s["preset"],
                     "train acc 99%": s["landmarks"]["train_acc_99"],
                     "test acc 99%": s["landmarks"]["test_acc_99"],
                     "gap": s["landmarks"]["accuracy_gap"],
                     "key frequencies": s.get("key_frequencies", {}).get("used"),
                     "report": str(result.report_path)})
        if not result.metrics.empty:
            fig.add_trace(go.Scatter(x=result.metrics["epoch"], y=result.metrics["test_loss"],
                                     name=s["run"], mode="lines"))
    fig.update_yaxes(type="log", title_text="test loss")
    fig.update_layout(title="Test loss of every run", xaxis_title="epoch", height=450)
    return html_report("interp comparison", [("Runs", [html_table(rows)]),
                                             ("Test loss", [fig])])
