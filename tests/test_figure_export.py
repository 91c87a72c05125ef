"""Figure files and their looks: captions, one plotly.js per folder, static PNG/SVG/PDF export
(--format), phase labels that do not overlap, every Fourier tick named, and whole --help
descriptions for every figure command and for --list-presets."""

from __future__ import annotations

import argparse
import importlib
import inspect
import struct
import sys

import pandas as pd
import plotly.graph_objects as go
import pytest
import torch
from conftest import run_in_process
from plotly.offline import get_plotlyjs

from interp.analysis.fourier import basis_labels
from interp.errors import UserError
from interp.figures import lazy_rich as lazy_figs
from interp.figures import model_curves
from interp.figures import progress as figs
from interp.figures import sweep as sweep_figs
from interp.figures.__main__ import COMMANDS, usage
from interp.figures.export import (
    PLOTLY_JS,
    PNG_SCALE,
    STATIC_WIDTH,
    add_format_option,
    caption,
    chosen_formats,
    html_report,
    static_export_problem,
    with_caption,
    write_figures,
)
from interp.sweep_table import Axis, frame

# ---------------------------------------------------------------------------------------------
# Captions and HTML files


def test_a_caption_is_kept_in_the_figure_and_printed_under_it():
    fig = go.Figure(go.Bar(x=[1, 2], y=[3, 4]), layout={"meta": {"source": "mine"}})
    assert caption(fig) is None
    assert with_caption(fig, "Bars <b>&</b> more.") is fig
    assert caption(fig) == "Bars <b>&</b> more." and fig.layout.meta["source"] == "mine"
    page = html_report("t", [("Section", [fig, "<p>after</p>"])])
    shown = "<p class='caption'>Bars &lt;b&gt;&amp;&lt;/b&gt; more.</p>"
    assert page.count(shown) == 1
    assert page.index("Plotly.newPlot") < page.index(shown) < page.index("<p>after</p>")


def test_plotly_js_is_written_once_per_folder_and_the_report_stays_self_contained(tmp_path):
    figures = {f"f{i}": with_caption(go.Figure(go.Scatter(y=[i, 1])), f"Figure {i}.")
               for i in range(3)}
    written = write_figures(figures, tmp_path)
    assert written == [tmp_path / f"f{i}.html" for i in range(3)]
    js = (tmp_path / PLOTLY_JS).read_text()
    assert js == get_plotlyjs() and len(js) > 1_000_000
    for i, path in enumerate(written):
        page = path.read_text()
        assert len(page) < 50_000  # no copy of plotly.js inside
        assert page.count('src="plotly.min.js"') == 1
        assert f"<p class='caption'>Figure {i}.</p>" in page
    before = (tmp_path / PLOTLY_JS).stat().st_mtime_ns
    write_figures(figures, tmp_path)  # the same plotly.js: left as it is
    assert (tmp_path / PLOTLY_JS).stat().st_mtime_ns == before
    report = html_report("r", [("S", list(figures.values()))])
    assert report.count(js) == 1 and "plotly.min.js\"" not in report


def _format_args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_format_option(parser)
    return parser.parse_args(list(argv))


def test_format_option_takes_lists_and_repeats(monkeypatch):
    monkeypatch.setattr("interp.figures.export.static_export_problem", lambda: None)
    assert chosen_formats(_format_args()) == ("html",)
    assert chosen_formats(_format_args("--format", "PDF,png", "--format", "html")) == (
        "html", "png", "pdf")
    with pytest.raises(SystemExit):  # argparse's own parser; interp's raises UserError
        _format_args("--format", "png,jpg")


def test_bad_format_and_missing_browser_are_one_line_errors_before_any_work(
        tmp_path, monkeypatch):
    args = ("--out", str(tmp_path / "figs"), "--runs-dir", str(tmp_path / "runs"))
    bad = run_in_process("interp.figures", "gromov-norm", "--format", "png,gif", *args)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1
    assert "unknown format gif; choose from html, png, svg, pdf" in bad.stderr
    monkeypatch.setenv("BROWSER_PATH", str(tmp_path / "no-chromium"))
    result = run_in_process("interp.figures", "gromov-norm", "--format", "html,png", *args)
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("error: --format png: ")
    assert "apt-get install chromium" in result.stderr and "no-chromium" in result.stderr
    monkeypatch.setitem(sys.modules, "kaleido", None)  # as if not installed
    assert "pip install 'kaleido>=1'" in static_export_problem()
    assert not (tmp_path / "figs").exists() and not (tmp_path / "runs").exists()


