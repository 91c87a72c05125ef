"""The figure commands for the other models: each trains a tiny run (or reads it) and
writes its HTML; bad input is one line."""

import pytest
from conftest import run_cli

COMMANDS = {
    "gromov-norm": ["--set", "task.p=7", "--set", "model.width=16"],
    "toy-rqi": ["--set", "task.p=6"],
    "hu-models": ["--set", "task.p=7", "--frac", "0.5"],
    "committee-alpha": ["--set", "task.dim=8", "--set", "task.n_train=30",
                        "--set", "task.n_test=30", "--set", "model.width=10", "--alphas", "1"],
}
OUTPUTS = {"gromov-norm": ["gromov-norm"], "toy-rqi": ["toy-rqi"], "hu-models": ["hu-models"],
           "committee-alpha": ["committee-alpha-loss", "committee-decomposition"]}


@pytest.mark.parametrize("name", COMMANDS)
def test_figure_command_writes_html_and_reuses_its_runs(tmp_path, name):
    args = ["interp.figures", name, *COMMANDS[name], "--epochs", "12", "--runs-dir",
            str(tmp_path / "runs"), "--out", str(tmp_path / "out"), "--device", "cpu"]
    result = run_cli(*args)
    assert result.returncode == 0, result.stderr
    for output in OUTPUTS[name]:
        html = (tmp_path / "out" / f"{output}.html").read_text()
        assert "plotly" in html.lower() and len(html) > 1000
    runs = sorted(p.name for p in (tmp_path / "runs").iterdir())
    again = run_cli(*args)  # the second call reads the finished runs instead of training
    assert again.returncode == 0 and sorted(p.name for p in (tmp_path / "runs").iterdir()) == runs


def test_figure_command_bad_input_is_one_line(tmp_path):
    result = run_cli("interp.figures", "toy-rqi", "--set", "task.p=1", "--runs-dir",
                     str(tmp_path / "runs"), "--out", str(tmp_path / "out"))
    assert result.returncode == 2 and "task.p must be at least 2" in result.stderr
    assert result.stderr.strip().count("\n") == 0 and "Traceback" not in result.stderr
