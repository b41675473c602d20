"""The judge's verdict, calibrated for precision on policies it never saw.

A dream's success verdict is "the judge's success probability stayed above a threshold for `hold` model steps in a
row". How good that verdict is can only be told on episodes of policies the judge did not train on: judged on held-out
episodes of its own training policies, the last judge called 10% of failures successes, on unseen policies' real
frames 84% (benchmarks/results/dream_eval_judge*.json). So the calibration reads held-out policies' episodes only:

- each episode's score is the highest probability held for `hold` consecutive frames (the verdict's own statistic);
- the threshold is the lowest one whose precision over those episodes (successes called that were real) reaches the
  asked precision, which keeps the most true successes at that precision; if no threshold reaches it, the most
  precise one is taken and the calibration says the target was missed;
- reported beside it: true- and false-positive rates at that threshold, the whole curve (threshold, precision, TPR,
  FPR), and the frame-level reliability (predicted probability against the observed success frequency, in bins).
The result is stored with the judge (`judge/calibration.json`) and dreams with the judge use it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

CALIBRATION_FILE = "calibration.json"


@dataclass(frozen=True)
class Calibration:
    threshold: float  # success probability the verdict needs, held for `hold` steps
    hold: int
    precision_target: float
    reached: bool  # whether some threshold reaches the target precision on the held-out episodes
    precision: float | None  # at the threshold (None: no success called)
    true_positive_rate: float | None
    false_positive_rate: float | None
    episodes: int
    real_successes: int
    policies: list[str] = field(default_factory=list)  # the held-out policies the figures are on
    curve: list[dict] = field(default_factory=list)
    reliability: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Calibration":
        return cls(**data)


def held_score(probabilities: np.ndarray, hold: int) -> float:
    """The highest probability held for `hold` consecutive frames: max over windows of the window's minimum."""
    p = np.asarray(probabilities, dtype=np.float64).reshape(-1)
    if hold < 1:
        raise ValueError(f"hold must be >= 1 frame, got {hold}")
    if len(p) < hold:
        return 0.0  # too short to hold a verdict that long: never a success
    windows = np.lib.stride_tricks.sliding_window_view(p, hold)
    return float(windows.min(axis=1).max())


def rates(scores: np.ndarray, real: np.ndarray, threshold: float) -> dict:
    called = scores >= threshold
    tp, fp = int((called & real).sum()), int((called & ~real).sum())
    return {"threshold": float(threshold), "called": int(called.sum()),
            "precision": tp / (tp + fp) if tp + fp else None,
            "true_positive_rate": tp / int(real.sum()) if real.any() else None,
            "false_positive_rate": fp / int((~real).sum()) if (~real).any() else None}


def reliability(probabilities: np.ndarray, labels: np.ndarray, bins: int = 10) -> list[dict]:
    """Frame-level calibration: in each probability bin, the mean prediction and the observed success frequency."""
    p, y = np.asarray(probabilities, np.float64), np.asarray(labels, bool)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
    return [{"low": float(edges[b]), "high": float(edges[b + 1]), "frames": int((which == b).sum()),
             "mean_probability": float(p[which == b].mean()), "observed": float(y[which == b].mean())}
            for b in range(bins) if (which == b).any()]


def calibrate(episode_probabilities: list[np.ndarray], episode_success: list[bool], frame_labels: list[np.ndarray],
              precision: float, hold: int, policies: list[str]) -> Calibration:
    """The threshold for `precision` on these held-out episodes (see the module's docstring)."""
    if not 0.0 < precision <= 1.0:
        raise ValueError(f"precision must be in (0, 1], got {precision}")
    if not episode_probabilities:
        raise ValueError("no held-out episode to calibrate the judge on")
    scores = np.array([held_score(p, hold) for p in episode_probabilities])
    real = np.asarray(episode_success, bool)
    candidates = np.unique(scores)[::-1]  # high to low: precision is tried from the strictest threshold down
    curve = [rates(scores, real, t) for t in candidates]
    reaching = [c for c in curve if c["precision"] is not None and c["precision"] >= precision]
    if reaching:
        chosen = reaching[-1]  # the lowest threshold that still reaches the precision: the most successes kept
    else:
        precise = [c for c in curve if c["precision"] is not None]
        best = max((c["precision"] for c in precise), default=None)
        chosen = ([c for c in precise if c["precision"] == best][-1] if best is not None
                  else rates(scores, real, float(np.nextafter(scores.max(), np.inf))))
    frames_p = np.concatenate([np.asarray(p, np.float64).reshape(-1) for p in episode_probabilities])
    frames_y = np.concatenate([np.asarray(y, bool).reshape(-1) for y in frame_labels])
    return Calibration(threshold=chosen["threshold"], hold=hold, precision_target=precision, reached=bool(reaching),
                       precision=chosen["precision"], true_positive_rate=chosen["true_positive_rate"],
                       false_positive_rate=chosen["false_positive_rate"], episodes=len(scores),
                       real_successes=int(real.sum()), policies=sorted(policies), curve=curve,
                       reliability=reliability(frames_p, frames_y))


def save_calibration(directory: Path, calibration: Calibration) -> Path:
    from wam.data.layout import atomic_write_json

    path = Path(directory) / CALIBRATION_FILE
    atomic_write_json(path, calibration.to_dict())
    return path


def load_calibration(directory: Path) -> Calibration | None:
    path = Path(directory) / CALIBRATION_FILE
    return Calibration.from_dict(json.loads(path.read_text())) if path.is_file() else None