def test_static_export_writes_real_png_svg_and_pdf(tmp_path):
    problem = static_export_problem()
    if problem:
        pytest.skip(f"no static export here: {problem}")
    fig = with_caption(figs.logit_frequency_cosines(torch.tensor([0.1, 0.9, 0.2]), [2], 7),
                       "Three bars.")
    written = write_figures({"cosines": fig}, tmp_path, ["png", "svg", "pdf"])
    assert written == [tmp_path / f"cosines.{f}" for f in ("png", "svg", "pdf")]
    png = written[0].read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])  # the IHDR chunk
    assert (width, height) == (STATIC_WIDTH * PNG_SCALE, 380 * PNG_SCALE)
    svg = written[1].read_text()
    assert svg.startswith("<svg") and "cos(w_k(a+b-c))" in svg
    assert written[2].read_bytes()[:5] == b"%PDF-"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in written)


# ---------------------------------------------------------------------------------------------
# What the figures show


def _annotations(fig, texts):
    return [a for a in fig.layout.annotations if a.text in texts]


def test_short_phases_get_a_row_each_so_their_names_never_overlap():
    metrics = pd.DataFrame({"epoch": [0, 100, 200, 3000], "train_loss": [4, 1e-3, 1e-4, 1e-5],
                            "test_loss": [4, 9, 8, 1e-3], "train_acc": [0, 1, 1, 1],
                            "test_acc": [0, 0, 0.1, 1]})
    phases = {"memorisation_end": 100, "cleanup_start": 150, "cleanup_end": 2600}
    fig = figs.loss_and_accuracy(metrics, phases, {"train_acc_99": 100, "test_acc_99": 160})
    names = _annotations(fig, figs.PHASE_COLOURS)
    assert len(names) == 2 * 3  # each phase named in both panels
    for panel in ("x", "x2"):
        rows = sorted(-a.yshift for a in names if a.xref == panel)
        assert rows == [0, figs.LABEL_ROW, 2 * figs.LABEL_ROW]  # one row per phase
        assert figs.LABEL_ROW > 10  # more than the font size: rows do not touch
    marks = _annotations(fig, {"train acc 99%", "test acc 99%"})
    assert sorted({a.yshift for a in marks}) == [0, figs.LABEL_ROW]
    assert "shaded: Nanda et al.'s phases" in caption(fig)


def test_every_fourier_component_is_named_on_the_bar_chart_and_the_heatmap():
    p = 113
    labels = basis_labels(p)
    bars = figs.embedding_fourier_norms(torch.rand(p), labels, [14, 35], 25_000)
    assert list(bars.layout.xaxis.tickvals) == labels == list(bars.layout.xaxis.ticktext)
    assert "cos 14" in labels and "sin 56" in labels and len(labels) == p
    assert bars.layout.width >= figs.TICK_PIXELS * p  # room for every name
    heat = figs.logit_fourier_heatmap(torch.rand(p, p), labels, 25_000)
    for axis in (heat.layout.xaxis, heat.layout.yaxis):
        assert list(axis.tickvals) == labels and axis.tickmode == "array"
    assert min(heat.layout.width, heat.layout.height) >= figs.TICK_PIXELS * p
    assert "key frequencies 14, 35" in caption(bars)


def _one_line(text: str | None) -> bool:
    return bool(text) and "\n" not in text and text.endswith(".") and len(text) < 260


