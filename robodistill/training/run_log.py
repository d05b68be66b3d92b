"""What a training run tells its user: ``train.log``, ``metrics.jsonl``, ``loss.png``, tqdm.

Only rank 0 writes; on other ranks a :class:`RunLog` does nothing.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from tqdm import tqdm

LOG_FILE = "train.log"
METRICS_FILE = "metrics.jsonl"
PLOT_FILE = "loss.png"


class RunLog:
    """Text log, JSON-lines metrics and a progress bar of one run in ``out``.

    On resume at ``start_step``, metric lines after that step (written after the last
    checkpoint by the interrupted run) are dropped so the curve has no duplicates.
    """

    def __init__(self, out: Path, start_step: int, total_steps: int, enabled: bool = True) -> None:
        self.enabled = enabled
        self.out = Path(out)
        if not enabled:
            return
        self.out.mkdir(parents=True, exist_ok=True)
        metrics = self.out / METRICS_FILE
        if metrics.exists():
            kept = [
                line
                for line in metrics.read_text().splitlines()
                if line.strip() and json.loads(line)["step"] <= start_step
            ]
            metrics.write_text("".join(f"{line}\n" for line in kept))
        self._log = open(self.out / LOG_FILE, "a", buffering=1)  # noqa: SIM115 (closed in close())
        self._metrics = open(metrics, "a", buffering=1)  # noqa: SIM115
        self._bar = tqdm(total=total_steps, initial=start_step, dynamic_ncols=True)

    def info(self, message: str) -> None:
        """A timestamped line in train.log and above the progress bar."""
        if not self.enabled:
            return
        line = f"{time.strftime('%Y-%m-%d %H:%M:%S')} {message}"
        self._log.write(line + "\n")
        self._bar.write(line)

    def metrics(self, step: int, **values: float) -> None:
        """One JSON line ``{"step": ..., **values}`` plus a train.log line and bar postfix."""
        if not self.enabled:
            return
        self._metrics.write(json.dumps({"step": step, **values}) + "\n")
        text = " ".join(f"{k}={v:.4g}" for k, v in values.items())
        self._log.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} step={step} {text}\n")
        self._bar.set_postfix_str(text, refresh=False)

    def advance(self, steps: int = 1) -> None:
        """``steps`` training steps done."""
        if self.enabled:
            self._bar.update(steps)

    def plot(self) -> None:
        """Redraw loss.png from metrics.jsonl."""
        if self.enabled:
            from robodistill.training.plots import plot_metrics

            plot_metrics(self.out / METRICS_FILE, self.out / PLOT_FILE)

    def close(self) -> None:
        if self.enabled:
            self._bar.close()
            self._log.close()
            self._metrics.close()
