"""The HTML pages ``interp.analyze`` writes: one report per run, one per sweep.

Each analyzer that ran contributes figures; the figure builders live in
``figures.progress`` (Nanda et al.), ``figures.landscape`` (LLC, sharpness, numerical
stability), ``figures.lazy_rich`` (Kumar et al.),
``figures.model_curves`` (the other papers' models) and ``figures.sweep`` (sweeps).
"""

from __future__ import annotations

import plotly.graph_objects as go

from interp.figures import landscape, model_curves
from interp.figures import lazy_rich as lazy_figs
from interp.figures import progress as figs
from interp.figures.export import html_report, html_table


def progress_figures(result) -> dict[str, go.Figure]:
    """The learning curves and every Fourier/progress figure the analysis supports
    (``result``: an ``interp.run_analysis.RunAnalysis``)."""
    from interp.analysis.fourier import basis_labels

    phases = result.phases.to_dict() if result.phases is not None else None
    marks = result.landmarks.to_dict()
    out = {"loss_accuracy": figs.loss_and_accuracy(
        result.metrics, phases, marks, title=f"{result.run.name}: loss and accuracy")}
    fourier = result.fourier
    if fourier is None or fourier.measures.empty:
        return out
    measures, final, epoch = fourier.measures, fourier.final, fourier.final_epoch
    p, key = result.run.config.task.p, fourier.key_frequencies
    if "restricted_loss" in measures:
        out["restricted_excluded"] = figs.progress_losses(result.metrics, measures, phases)
        out["excluded_per_frequency"] = figs.excluded_per_frequency(measures, phases)
    out["gini_weight_norm"] = figs.sparsity_and_weights(measures, phases)
    out["embedding_fourier"] = figs.embedding_fourier_norms(
        final.embed_component_norms, basis_labels(p), key, epoch)
    out["embedding_fourier_over_time"] = figs.frequency_norms_over_time(
        fourier.epochs, fourier.embed_frequency_norms, "W_E norm per frequency over training")
    out["unembed_fourier_over_time"] = figs.frequency_norms_over_time(
        fourier.epochs, fourier.unembed_frequency_norms,
        "W_L = W_out W_U norm per output frequency over training")
    out["neuron_clusters"] = figs.neuron_clusters(final.neuron_fractions,
                                                  final.neuron_frequency, epoch)
    out["logits_fourier"] = figs.logit_fourier_heatmap(final.logit_fourier_norms,
                                                       basis_labels(p), epoch)
    out["logit_cosines"] = figs.logit_frequency_cosines(final.logit_cosines, key, epoch)
    out["attention"] = figs.attention_patterns(final.attention_to_a, final.attention_fractions,
                                               epoch)
    return out


def nanda_figures(result) -> dict[str, go.Figure]:
    """Nanda et al.'s notebook views of a run with a Fourier analysis: its top neurons over
    the (a, b) grid with their fitted terms, the embedding circles per key frequency, and a
    slider through the checkpoints for the W_E Fourier norms and the circles."""
    from interp.figures import nanda
    from interp.figures.nanda_reads import run_embedding_history, run_neuron_fits

    fourier = result.fourier
    if fourier is None or not fourier.key_frequencies:
        return {}
    epoch = fourier.final_epoch
    key = fourier.key_frequencies
    out = nanda.neuron_figures(run_neuron_fits(result.run, epoch, top=3, key=key), epoch, epoch)
    history = run_embedding_history(result.run, key=key)
    out["embedding_circles"] = nanda.embedding_circles_figure(history.circles[-1],
                                                              history.epochs[-1])
    out["embedding_slider"] = nanda.checkpoint_slider(history.epochs, history.frequency_norms,
                                                      history.circles, history.key)
    return out


def lazy_rich_figures(result, lazy_baseline=None) -> dict[str, go.Figure]:
    """Kumar et al.'s diagnostics over the run; ``lazy_baseline``: metrics of the run
    trained linearised, overlaid on the losses."""
    lazy = result.results.get("lazy_rich")
    if lazy is None or lazy.measures.empty:
        return {}
    curve, marks = lazy.measures, result.landmarks.to_dict()
    probes = lazy.summary["probes_used"]
    out = {"lazy_rich_kernel": lazy_figs.kernel_figure(curve, marks, probes),
           "lazy_rich_movement": lazy_figs.movement_figure(curve, marks),
           "lazy_rich_linearisation": lazy_figs.linearisation_figure(
               curve, marks, lazy_baseline, lazy.summary.get("kernel_regression"))}
    if any(c.startswith("cka/") for c in curve):
        out["lazy_rich_cka"] = lazy_figs.cka_figure(curve, marks, probes)
    key = lazy.summary.get("key_frequencies")
    if key and any(c.startswith("fourier_overlap/") for c in curve):
        out["lazy_rich_fourier"] = lazy_figs.fourier_overlap_figure(curve, key, marks, probes)
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
            representation.measures, result.metrics, representation.projection.coordinates,
            geometry=representation.geometry)
    return out