def test_every_figure_builder_captions_its_figure():
    p, n = 7, 3
    labels = basis_labels(p)
    metrics = pd.DataFrame({"epoch": [0, 10, 20], "train_loss": [2.0, 0.5, 0.1],
                            "test_loss": [2.0, 1.5, 0.2], "train_acc": [0.1, 1, 1],
                            "test_acc": [0.1, 0.2, 1]})
    measures = metrics[["epoch"]].assign(restricted_loss=[2, 1, 0.1], excluded_loss=[2, 3, 4],
                                         **{"excluded_loss/2": [2, 2.5, 3]}, gini_embed=0.5,
                                         gini_unembed=0.4, sum_squared_weights=10.0)
    table = frame([{"run": f"r{i}", "x": x, "y": y, "phase": "grokking", "accuracy_gap": 10 * i,
                    "m": float(i)} for i, (x, y) in enumerate([(1, 1), (2, 1), (1, 2), (2, 2)])])
    x, y = Axis("x", False, (1, 2)), Axis("y", False, (1, 2))
    lazy = metrics[["epoch", "train_loss", "test_loss"]].assign(**{
        "kernel_distance/trace": [0, 0.3, 0.6], "alignment/trace": [0.1, 0.2, 0.5],
        "movement": [0, 1, 2], "lin_train_loss": [2, 1, 1], "lin_test_loss": [2, 2, 2],
        "lin_gap_train": [0, 0.5, 1], "lin_gap_test": [0, 0.5, 1], "cka/hook_post": [1, 0.8, 0.5],
        "fourier_overlap/trace/0": [0, 0.5, 0.9]})
    figures = {
        "loss_and_accuracy": figs.loss_and_accuracy(metrics),
        "progress_losses": figs.progress_losses(metrics, measures),
        "excluded_per_frequency": figs.excluded_per_frequency(measures),
        "sparsity_and_weights": figs.sparsity_and_weights(measures),
        "embedding_fourier_norms": figs.embedding_fourier_norms(torch.rand(p), labels, [2], 20),
        "frequency_norms_over_time": figs.frequency_norms_over_time(
            [0, 20], torch.rand(2, p // 2), "W_E norm per frequency"),
        "neuron_clusters": figs.neuron_clusters(torch.rand(p // 2, n),
                                                torch.tensor([1, -1, 2]), 20),
        "logit_fourier_heatmap": figs.logit_fourier_heatmap(torch.rand(p, p), labels, 20),
        "logit_frequency_cosines": figs.logit_frequency_cosines(torch.rand(p // 2), [2], 20),
        "attention_patterns": figs.attention_patterns(torch.rand(2, p, p),
                                                      torch.rand(p // 2, 2), 20),
        "phase_diagram": sweep_figs.phase_diagram(table, x, y),
        "landmark_curves": sweep_figs.landmark_curves(table, x, "m", y),
        "landmark_heatmap": sweep_figs.landmark_heatmap(table, x, y, "m"),
        "learning_curves": sweep_figs.learning_curves({"a": metrics}, {"a": "cross_entropy"}),
        "kernel_figure": lazy_figs.kernel_figure(lazy, probes=16),
        "movement_figure": lazy_figs.movement_figure(lazy),
        "linearisation_figure": lazy_figs.linearisation_figure(lazy),
        "cka_figure": lazy_figs.cka_figure(lazy, probes=16),
        "fourier_overlap_figure": lazy_figs.fourier_overlap_figure(lazy, [2], probes=16),
        "loss_curves_by_alpha": model_curves.loss_curves_by_alpha({1.0: metrics}, "alpha",
                                                                  "cross-entropy"),
        "loss_decomposition": model_curves.loss_decomposition(metrics.assign(
            decomp_linear=1.0, decomp_scale=1.0, decomp_alignment=1.0, decomp_total=3.0)),
        "accuracy_and_weight_norm": model_curves.accuracy_and_weight_norm(
            metrics.assign(weight_norm=1.0), "run"),
        "accuracy_panels": model_curves.accuracy_panels({"a": metrics}, "runs"),
        "representation_quality": model_curves.representation_quality(
            metrics[["epoch"]].assign(rqi=[0, 0.5, 1]), metrics, torch.rand(p, 2)),
    }
    builders = {name for module in (figs, sweep_figs, lazy_figs, model_curves)
                for name, f in inspect.getmembers(module, inspect.isfunction)
                if f.__module__ == module.__name__ and not name.startswith("_")
                and inspect.signature(f).return_annotation in ("go.Figure", go.Figure)}
    assert builders == set(figures)  # a new builder needs a caption here too
    assert {name: caption(fig) for name, fig in figures.items()
            if not _one_line(caption(fig))} == {}


# ---------------------------------------------------------------------------------------------
# Whole --help texts


def _sentence(text: str) -> str:
    return " ".join(text.replace("``", "").split())


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_each_figure_commands_help_shows_its_whole_description(name, capsys):
    module, _, function = COMMANDS[name][0].partition(":")
    main = getattr(importlib.import_module(module), function or "main")
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    shown = _sentence(capsys.readouterr().out)
    description = _sentence(importlib.import_module(module).__doc__.split("\n\n")[0])
    assert description.endswith(".") and description in shown
    assert "--format FMT" in shown


def test_figures_help_lists_every_command_with_its_whole_sentence():
    shown = _sentence(usage())
    for name, (_, description) in COMMANDS.items():
        assert description.endswith("."), name
        assert f"{name} {_sentence(description)}" in shown


def test_list_presets_shows_each_whole_description():
    from interp.presets import PRESETS

    result = run_in_process("interp.train", "--list-presets")
    assert result.returncode == 0
    shown = _sentence(result.stdout)
    for name, factory in PRESETS.items():
        description = _sentence(inspect.cleandoc(factory.__doc__).split("\n\n")[0])
        assert description[-1] in ".)", name
        assert f"{name} {description}" in shown
    assert max(map(len, result.stdout.splitlines())) <= 100


def test_a_bad_format_list_is_refused_by_interp_parsers():
    from interp.cli import ArgumentParser

    parser = ArgumentParser(prog="p")
    add_format_option(parser)
    with pytest.raises(UserError, match="unknown format bmp; choose from html, png, svg, pdf"):
        parser.parse_args(["--format", "bmp"])
