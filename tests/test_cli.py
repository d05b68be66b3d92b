"""Smoke-run every CLI entry point on a tiny budget, from outside the repo."""

from __future__ import annotations

import json
import subprocess
import sys

from robodistill.cli import COMMANDS, main


def _cli(*args, cwd):
    return subprocess.run(
        [sys.executable, "-m", "robodistill", *args], cwd=cwd, capture_output=True, text=True
    )


def test_help_lists_every_command(tmp_path):
    result = _cli("--help", cwd=tmp_path)
    assert result.returncode == 0
    for name in COMMANDS:
        assert name in result.stdout
        assert _cli(name, "--help", cwd=tmp_path).returncode == 0


def test_envs_table_from_another_directory(tmp_path):
    result = _cli("envs", cwd=tmp_path)
    assert result.returncode == 0
    for task in ("reach", "push", "pick_place", "nav"):
        assert task in result.stdout


def test_user_errors_are_one_line_with_the_fix(capsys):
    assert main(["eval", "--task", "pusht", "--policy", "expert", "--episodes", "1"]) == 2
    err = capsys.readouterr().err
    assert "unknown task 'pusht'" in err and "push" in err and "Traceback" not in err
    assert main(["eval", "--task", "nav", "--embodiment", "tank", "--policy", "expert"]) == 2
    assert "known: ['car', 'car_large', 'diff_drive', 'holonomic']" in capsys.readouterr().err


def test_demo_runs_every_stage_and_reuses_finished_ones(tmp_path):
    out = tmp_path / "demo"
    first = _cli("demo", "--recipe", "demo/tiny", "--out", str(out), cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "$ robodistill train --recipe diffusion/tiny" in first.stdout  # commands are shown
    for produced in [
        "eval/expert.json",
        "eval/teacher.json",
        "runs/student/model.safetensors",
        "eval/rpd.json",
        "bench/methods.json",
        "bench/latency.json",
        "bench/loop/loop.json",
        "videos/world_model_stream.mp4",
        "report.html",
        "report.md",
    ]:
        assert (out / produced).exists(), produced
    methods = json.loads((out / "bench" / "methods.json").read_text())["methods"]
    assert {"ddim10", "sdp_h2", "cp_1step", "cp_3step"} <= {m["name"] for m in methods}
    assert "cp_1step" in (out / "report.md").read_text()

    (out / "stages" / "report.json").unlink()  # as if killed while writing the report
    second = _cli("demo", "--recipe", "demo/tiny", "--out", str(out), cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    assert second.stdout.count("done before, reusing") == 11
    assert "$ robodistill report" in second.stdout