def landscape_figures(result) -> dict[str, go.Figure]:
    """The LLC with its chains, the sharpness and the numerical-stability diagnostics of a
    run, those it has (computed, or recorded by the trainer)."""
    phases = result.phases.to_dict() if result.phases is not None else None
    marks, metrics = result.landmarks.to_dict(), result.metrics
    out = {}
    llc = result.llc
    if llc is not None and not llc.measures.empty:
        sgld = llc.settings
        settings = (f"{sgld.chains} chains x {sgld.draws} draws, step size {sgld.step_size:g}, "
                    f"localization {sgld.localization:g}, n*beta {llc.nbeta:.4g}")
        out["llc"] = landscape.llc_figure(llc.measures, metrics, phases, marks, settings)
        out["llc_chains"] = landscape.chain_traces_figure(llc.traces, llc.init_losses,
                                                          sgld.burn_in)
    sharpness = result.sharpness
    if sharpness is not None and not sharpness.measures.empty:
        out["sharpness"] = landscape.sharpness_figure(sharpness.measures, metrics, phases, marks)
    if "softmax_collapse" in metrics or "grad_weight_cosine" in metrics:
        out["stability"] = landscape.stability_figure(metrics, phases, marks)
    return out


def all_figures(result, lazy_baseline=None) -> dict[str, go.Figure]:
    """Every figure of one analysed run, by file name."""
    return {**progress_figures(result), **landscape_figures(result), **nanda_figures(result),
            **model_figures(result), **lazy_rich_figures(result, lazy_baseline)}


def _summary_rows(result) -> list[tuple[str, object]]:
    """The report's summary table of ``result`` (a ``RunAnalysis``): each landmark with the
    rule that set it, "never" for one not reached, and why a measure does not apply."""
    from interp.analysis.curves import format_epoch as epoch

    s, marks = result.summary, result.landmarks
    rows: list[tuple[str, object]] = [("preset", s["preset"]), ("complete", s["complete"])]
    if marks.accuracy_rule is not None:
        rows += [("train acc 99% at epoch", epoch(marks.train_acc_99)),
                 ("test acc 50% / 99% at epoch",
                  f"{epoch(marks.test_acc_50)} / {epoch(marks.test_acc_99)}"),
                 ("accuracy counts as right when", marks.accuracy_rule)]
    threshold = "none" if marks.loss_threshold is None else f"{marks.loss_threshold:.3g}"
    rows += [(f"train / test loss <= {threshold} ({marks.loss_rule}) at epoch",
              f"{epoch(marks.train_loss_low)} / {epoch(marks.test_loss_low)}"),
             ("train / test loss halved at epoch",
              f"{epoch(marks.train_loss_half)} / {epoch(marks.test_loss_half)}"),
             ("test loss peaks at epoch", epoch(marks.test_loss_peak))]
    if result.phases is not None:
        phases = result.phases
        rows.append(("Nanda et al.'s phases: memorisation end, clean-up start, clean-up end",
                     f"{epoch(phases.memorisation_end)}, {epoch(phases.cleanup_start)}, "
                     f"{epoch(phases.cleanup_end)}"))
    if result.learning_phase is not None:
        rows.append(("Liu et al.'s phase", result.learning_phase.describe()))
    for kind, why in (("skipped", "damaged files"), ("diverged", "NaN or infinite weights")):
        if s.get(f"{kind}_checkpoints"):
            rows.append((f"{kind} checkpoints ({why}; left out)",
                         ", ".join(s[f"{kind}_checkpoints"])))
    fourier = result.fourier
    if fourier is not None:
        final = fourier.final
        rows += [("key frequencies (used / neurons / embedding)",
                  f"{fourier.key_frequencies} / {final.key_frequencies_neurons} / "
                  f"{final.key_frequencies_embedding}"),
                 ("restricted loss < 1 at epoch",
                  epoch(fourier.summary.get("restricted_loss_below_1")))]
        rows += [(f"final {name} (epoch {fourier.final_epoch})", f"{value:.4g}")
                 for name, value in final.scalars.items()]
    if result.llc is not None:
        sgld = result.llc.settings
        rows.append(("llc: sampler", f"SGLD, {sgld.chains} chains x {sgld.draws} draws after "
                     f"{sgld.burn_in} burn-in steps, step size {sgld.step_size:g}, localization "
                     f"{sgld.localization:g}, n*beta {result.llc.nbeta:.4g}, batch "
                     f"{sgld.batch_size or 'full'}, seed {sgld.seed}"))
        if result.llc.disagreed:
            rows.append(("llc: chains disagree at epochs",
                         ", ".join(map(str, result.llc.disagreed))))
    for name in ("representation", "lazy_rich", "llc", "sharpness"):
        for key, value in s.get(name, {}).items():
            if not isinstance(value, dict | list):
                missing = epoch(None) if "epoch" in key or "above" in key else "missing"
                rows.append((f"{name}: {key}", f"{value:.4g}" if isinstance(value, float)
                             else missing if value is None else value))
    rows += [(f"{name}: not applicable", why) for name, why in result.not_applicable.items()]
    return rows


SECTIONS = [
    ("Learning curves", ["loss_accuracy"]),
    ("Progress measures (Nanda et al.)", ["restricted_excluded", "excluded_per_frequency",
                                          "gini_weight_norm"]),
    ("Local learning coefficient", ["llc", "llc_chains"]),
    ("Sharpness", ["sharpness"]),
    ("Numerical stability (Prieto et al.)", ["stability"]),
    ("Embedding and unembedding in the Fourier basis",
     ["embedding_fourier", "embedding_fourier_over_time", "unembed_fourier_over_time",
      "embedding_circles", "embedding_slider"]),
    ("Neurons", ["neuron_clusters", "neurons_k*"]),
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
    sections: list[tuple[str, list]] = [("Summary", [html_table(_summary_rows(result))])]
    for heading, names in SECTIONS:
        items = [figure for n in names for name, figure in figures.items()
                 if name == n or n.endswith("*") and name.startswith(n[:-1])]
        if items:
            sections.append((heading, items))
    return html_report(f"interp report: {result.run.name}", sections)
