"""Typed configs and named presets: `tiny` (seconds, for tests), `cpu` (about 30 minutes on
2 cores), `gpu` (a model that fills an H100 for about an hour).

The CLI maps flags onto these dataclasses and calls one library function; everything the
CLI does, Python can do with the same objects.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

from wam.models.text import TextConfig
from wam.models.tokenizer import TokenizerConfig
from wam.models.world_model import WorldModelConfig
from wam.train.loop import TrainConfig


def config_changes(asked: dict, saved: dict, prefix: str = "") -> list[str]:
    """The settings where `asked` differs from `saved`, as 'path: saved -> asked' lines.

    A resumed run keeps its own saved config (resuming with other settings would make a run
    that no single config describes); this says which asked-for settings that leaves unused.
    """
    changes = []
    for key in sorted(set(asked) | set(saved)):
        a, s = asked.get(key), saved.get(key)
        if isinstance(a, dict) and isinstance(s, dict):
            changes += config_changes(a, s, f"{prefix}{key}.")
        elif (list(a) if isinstance(a, tuple) else a) != (list(s) if isinstance(s, tuple) else s):
            changes.append(f"{prefix}{key}: {s!r} -> {a!r}")
    return changes


@dataclass(frozen=True)
class PretrainConfig:
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    world: WorldModelConfig = field(default_factory=WorldModelConfig)
    tokenizer_train: TrainConfig = field(default_factory=TrainConfig)
    world_train: TrainConfig = field(default_factory=TrainConfig)
    window: int = 9  # frames per training window: window - 1 next-frame predictions
    stride: int = 2  # control steps between model frames (80 Hz Meta-World -> 40 Hz)
    # The model's frame interval in seconds: each dataset's stride is frame_seconds x its fps, so data at
    # 10, 30, 50 and 80 fps share one time base. None: `stride` steps everywhere (datasets must share one fps).
    frame_seconds: float | None = None
    cameras: tuple[str, ...] | None = None  # camera slots by name (wam/data/spec.py); None: the data's own
    fit: str = "pad"  # how frames of another size or aspect reach the model's square resolution (wam/data/fit.py)
    normalize: str = "mean_std"  # how the data's stats scale the state (wam/models/normalizer.py)
    val_fraction: float = 0.1
    seed: int = 0

    def __post_init__(self) -> None:
        from wam.data.fit import check_fit
        from wam.models.normalizer import NORMALIZE_SCHEMES

        check_fit(self.fit)
        if self.normalize not in NORMALIZE_SCHEMES:
            raise ValueError(f"normalize must be one of {', '.join(NORMALIZE_SCHEMES)}, got {self.normalize!r}")
        if self.frame_seconds is not None and self.frame_seconds <= 0:
            raise ValueError(f"frame_seconds must be > 0, got {self.frame_seconds}")
        if self.window - 1 > self.world.context:
            raise ValueError(f"window {self.window} needs context >= {self.window - 1}, preset has {self.world.context}")
        if self.tokenizer.latent_size != self.world.latent_size or self.tokenizer.latent_channels != self.world.latent_channels:
            raise ValueError("tokenizer latents and world model latents disagree in size or channels")

    def to_dict(self) -> dict:
        return asdict(self)

    def with_bf16(self, bf16: bool | None) -> "PretrainConfig":
        """Both stages in bfloat16 autocast (True), full precision (False), or the loop's default (None)."""
        if bf16 is None:
            return self
        return replace(self, tokenizer_train=replace(self.tokenizer_train, bf16=bf16),
                       world_train=replace(self.world_train, bf16=bf16))

    def with_image_size(self, size: int | None) -> "PretrainConfig":
        """The same architecture at another square resolution (64, 96, 128, ...): the latent grid follows."""
        if size is None or size == self.tokenizer.image_size:
            return self
        factor = 2 ** len(self.tokenizer.channels)
        if size % factor or (size // factor) % self.world.patch:
            raise ValueError(f"image size {size} must be a multiple of {factor * self.world.patch} for this preset "
                             f"({len(self.tokenizer.channels)} downsamplings and {self.world.patch}x{self.world.patch} patches)")
        return replace(self, tokenizer=replace(self.tokenizer, image_size=size), world=replace(self.world, latent_size=size // factor))

    def with_steps(self, steps: int | None) -> "PretrainConfig":
        """Scale both stages to `steps` world-model steps (tokenizer steps in proportion)."""
        if steps is None:
            return self
        ratio = self.tokenizer_train.steps / self.world_train.steps
        return replace(
            self,
            tokenizer_train=replace(self.tokenizer_train, steps=max(1, round(steps * ratio)),
                                    warmup_steps=min(self.tokenizer_train.warmup_steps, max(1, steps // 10))),
            world_train=replace(self.world_train, steps=steps, warmup_steps=min(self.world_train.warmup_steps, max(1, steps // 10))),
        )


def _tiny() -> PretrainConfig:
    return PretrainConfig(
        tokenizer=TokenizerConfig(64, (16, 16, 16), 8),
        world=WorldModelConfig(latent_channels=8, latent_size=8, patch=2, d_model=64, n_layers=2, n_heads=4, context=4,
                               latent_action_hidden=64, text=TextConfig(buckets=256, dim=32)),
        tokenizer_train=TrainConfig(steps=30, batch_size=8, lr=2e-3, warmup_steps=5, log_every=5, checkpoint_every=15),
        world_train=TrainConfig(steps=30, batch_size=4, lr=2e-3, warmup_steps=5, log_every=5, checkpoint_every=15),
        window=5,
        stride=1,
    )


def _cpu() -> PretrainConfig:
    # Sized by a measured end-to-end run on 2 quiet cores (2026-12-01): the tokenizer trains at ~0.69 s a
    # step and the world model at ~0.77 (checkpoints and evaluation included), so 650 + 1,500 steps plus
    # decoding and encoding (~2 min) took 28.6 minutes. The runs behind the recipe benchmark used twice the
    # steps (1,300 + 3,000, ~55 min).
    return PretrainConfig(
        tokenizer=TokenizerConfig(64, (16, 32, 64), 16),
        world=WorldModelConfig(d_model=256, n_layers=6, n_heads=8, context=8),
        tokenizer_train=TrainConfig(steps=650, batch_size=64, lr=2e-3, warmup_steps=50, log_every=20, checkpoint_every=200),
        world_train=TrainConfig(steps=1500, batch_size=16, lr=6e-4, warmup_steps=100, log_every=20, eval_every=500,
                                checkpoint_every=250),
        window=9,
        stride=2,
    )


def _gpu() -> PretrainConfig:
    return PretrainConfig(
        tokenizer=TokenizerConfig(64, (64, 128, 256), 16),
        world=WorldModelConfig(d_model=768, n_layers=12, n_heads=12, context=16, latent_action_hidden=512),
        tokenizer_train=TrainConfig(steps=20000, batch_size=256, lr=1e-3, warmup_steps=500, log_every=50, checkpoint_every=2000),
        world_train=TrainConfig(steps=40000, batch_size=128, lr=3e-4, warmup_steps=1000, log_every=50, eval_every=2000,
                                checkpoint_every=2000),
        window=17,
        stride=2,
    )


def _demo() -> PretrainConfig:
    # `make demo`: the whole recipe in minutes on 2 cores; a quarter of the cpu preset's world model.
    return PretrainConfig(
        tokenizer=TokenizerConfig(64, (16, 32, 64), 16),
        world=WorldModelConfig(d_model=128, n_layers=4, n_heads=4, context=4, latent_action_hidden=128),
        tokenizer_train=TrainConfig(steps=500, batch_size=32, lr=2e-3, warmup_steps=30, log_every=20, checkpoint_every=250),
        world_train=TrainConfig(steps=1000, batch_size=16, lr=1e-3, warmup_steps=50, log_every=20, eval_every=500,
                                checkpoint_every=500),
        window=5,
        stride=2,
    )


PRETRAIN_PRESETS = {"tiny": _tiny, "demo": _demo, "cpu": _cpu, "gpu": _gpu}


def pretrain_preset(name: str) -> PretrainConfig:
    try:
        return PRETRAIN_PRESETS[name]()
    except KeyError:
        raise ValueError(f"unknown preset {name!r}; presets: {sorted(PRETRAIN_PRESETS)}") from None


def pretrain_config_from_dict(data: dict) -> PretrainConfig:
    return PretrainConfig(
        tokenizer=TokenizerConfig(**{**data["tokenizer"], "channels": tuple(data["tokenizer"]["channels"])}),
        world=WorldModelConfig.from_dict(data["world"]),
        tokenizer_train=TrainConfig(**{**data["tokenizer_train"], "betas": tuple(data["tokenizer_train"]["betas"])}),
        world_train=TrainConfig(**{**data["world_train"], "betas": tuple(data["world_train"]["betas"])}),
        window=data["window"], stride=data["stride"], val_fraction=data["val_fraction"], seed=data["seed"],
        frame_seconds=data.get("frame_seconds"), cameras=tuple(data["cameras"]) if data.get("cameras") else None,
        fit=data.get("fit", "pad"), normalize=data.get("normalize", "none"),  # runs saved before these fields: none
    )


# -- stage two: finetuning into a World Action Model ------------------------------------------


@dataclass(frozen=True)
class FinetuneConfig:
    """How a pretrained world model becomes a WAM on a few labelled robot episodes.

    Without a pretrained run (the from-scratch baseline) the same WAM is built from
    `scratch_preset`'s architecture and its tokenizer is trained on the robot frames alone.
    """

    train: TrainConfig = field(default_factory=TrainConfig)
    chunk: int = 8  # control actions per predicted chunk
    execute: int = 4  # of those, how many the policy runs before predicting again (receding horizon)
    window: int = 5  # frames per training window (the policy's context is window - 1 frames)
    video_batch: int = 8  # action-free windows mixed into every step when video is given
    task_free_dynamics: bool = False  # the action-conditioned pass without the task text (WAMConfig.task_free_dynamics)
    play_batch: int = 16  # labelled play windows (dynamics, reward and success only) per step when play data is given
    episodes_per_task: int | None = None  # K labelled episodes per task; None: all (minus validation)
    subset_seed: int = 0  # which K episodes
    val_episodes: int = 20  # labelled episodes held out for the validation action loss
    augment_copies: int = 0  # > 0: this many randomly shifted copies of the training frames (wam/train/augment.py)
    augment_pad: int = 4  # the largest shift, in pixels
    hidden: int = 512
    action_weight: float = 1.0
    latent_weight: float = 100.0
    align_weight: float = 1.0
    state_weight: float = 10.0
    scratch_preset: str = "cpu"  # architecture for the from-scratch baseline
    scratch_tokenizer_steps: int = 600
    scratch_image_size: int | None = None  # the from-scratch baseline's resolution; None: the preset's
    cameras: tuple[str, ...] | None = None  # camera slots by name (wam/data/spec.py); None: the robot data's own
    fit: str = "pad"  # how frames reach the model's resolution (wam/data/fit.py)
    normalize: str = "mean_std"  # how the robot data's stats scale state and action (wam/models/normalizer.py)
    seed: int = 0

    def __post_init__(self) -> None:
        from wam.data.fit import check_fit
        from wam.models.normalizer import NORMALIZE_SCHEMES

        check_fit(self.fit)
        if self.normalize not in NORMALIZE_SCHEMES:
            raise ValueError(f"normalize must be one of {', '.join(NORMALIZE_SCHEMES)}, got {self.normalize!r}")
        if self.execute < 1 or self.execute > self.chunk:
            raise ValueError(f"execute must be in 1..chunk ({self.chunk}), got {self.execute}")
        if self.window < 2:
            raise ValueError(f"window must be >= 2 frames, got {self.window}")
        if self.episodes_per_task is not None and self.episodes_per_task < 1:
            raise ValueError(f"episodes_per_task must be >= 1, got {self.episodes_per_task}")
        if self.augment_copies < 0 or (self.augment_copies and self.augment_pad < 1):
            raise ValueError(f"augment_copies must be >= 0 and augment_pad >= 1, got {self.augment_copies} and {self.augment_pad}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "FinetuneConfig":
        train = data["train"]
        cameras = tuple(data["cameras"]) if data.get("cameras") else None
        # runs saved before normalisation trained on raw values
        return cls(**{"normalize": "none", **data, "cameras": cameras,
                      "train": TrainConfig(**{**train, "betas": tuple(train["betas"])})})


def _finetune_tiny() -> FinetuneConfig:
    return FinetuneConfig(
        train=TrainConfig(steps=30, batch_size=4, lr=1e-3, warmup_steps=5, log_every=5, eval_every=15, checkpoint_every=15),
        chunk=4, execute=2, window=3, video_batch=2, val_episodes=2, hidden=64, scratch_preset="tiny", scratch_tokenizer_steps=20,
    )


def _finetune_cpu() -> FinetuneConfig:
    return FinetuneConfig(
        train=TrainConfig(steps=1500, batch_size=16, lr=3e-4, warmup_steps=100, log_every=20, eval_every=250,
                          checkpoint_every=250),
    )


def _finetune_gpu() -> FinetuneConfig:
    return FinetuneConfig(
        train=TrainConfig(steps=10000, batch_size=128, lr=2e-4, warmup_steps=500, log_every=50, eval_every=1000,
                          checkpoint_every=1000),
        window=9, video_batch=64, hidden=1024, scratch_preset="gpu", scratch_tokenizer_steps=5000,
    )


def _finetune_demo() -> FinetuneConfig:
    return FinetuneConfig(
        train=TrainConfig(steps=600, batch_size=16, lr=5e-4, warmup_steps=50, log_every=20, eval_every=300, checkpoint_every=300),
        hidden=256, scratch_preset="demo", scratch_tokenizer_steps=400,
    )


FINETUNE_PRESETS = {"tiny": _finetune_tiny, "demo": _finetune_demo, "cpu": _finetune_cpu, "gpu": _finetune_gpu}


def finetune_preset(name: str) -> FinetuneConfig:
    try:
        return FINETUNE_PRESETS[name]()
    except KeyError:
        raise ValueError(f"unknown preset {name!r}; presets: {sorted(FINETUNE_PRESETS)}") from None


@dataclass(frozen=True)
class DistillConfig:
    """How a WAM's action-conditioned world model is distilled into a fast dream student (wam/train/distill.py)."""

    train: TrainConfig = field(default_factory=TrainConfig)
    hidden: int = 512
    layers: int = 3
    seed: int = 0

    def __post_init__(self) -> None:
        if self.hidden < 1 or self.layers < 0:
            raise ValueError(f"hidden must be >= 1 and layers >= 0, got {self.hidden}, {self.layers}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "DistillConfig":
        train = data["train"]
        return cls(**{**data, "train": TrainConfig(**{**train, "betas": tuple(train["betas"])})})


DISTILL_PRESETS = {
    "tiny": lambda: DistillConfig(TrainConfig(steps=30, batch_size=8, lr=2e-3, warmup_steps=5, log_every=5, eval_every=15,
                                              checkpoint_every=15), hidden=64, layers=1),
    "cpu": lambda: DistillConfig(TrainConfig(steps=1500, batch_size=64, lr=1e-3, warmup_steps=100, log_every=50, eval_every=500,
                                             checkpoint_every=250)),
    "gpu": lambda: DistillConfig(TrainConfig(steps=20000, batch_size=512, lr=1e-3, warmup_steps=500, log_every=100,
                                             eval_every=2000, checkpoint_every=2000), hidden=1024, layers=4),
}


def distill_preset(name: str) -> DistillConfig:
    try:
        return DISTILL_PRESETS[name]()
    except KeyError:
        raise ValueError(f"unknown preset {name!r}; presets: {sorted(DISTILL_PRESETS)}") from None


@dataclass(frozen=True)
class JudgeConfig:
    """How a world's success judge is trained on real frames (wam/train/judge.py, wam/models/judge.py)."""

    train: TrainConfig = field(default_factory=TrainConfig)
    hidden: int = 256
    val_fraction: float = 0.25  # of the extra data's policies (episode sources), held out whole: the calibration's
    # Also train on the extra data's episodes replayed in the world's dream: every predicted frame labelled with the
    # real frame's success flag, so the judge learns what the dream draws when reality failed.
    dreamed: bool = False
    balance: bool = False  # draw every (source, label) group alike, not every frame (JudgeBatches)
    seed: int = 0
    precision: float = 0.9  # the verdict's threshold is calibrated on held-out policies for this precision
    relabel: float = 0.0  # hard negatives: this fraction of frames shown with another task's instruction, as failures
    kind: str = "frame"  # "frame": success from one frame (SuccessJudge); "progress": progress from a clip (ProgressJudge)
    clip: int = 4  # progress judge: latent frames a clip holds, one model step apart
    failure_ceiling: float = 0.5  # progress judge: the progress a failed episode's last frame is labelled with
    reverse: float = 0.0  # progress judge: hard negatives, this fraction of clips played backwards
    hold: int = 1  # model steps the probability must stay above it (the verdict the dream then uses)

    def __post_init__(self) -> None:
        if self.hidden < 1 or not 0.0 <= self.val_fraction < 1.0:
            raise ValueError(f"hidden must be >= 1 and val_fraction in [0, 1), got {self.hidden}, {self.val_fraction}")
        if self.kind not in ("frame", "progress") or self.clip < 1 or not 0.0 <= self.failure_ceiling <= 1.0:
            raise ValueError(f"kind must be frame or progress, clip >= 1 and failure_ceiling in [0, 1], got {self.kind!r}, "
                             f"{self.clip}, {self.failure_ceiling}")
        if not 0.0 < self.precision <= 1.0 or self.hold < 1 or not 0.0 <= self.relabel < 1.0:
            raise ValueError(f"precision must be in (0, 1], hold >= 1 and relabel in [0, 1), got {self.precision}, "
                             f"{self.hold}, {self.relabel}")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class DriftGuardConfig:
    """How a world's drift guard is trained and calibrated (wam/train/drift_guard.py, wam/models/inverse_dynamics.py)."""

    train: TrainConfig = field(default_factory=TrainConfig)
    hidden: int = 256
    window: int = 4  # model steps whose mean inverse-dynamics error is compared with the tolerance
    quantile: float = 0.99  # the tolerance: this quantile of that windowed error on held-out real episodes
    seed: int = 0

    def __post_init__(self) -> None:
        if self.hidden < 1 or self.window < 1 or not 0.0 < self.quantile <= 1.0:
            raise ValueError(f"hidden and window must be >= 1 and quantile in (0, 1], got {self.hidden}, {self.window}, "
                             f"{self.quantile}")

    def to_dict(self) -> dict:
        return asdict(self)


DRIFT_GUARD_PRESETS = {
    "tiny": lambda: DriftGuardConfig(TrainConfig(steps=30, batch_size=16, lr=2e-3, warmup_steps=5, log_every=5,
                                                 checkpoint_every=15), hidden=32),
    "cpu": lambda: DriftGuardConfig(TrainConfig(steps=2000, batch_size=128, lr=1e-3, weight_decay=1e-4, warmup_steps=100,
                                                log_every=50, checkpoint_every=500)),
}


JUDGE_PRESETS = {
    "tiny": lambda: JudgeConfig(TrainConfig(steps=30, batch_size=16, lr=2e-3, warmup_steps=5, log_every=5, eval_every=15,
                                            checkpoint_every=15), hidden=32),
    "cpu": lambda: JudgeConfig(TrainConfig(steps=3000, batch_size=128, lr=1e-3, weight_decay=1e-4, warmup_steps=100,
                                           log_every=50, eval_every=1000, checkpoint_every=500)),
}


def judge_preset(name: str) -> JudgeConfig:
    try:
        return JUDGE_PRESETS[name]()
    except KeyError:
        raise ValueError(f"unknown preset {name!r}; presets: {sorted(JUDGE_PRESETS)}") from None


DREAM_VERDICTS = ("any", "final")


@dataclass(frozen=True)
class DreamSettings:
    """How a dream steps and calls success, chosen once (a command's options) and passed whole to every dream made
    from it: evaluation in dreams (`EvalConfig.dream`), RL in dreams (`RLConfig.dream`), replays (wam.dojo.replay).

    "any": success as soon as the verdict says so, held `success_hold` model steps, as Meta-World counts it.
    "final": the dream runs to its step limit and is judged once, on the mean probability of its last
    `final_window` model steps (a failing policy hovering at the handle gets a hundred chances to fool "any")."""

    student: bool = False  # step with the run's distilled dream student (wam distill): tens of times cheaper a step
    bf16: bool = False  # the world model's step under bfloat16 autocast (about 2x on CPUs with bf16 units)
    judge: bool = False  # success from the run's success judge (wam judge) reading each frame, not the WAM's head
    success_threshold: float = 0.5
    success_hold: int = 1  # model steps in a row the verdict must agree before the dream calls the task done
    verdict: str = "any"
    final_window: int = 10
    # With the judge: its calibrated threshold and hold (judge/calibration.json, chosen on held-out policies for a
    # precision) replace success_threshold and success_hold, when the judge has a calibration.
    calibrated: bool = True
    # End a dream "undecided" (never a success) once its frames stop following the commanded actions: the world's
    # drift guard (wam drift-guard) reads the actions off the dream's frames and compares them with those commanded.
    drift_guard: bool = False

    def __post_init__(self) -> None:
        if self.success_hold < 1:
            raise ValueError(f"success_hold must be at least 1 model step, got {self.success_hold}")
        if self.verdict not in DREAM_VERDICTS:
            raise ValueError(f"verdict must be one of {', '.join(DREAM_VERDICTS)}, got {self.verdict!r}")
        if self.final_window < 1:
            raise ValueError(f"final_window must be at least 1 model step, got {self.final_window}")
        if not 0.0 < self.success_threshold < 1.0:
            raise ValueError(f"success_threshold must be a probability in (0, 1), got {self.success_threshold}")


def drift_guard_preset(name: str) -> DriftGuardConfig:
    try:
        return DRIFT_GUARD_PRESETS[name]()
    except KeyError:
        raise ValueError(f"unknown preset {name!r}; presets: {sorted(DRIFT_GUARD_PRESETS)}") from None
