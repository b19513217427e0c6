"""The Modulo Addition 1-Layer family: the :class:`~epochstore.interface.ModelFamily` glue.

Importing this module imports no torch (the entry point loads it wherever a run is only shown,
e.g. ``epochstore serve``): the model, data, training and analyzer modules are imported by the
methods that need them.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from epochstore.families.modadd.config import PRESETS, ModAddConfig

if TYPE_CHECKING:
    import torch

    from epochstore.families.modadd.data import ModAddData
    from epochstore.families.modadd.model import ModAddTransformer, Positions
    from epochstore.interface import Analyzer, EventSpec, View

__all__ = ["CIRCUIT_LOSS", "DEFAULT_CACHE_KEYS", "ModAddFamily"]

#: What the built-in analyzers read from the activation cache. Keeping only these cuts the
#: per-epoch memory of analysis at p = 113 by ~250 MB (the whole cache is ~370 MB).
DEFAULT_CACHE_KEYS: frozenset[str] = frozenset({"mlp_post", "logits"})

#: Restricted loss (nats) under which the Fourier circuit counts as formed: the model predicts
#: the test set well from the key frequencies alone (chance is ``ln p``, about 4 at p = 53).
CIRCUIT_LOSS: float = 0.1


class ModAddFamily:
    """Modulo Addition 1-Layer: learn ``(a + b) mod p`` from ``a b =`` (Nanda et al. 2023).

    Configs are :class:`~epochstore.families.modadd.config.ModAddConfig` dicts (missing keys
    take the paper's defaults); presets are ``"paper"`` and ``"demo"``.

    Parameters
    ----------
    cache_keys
        Activations :meth:`run_with_cache` keeps. The default, :data:`DEFAULT_CACHE_KEYS`, is
        what the built-in analyzers read (``mlp_post`` and ``logits``); pass ``None`` to keep
        all of :data:`~epochstore.families.modadd.model.CACHE_KEYS` (for your own analyzers
        that read attention patterns or the residual stream).
    positions
        Positions :meth:`run_with_cache` computes. ``"last"``: only what the ``=`` position
        needs, where the built-in analyzers read everything (4x less CPU than ``"all"`` at
        p = 113, equal to its last position up to float rounding); the cached activations then
        have a position axis of length 1 (``cache["mlp_post"][:, -1]`` reads the same in both),
        except the keys and values ``k``, ``v``. ``"all"``: every position, for analyzers of
        your own that read the ``a`` or ``b`` positions (see
        :meth:`~epochstore.families.modadd.model.ModAddTransformer.forward`). The default,
        ``None``, is ``"last"`` with the default ``cache_keys`` (what the built-in analyzers
        read) and ``"all"`` whenever you choose ``cache_keys`` yourself, so that asking for
        more activations never silently gets a shortened position axis.

    Examples
    --------
    >>> family = ModAddFamily()
    >>> config = {"p": 7, "d_model": 8, "n_heads": 2, "d_head": 4, "d_mlp": 16}
    >>> model = family.build_model(config)
    >>> cache = family.run_with_cache(model, family.make_probe(config))
    >>> tuple(cache["mlp_post"].shape)
    (49, 1, 16)
    >>> every = ModAddFamily(cache_keys=None).run_with_cache(model, family.make_probe(config))
    >>> tuple(every["mlp_post"].shape)
    (49, 3, 16)
    """

    name = "modadd"

    def __init__(
        self,
        cache_keys: Collection[str] | None = DEFAULT_CACHE_KEYS,
        positions: Positions | None = None,
    ) -> None:
        if positions is None:
            default_keys = cache_keys is not None and frozenset(cache_keys) == DEFAULT_CACHE_KEYS
            positions = "last" if default_keys else "all"
        if positions not in ("all", "last"):
            raise ValueError(
                f"ModAddFamily(positions=...) must be 'last' (what the analyzers of the '=' "
                f"position need) or 'all' (every position), got {positions!r}"
            )
        self.cache_keys = None if cache_keys is None else frozenset(cache_keys)
        self.positions: Positions = positions

    def __repr__(self) -> str:
        return f"ModAddFamily(cache_keys={self.cache_keys!r}, positions={self.positions!r})"

    def presets(self) -> Mapping[str, Mapping[str, Any]]:
        """Return ``{"demo": ..., "paper": ...}`` as JSON-serialisable config dicts."""
        return {name: PRESETS[name].to_dict() for name in sorted(PRESETS)}

    def config(self, config: Mapping[str, Any] | ModAddConfig) -> ModAddConfig:
        """Return ``config`` as a validated :class:`ModAddConfig`."""
        return ModAddConfig.from_dict(config)

    def build_model(self, config: Mapping[str, Any]) -> ModAddTransformer:
        """Build the freshly initialised (seeded) model of ``config``."""
        from epochstore.families.modadd.model import build_model

        return build_model(self.config(config))

    def make_probe(self, config: Mapping[str, Any], device: str = "cpu") -> ModAddData:
        """Return the full ``(a, b)`` grid with the config's train/test split on ``device``."""
        from epochstore.families.modadd.data import make_data

        return make_data(self.config(config), device)

    def run_with_cache(self, model: torch.nn.Module, probe: Any) -> dict[str, torch.Tensor]:
        """Run ``model`` on every probe row without gradients; return the activation cache.

        Only the family's ``cache_keys`` are kept, at its ``positions``.
        """
        import torch

        from epochstore.families.modadd.data import ModAddData

        if not isinstance(probe, ModAddData):
            raise TypeError(f"expected a ModAddData probe, got {type(probe).__name__}")
        cache: dict[str, torch.Tensor] = {}
        with torch.no_grad():
            model(probe.inputs, cache=cache, cache_keys=self.cache_keys, positions=self.positions)
        return cache

    def analyzers(self) -> Sequence[Analyzer]:
        """Return the family's analyzers: dominant_frequencies, neuron_activations,
        neuron_freq_norm, training_metrics, progress_measures."""
        from epochstore.families.modadd.analyzers import default_analyzers

        return default_analyzers()

    def events(self) -> Sequence[EventSpec]:
        """The phases of grokking, each the first epoch a stored series crosses a threshold.

        ``memorisation``: train accuracy >= 99% (checkpoint metrics); ``grokking``: test
        accuracy >= 99% (checkpoint metrics); ``circuit_formation``: the restricted loss of
        ``progress_measures`` <= :data:`CIRCUIT_LOSS` (needs that analyzer).
        """
        from epochstore.interface import EventSpec

        return (
            EventSpec("memorisation", "metrics", "train_accuracy", ">=", 0.99,
                      "train accuracy reaches 99%"),
            EventSpec("grokking", "metrics", "test_accuracy", ">=", 0.99,
                      "test accuracy reaches 99%"),
            EventSpec("circuit_formation", "progress_measures", "restricted_loss", "<=",
                      CIRCUIT_LOSS, f"restricted loss (key frequencies only) <= {CIRCUIT_LOSS}"),
        )

    def views(self) -> Sequence[View]:
        """Return the family's declared views (see :mod:`epochstore.families.modadd.views`)."""
        from epochstore.families.modadd.views import modadd_views

        return modadd_views()

    def train(
        self,
        location: str,
        config: Mapping[str, Any],
        *,
        progress: Callable[[int, Mapping[str, float]], None] | None = None,
        device: str = "cpu",
        resume: bool = True,
    ) -> None:
        """Train a run into ``location``, a local directory; see
        :func:`~epochstore.families.modadd.train.train_run`."""
        from epochstore.families.modadd.train import train_run

        train_run(location, self.config(config), device=device, progress=progress, resume=resume)
