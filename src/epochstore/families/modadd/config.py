"""Configuration of the Modulo Addition 1-Layer family: one frozen dataclass, presets, schedules.

A configuration is a plain value: :meth:`ModAddConfig.to_dict` gives the JSON-serialisable
parameters stored in ``variant.json`` and in every checkpoint, :meth:`ModAddConfig.from_dict`
reads them back (missing keys take their defaults, unknown keys are an error).

Checkpoint schedules
--------------------
``checkpoint_epochs`` lists the epochs to save explicitly; ``checkpoint_every=N`` saves every
N-th epoch; with neither, the paper's 95-checkpoint schedule (:func:`paper_schedule`) is used,
cut at ``num_epochs``. In every case the final epoch ``num_epochs - 1`` is saved too. The
checkpoint of epoch ``e`` holds the parameters after ``e`` full-batch optimiser steps (epoch 0
is the initialisation).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from epochstore.naming import MAX_EPOCH

__all__ = [
    "PAPER_SCHEDULE_RANGES",
    "PRESETS",
    "ModAddConfig",
    "every_n_schedule",
    "get_preset",
    "paper_schedule",
    "schedule_from_ranges",
]

#: The original tool's schedule for the paper run: ``(start, stop, step)`` ranges, plus 24999.
PAPER_SCHEDULE_RANGES: Final[tuple[tuple[int, int, int], ...]] = (
    (0, 1500, 100),
    (1500, 9000, 500),
    (9000, 13000, 100),
    (13000, 25000, 500),
)


def schedule_from_ranges(
    ranges: Iterable[tuple[int, int, int]], final: int | None = None
) -> tuple[int, ...]:
    """Return the sorted, de-duplicated epochs of ``range(start, stop, step)`` pieces.

    Parameters
    ----------
    ranges
        ``(start, stop, step)`` triples, as for :class:`range`.
    final
        An extra epoch to include (usually the last epoch of training).

    Returns
    -------
    tuple of int
        Sorted unique epochs.

    Examples
    --------
    >>> schedule_from_ranges([(0, 300, 100), (300, 1000, 350)], final=999)
    (0, 100, 200, 300, 650, 999)
    """
    epochs: set[int] = set()
    for start, stop, step in ranges:
        epochs.update(range(start, stop, step))
    if final is not None:
        epochs.add(final)
    return tuple(sorted(epochs))


def paper_schedule(num_epochs: int = 25_000) -> tuple[int, ...]:
    """Return the paper run's checkpoint epochs, cut at ``num_epochs``, plus the final epoch.

    For the full 25,000-epoch run these are the original tool's 95 checkpoints:
    ``range(0, 1500, 100)``, ``range(1500, 9000, 500)``, ``range(9000, 13000, 100)``,
    ``range(13000, 25000, 500)`` and 24999.

    Examples
    --------
    >>> len(paper_schedule())
    95
    >>> paper_schedule(350)
    (0, 100, 200, 300, 349)
    """
    full = schedule_from_ranges(PAPER_SCHEDULE_RANGES)
    return (*tuple(e for e in full if e < num_epochs - 1), num_epochs - 1)


def every_n_schedule(every: int, num_epochs: int) -> tuple[int, ...]:
    """Return ``0, every, 2*every, ...`` below ``num_epochs``, plus the final epoch.

    Examples
    --------
    >>> every_n_schedule(100, 350)
    (0, 100, 200, 300, 349)
    """
    if every < 1:
        raise ValueError(f"checkpoint_every must be a positive integer, got {every}")
    return schedule_from_ranges([(0, num_epochs, every)], final=num_epochs - 1)


def _is_prime(n: int) -> bool:
    if n < 2:
        return False
    return all(n % d for d in range(2, int(n**0.5) + 1))


def _check_int(name: str, value: object, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"ModAddConfig.{name} must be an int, got {value!r}")
    if value < minimum:
        raise ValueError(f"ModAddConfig.{name} must be >= {minimum}, got {value}")


def _check_float(name: str, value: object, low: float, high: float | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"ModAddConfig.{name} must be a number, got {value!r}")
    if value < low or (high is not None and value >= high):
        bound = f"in [{low}, {high})" if high is not None else f">= {low}"
        raise ValueError(f"ModAddConfig.{name} must be {bound}, got {value}")


@dataclass(frozen=True)
class ModAddConfig:
    """Parameters of one Modulo Addition 1-Layer run (a *variant*).

    The defaults are the paper's configuration (Nanda et al. 2023): p = 113, 30% of the
    (a, b) pairs for training, a 1-layer transformer with d_model 128, 4 heads of 32, d_mlp 512,
    full-batch AdamW (lr 1e-3, weight decay 1.0, betas (0.9, 0.98)) for 25,000 epochs.

    Parameters
    ----------
    p
        The modulus, a prime >= 3. Tokens ``0..p-1`` are numbers, token ``p`` is ``=``.
    frac_train
        Fraction of the ``p * p`` pairs used for training (the rest is the test set).
    d_model, n_heads, d_head, d_mlp
        Transformer sizes.
    lr, weight_decay, betas
        AdamW hyper-parameters (full batch: one step per epoch).
    num_epochs
        Number of epochs; epochs are ``0..num_epochs-1`` and the last one is always saved.
    data_seed
        Seed of the train/test split.
    model_seed
        Seed of the parameter initialisation.
    checkpoint_epochs
        Explicit epochs to checkpoint (the final epoch is added).
    checkpoint_every
        Checkpoint every N-th epoch instead (exclusive with ``checkpoint_epochs``).

    Examples
    --------
    >>> cfg = ModAddConfig(p=23, num_epochs=300, checkpoint_every=100)
    >>> cfg.schedule
    (0, 100, 200, 299)
    >>> ModAddConfig.from_dict(cfg.to_dict()) == cfg
    True
    """

    p: int = 113
    frac_train: float = 0.3
    d_model: int = 128
    n_heads: int = 4
    d_head: int = 32
    d_mlp: int = 512
    lr: float = 1e-3
    weight_decay: float = 1.0
    betas: tuple[float, float] = (0.9, 0.98)
    num_epochs: int = 25_000
    data_seed: int = 598
    model_seed: int = 999
    checkpoint_epochs: tuple[int, ...] | None = None
    checkpoint_every: int | None = None

    def __post_init__(self) -> None:
        _check_int("p", self.p, 3)
        if not _is_prime(self.p):
            raise ValueError(f"ModAddConfig.p must be a prime, got {self.p}")
        _check_float("frac_train", self.frac_train, 0.0, 1.0)
        n_train = int(self.frac_train * self.p * self.p)
        if not 0 < n_train < self.p * self.p:
            raise ValueError(
                f"frac_train={self.frac_train} leaves an empty train or test set for p={self.p}"
            )
        for name in ("d_model", "n_heads", "d_head", "d_mlp"):
            _check_int(name, getattr(self, name), 1)
        _check_float("lr", self.lr, 0.0)
        if self.lr == 0:
            raise ValueError("ModAddConfig.lr must be > 0")
        _check_float("weight_decay", self.weight_decay, 0.0)
        betas = tuple(self.betas)
        if len(betas) != 2:
            raise ValueError(f"ModAddConfig.betas must be two numbers, got {self.betas!r}")
        for i, beta in enumerate(betas):
            _check_float(f"betas[{i}]", beta, 0.0, 1.0)
        object.__setattr__(self, "betas", (float(betas[0]), float(betas[1])))
        _check_int("num_epochs", self.num_epochs, 1)
        if self.num_epochs > MAX_EPOCH + 1:
            raise ValueError(
                f"ModAddConfig.num_epochs must be <= {MAX_EPOCH + 1} (epochs are named with "
                f"five digits), got {self.num_epochs}"
            )
        _check_int("data_seed", self.data_seed, 0)
        _check_int("model_seed", self.model_seed, 0)
        if self.checkpoint_epochs is not None and self.checkpoint_every is not None:
            raise ValueError("give checkpoint_epochs or checkpoint_every, not both")
        if self.checkpoint_every is not None:
            _check_int("checkpoint_every", self.checkpoint_every, 1)
        if self.checkpoint_epochs is not None:
            epochs = tuple(self.checkpoint_epochs)
            for epoch in epochs:
                _check_int("checkpoint_epochs[...]", epoch, 0)
                if epoch >= self.num_epochs:
                    raise ValueError(
                        f"checkpoint epoch {epoch} is not below num_epochs={self.num_epochs}"
                    )
            object.__setattr__(self, "checkpoint_epochs", tuple(sorted(set(epochs))))

    @property
    def d_vocab(self) -> int:
        """Input vocabulary size: the numbers ``0..p-1`` and the ``=`` token ``p``."""
        return self.p + 1

    @property
    def equals_token(self) -> int:
        """Token id of ``=`` (``p``)."""
        return self.p

    @property
    def final_epoch(self) -> int:
        """The last epoch of training, ``num_epochs - 1``; always checkpointed."""
        return self.num_epochs - 1

    @property
    def schedule(self) -> tuple[int, ...]:
        """The sorted epochs to checkpoint, always including the final epoch."""
        if self.checkpoint_epochs is not None:
            return tuple(sorted({*self.checkpoint_epochs, self.final_epoch}))
        if self.checkpoint_every is not None:
            return every_n_schedule(self.checkpoint_every, self.num_epochs)
        return paper_schedule(self.num_epochs)

    def to_dict(self) -> dict[str, Any]:
        """Return the parameters as a JSON-serialisable dict (tuples become lists)."""
        out = dataclasses.asdict(self)
        out["betas"] = list(self.betas)
        if self.checkpoint_epochs is not None:
            out["checkpoint_epochs"] = list(self.checkpoint_epochs)
        return out

    @classmethod
    def from_dict(cls, params: Mapping[str, Any] | ModAddConfig) -> ModAddConfig:
        """Build a config from a mapping such as ``variant.json``'s ``params``.

        Missing keys take their defaults; lists become tuples.

        Raises
        ------
        ValueError
            If ``params`` has keys that are not config fields (the message lists the valid
            ones), or a value is out of range.
        TypeError
            If a value has the wrong type.
        """
        if isinstance(params, ModAddConfig):
            return params
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(params) - known)
        if unknown:
            raise ValueError(
                f"unknown modadd config key(s) {unknown}; valid keys are {sorted(known)}"
            )
        kwargs = dict(params)
        if "betas" in kwargs:
            kwargs["betas"] = tuple(kwargs["betas"])
        if kwargs.get("checkpoint_epochs") is not None:
            kwargs["checkpoint_epochs"] = tuple(kwargs["checkpoint_epochs"])
        return cls(**kwargs)

    def replace(self, **changes: Any) -> ModAddConfig:
        """Return a copy with some fields changed (validated like a new config)."""
        return dataclasses.replace(self, **changes)


def _demo_schedule() -> tuple[int, ...]:
    # Memorisation takes ~50 epochs and the test accuracy jumps between ~1000 and ~2500:
    # dense there, sparse in the clean-up phase after it. 50 checkpoints.
    return schedule_from_ranges(
        [(0, 100, 25), (100, 1000, 100), (1000, 2500, 50), (2500, 4000, 250)], final=3999
    )


#: Named configurations: ``paper`` (Nanda et al. 2023) and ``demo`` (groks in minutes on a CPU;
#: measurements in ``docs/families/modadd.md``).
PRESETS: Final[Mapping[str, ModAddConfig]] = {
    "paper": ModAddConfig(),
    "demo": ModAddConfig(
        p=53,
        frac_train=0.35,
        lr=3e-3,
        num_epochs=4000,
        checkpoint_epochs=_demo_schedule(),
    ),
}


def get_preset(name: str) -> ModAddConfig:
    """Return the preset configuration ``name``.

    Raises
    ------
    KeyError
        If there is no such preset (the message lists the known ones).
    """
    try:
        return PRESETS[name]
    except KeyError:
        raise KeyError(f"unknown modadd preset {name!r}; presets: {sorted(PRESETS)}") from None
