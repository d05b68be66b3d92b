"""`robodistill report`: one self-contained page from bench/eval JSON, rendered by Chromium.

The JSON files are made by the producers' own code on tiny fake numbers (``EvalResult``,
``bench.methods._summarize``, ``bench.policy._summary``/``latency_ratios``/``machine_info``,
``LoopResult.summary``), so a change of their schema shows up here.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess

import numpy as np
import pytest

from robodistill.bench import compass as bench_compass
from robodistill.bench import methods as bench_methods
from robodistill.bench import policy as bench_policy
from robodistill.commands import report as report_command
from robodistill.evaluation import EvalResult
from robodistill.files import write_json_atomic
from robodistill.media import write_video
from robodistill.report import write_report
from robodistill.report.learning import extract_curves
from robodistill.runtime.loop import RECORDS, LoopResult
from robodistill.stats import latency_summary, wilson_interval

LEROBOT = "lerobot-diffusion"


def _eval_json(policy: str, successes: int, episodes: int, video: str | None) -> dict:
    per_episode = [
        {"seed": i, "success": i < successes, "length": 10 + i, "return": -float(i)}
        for i in range(episodes)
    ]
    return EvalResult(
        task="push",
        policy=policy,
        episodes=episodes,
        success_rate=successes / episodes,
        success_ci95=wilson_interval(successes, episodes),
        mean_length=12.0,
        mean_return=-3.0,
        wall_time_s=1.0,
        inference=latency_summary([0.01, 0.02, 0.03]),
        per_episode=per_episode,
        video=video,
    ).to_json()


def _methods_json(machine: dict) -> dict:
    def method(name: str, family: str, options: dict, successes: int, latency_s: float):
        m = bench_methods.Method(name, family, options, checkpoints=[])
        m.results.append(
            {
                "checkpoint": "runs/teacher",
                "episodes": 20,
                "successes": successes,
                "success_rate": successes / 20,
                "mean_length": 50.0,
                "eval_wall_time_s": 3.0,
                "control_steps_timed": 100,
                "nfe_per_control_step": options.get("rti_steps", 100) / 8,
                "latency_ms": latency_summary([latency_s] * 7 + [8 * latency_s]),
            }
        )
        return bench_methods._summarize(m)

    rows = [
        method("ddpm100", "diffusion", {"scheduler": "ddpm"}, 19, 0.2),
        method("ddim10", "diffusion", {"scheduler": "ddim"}, 18, 0.02),
        method("rti_k2_asis", "rti", {"sampler": "rti", "rti_steps": 2}, 15, 0.005),
    ]
    return {
        "bench": "methods",
        "task": "push",
        "teachers": ["runs/teacher"],
        "sdp": [],
        "episodes_per_checkpoint": 20,
        "rti_sweep": bench_methods._rti_sweep(rows, 2),
        "methods": rows,
        "machine": machine,
        "wall_time_s": 10.0,
    }


def _policy_json(machine: dict) -> dict:
    results = []
    for nfe, sampler, seconds in ((100, "ddpm", 1.5), (10, "ddim", 0.1)):
        for name, factor in (("runs/teacher", 1.0), (LEROBOT, 1.1)):
            results.append(
                {
                    "policy": name,
                    "nfe": nfe,
                    "sampler": sampler,
                    "n_action_steps": 8,
                    "chunk_latency": bench_policy._summary([seconds * factor] * 4),
                    "queue_pop_latency": bench_policy._summary([1e-4] * 28),
                    "breakdown": {},
                    "top_ops": [],
                }
            )
    return {
        "bench": "policy",
        "machine": machine,
        "setup": {"batch_size": 1, "chunks": 4},
        "policies": {"runs/teacher": {"kind": "robodistill"}, LEROBOT: {"kind": "lerobot"}},
        "results": results,
        "ratios": bench_policy.latency_ratios(results, "runs/teacher", [LEROBOT]),
    }


def _loop_json() -> dict:
    n, hz = 40, 100.0
    records = {k: np.zeros(n, dtype=t) for k, t in RECORDS.items()}
    records["period"][:] = 0.01 + np.linspace(0, 1e-3, n)
    records["latency"][:] = 0.002
    records["missed"][5] = True
    result = LoopResult(
        hz=hz,
        records=records,
        inference_s=[0.001] * 5,
        interventions={"clamp": 2},
        skipped_slots=0,
        wall_s=0.4,
        stop_reason="time",
        episodes=[{"success": True}, {"success": False}],
    )
    summary = {"transition": "latest_only", "mode": "async", **result.summary()}
    return {"bench": "loop", "policy": "expert", "task": "push", "server": False,
            "load": False, "realtime": False, "seconds": 0.4, "runs": [summary]}  # fmt: skip


def _refine_json() -> dict:
    steps = [0, 1000, 2000, 3000]
    return {
        "bench": "refine",
        "task": "push",
        "seeds": [0, 1],
        "curves": {
            "rpd": {
                "env_steps": steps,
                "success": [[0.1, 0.3, 0.6, 0.8], [0.2, 0.4, 0.5, 0.9]],  # per seed
                "return_mean": [-50.0, -30.0, -20.0, -10.0],
                "return_std": [5.0, 4.0, 3.0, 2.0],
            },
        },
    }


def _compass_json(machine: dict) -> dict:
    def cell(successes: int) -> dict:
        return {"successes": successes, "episodes": 10, "success_rate": successes / 10,
                "mean_length": 30.0}  # fmt: skip

    per_run = [
        {
            "run": f"runs/compass_s{seed}",
            "seed": seed,
            "stages": {
                "base": {"diff_drive": cell(9), "car": cell(2), "car_large": cell(1)},
                "specialist": {"diff_drive": cell(9), "car": cell(8 + seed)},
                "generalist": {"diff_drive": cell(9), "car": cell(8), "car_large": cell(5)},
            },
        }  # fmt: skip
        for seed in (0, 1)
    ]
    table = bench_compass._aggregate(per_run, ["diff_drive", "car", "car_large"])
    rows = [  # residual PPO's training curve (metrics rows), per seed
        [{"step": s, "success_rate": r, "mean_return": 0.0} for s, r in zip((0, 500, 1000), rates)]
        for rates in ((0.2, 0.5, 0.7), (0.3, 0.6, 0.9))
    ]
    return {
        "runs": ["runs/compass_s0", "runs/compass_s1"],
        "task": "nav",
        "demo_embodiment": "diff_drive",
        "trained_embodiments": ["diff_drive", "car"],
        "heldout_embodiments": ["car_large"],
        "episodes": 10,
        "table": table,
        "claims": bench_compass._claims(table, ["diff_drive", "car"], "diff_drive"),
        "curves": {"car": {"residual": rows, "scratch": rows[:1], "scratch_eval": [0.1]}},
        "per_run": per_run,
        "machine": machine,
    }


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """A results folder with one file of every kind, a video, junk, and a dataset folder."""
    root = tmp_path_factory.mktemp("results")
    machine = bench_policy.machine_info()
    frames = [np.full((32, 32, 3), 40 * i, dtype=np.uint8) for i in range(6)]
    write_video(root / "evals" / "teacher.mp4", frames, fps=10)
    write_json_atomic(root / "evals" / "expert.json", _eval_json("expert", 20, 20, None))
    video = "elsewhere/teacher.mp4"  # as recorded from another cwd: found beside the JSON
    write_json_atomic(root / "evals" / "teacher.json", _eval_json("runs/teacher", 17, 20, video))
    write_json_atomic(root / "methods_push.json", _methods_json(machine))
    write_json_atomic(root / "latency.json", _policy_json(machine))
    write_json_atomic(root / "loop" / "loop.json", _loop_json())
    write_json_atomic(root / "refine_push.json", _refine_json())
    write_json_atomic(root / "compass" / "bench.json", _compass_json(machine))
    write_json_atomic(root / "notes.json", {"hello": "world"})
    (root / "broken.json").write_text("{not json")
    write_json_atomic(root / "data" / "push" / "meta" / "info.json", {"fps": 10})
    html_path, md_path = write_report(root)
    return root, html_path.read_text(), md_path.read_text()


def test_report_has_the_method_table_with_ratios(results):
    _, page, md = results
    for name in ("ddpm100", "ddim10", "rti_k2_asis", "runs/teacher", LEROBOT):
        assert name in page and name in md
    assert "| method | family | success (95% CI) |" in md
    ddpm = next(line for line in md.splitlines() if line.startswith("| ddpm100 "))
    cells = [c.strip() for c in ddpm.strip("|").split("|")]
    assert cells[2] == "95% (76.4–99.1%)"  # 19/20 with its Wilson interval
    assert cells[8] == "1×"  # the teacher against itself
    assert cells[9] not in ("", "–")  # against lerobot's DDPM-100, from latency.json
    assert "0.909× / 0.909×" in md  # bench policy's own ratio: 1 / 1.1 at both NFEs


def test_report_embeds_every_image_and_needs_no_network(results):
    _, page, _ = results
    images = re.findall(r'<img src="([^"]*)"', page)
    # latency bars, Pareto, loop period error, learning curves, success bars, a video still
    assert len(images) >= 6
    assert all(src.startswith("data:image/png;base64,") for src in images)
    assert not re.search(r'(src|href)="(https?:)?//', page)
    assert "<script" not in page and "<link" not in page
    assert "Content-Security-Policy" in page
    assert 'id="stills"' in page and 'id="pareto"' in page and 'id="curves"' in page


def test_report_shows_the_machine_and_lists_unknown_files(results):
    _, page, md = results
    machine = bench_policy.machine_info()
    assert 'id="machine"' in page
    assert machine["cpu_model"] in page
    assert machine["versions"]["torch"] in md and machine["python"] in md
    assert "notes.json" in md and "broken.json" in md and "not readable as JSON" in md
    assert "data/push" in md and "meta/info.json" not in md  # dataset folder not searched
    assert "period err" in md and "100 Hz" in md  # the loop section
    assert "rpd" in md and "0.85 ± 0.05" in md  # learning curve: final mean ± std over seeds
    assert "| car_large (held out) | 10% ± 0% [2.8–30.1%] | – | 50% ± 0% [29.9–70.1%] |" in md


@pytest.mark.parametrize(
    "curves",
    [
        {"a": {"steps": [0, 1], "success": [0.1, 0.5], "success_std": [0.0, 0.1]}},
        [{"name": "a", "env_steps": [0, 1], "success_mean": {"mean": [0.1, 0.5], "std": [0, 0.1]}}],
        {"a": [{"step": 0, "success_rate": 0.1}, {"step": 1, "success_rate": 0.5}]},
        {"a": [[{"step": 0, "success_rate": 0.0}, {"step": 1, "success_rate": 0.4}],
               [{"step": 0, "success_rate": 0.2}, {"step": 2, "success_rate": 1.0}]]},
    ],
)  # fmt: skip
def test_learning_curves_are_read_from_every_accepted_shape(curves):
    panels = extract_curves(curves)
    (metric,) = panels
    assert "success" in metric
    line = panels[metric]["a"]
    assert line["x"] == [0.0, 1.0]
    assert line["mean"] == pytest.approx([0.1, 0.5])
    assert extract_curves({"a": "junk"}) == {} and extract_curves(None) == {}


def test_command_writes_both_files_and_empty_folder_says_what_to_do(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="run a bench first"):
        report_command.run(argparse.Namespace(folder=empty))
    write_json_atomic(tmp_path / "only.json", _eval_json("expert", 3, 4, None))
    assert report_command.run(argparse.Namespace(folder=tmp_path)) == 0
    assert (tmp_path / "report.html").is_file() and (tmp_path / "report.md").is_file()
    assert "wrote" in capsys.readouterr().out


# ----- headless Chromium ------------------------------------------------------------------
PROBE = """<script>
window.__problems = [];
addEventListener("error", e => __problems.push("error: " + (e.target.src || e.message)), true);
addEventListener("securitypolicyviolation", e => __problems.push("csp: " + e.blockedURI));
addEventListener("load", () => {
  const images = [...document.images];
  document.body.dataset.problems = JSON.stringify(__problems);
  document.body.dataset.images = images.length;
  document.body.dataset.decoded = images.filter(i => i.complete && i.naturalWidth > 0).length;
});
</script>"""
"""Records load errors and blocked loads, and how many images decoded, into the DOM."""

CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--hide-scrollbars", "--virtual-time-budget=10000",
]  # fmt: skip


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.skip(
            "chromium is not installed and this run could not install it: `./bootstrap.sh "
            "test` installs Debian's chromium when run as root; else `apt-get install chromium`"
        )
    return path


def _browse(chromium: str, tmp_path, *args: str) -> subprocess.CompletedProcess:
    profile = tmp_path / "profile"
    command = [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=180)


def test_report_renders_in_headless_chromium_without_errors(results, tmp_path):
    chromium = _chromium()
    root, page, _ = results
    # 1. The page as written: a screenshot, and the browser's console log.
    shot = tmp_path / "report.png"
    url = (root / "report.html").as_uri()
    run = _browse(
        chromium, tmp_path, "--enable-logging=stderr", "--v=0", "--window-size=1280,2000",
        f"--screenshot={shot}", url,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    console = [ln for ln in run.stderr.splitlines() if "CONSOLE" in ln or "Refused" in ln]
    assert not console, console
    import cv2

    image = cv2.imread(str(shot))
    assert image is not None and image.shape[:2] == (2000, 1280)
    assert image.std() > 20  # not a blank page: text, tables and plots
    # 2. The same page with a probe that records failed or blocked loads into the DOM.
    probed = root / "probe.html"
    probe_page = page.replace(
        "default-src 'none';", "default-src 'none'; script-src 'unsafe-inline';"
    )
    probed.write_text(probe_page.replace("</head>", PROBE + "</head>", 1))
    dom = _browse(chromium, tmp_path, "--dump-dom", probed.as_uri())
    probed.unlink()
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert "<table" in dom.stdout and "rti_k2_asis" in dom.stdout
    problems = re.search(r'data-problems="([^"]*)"', dom.stdout)
    assert problems is not None, "the probe did not run"
    assert json.loads(problems.group(1).replace("&quot;", '"')) == []
    images = int(re.search(r'data-images="(\d+)"', dom.stdout).group(1))
    decoded = int(re.search(r'data-decoded="(\d+)"', dom.stdout).group(1))
    assert images >= 6 and decoded == images
