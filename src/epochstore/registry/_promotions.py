"""The promotion methods of :class:`~epochstore.CheckpointManager`, kept out of the manager.

``CheckpointManager`` inherits them; each reads the manager's current manifest and hands the
work to a :class:`Registry` beside the checkpoint directory.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from epochstore.registry._registry import PromotionTarget, Registry
from epochstore.registry.records import ProductionRecord, VersionRecord, parse_version

if TYPE_CHECKING:
    from epochstore.checkpoints.layout import Checkpoint, MapLocation
    from epochstore.checkpoints.manifest import Manifest

__all__ = ["Promotions"]


class Promotions:
    """Promotion, raw -> ``validated`` -> ``production``, as methods of a checkpoint manager."""

    _dir: str

    def _manifest(self) -> Manifest:
        raise NotImplementedError  # pragma: no cover - provided by CheckpointManager

    def _registry(self, manifest: Manifest) -> Registry:
        raise NotImplementedError  # pragma: no cover - provided by CheckpointManager

    def _check_writable(self, action: str) -> None:
        raise NotImplementedError  # pragma: no cover - provided by CheckpointManager

    def promote(
        self,
        epoch: int | None = None,
        *,
        to: PromotionTarget,
        version: str,
        checks: Mapping[str, Any] | None = None,
    ) -> VersionRecord | ProductionRecord:
        """Promote a checkpoint: raw -> ``validated`` -> ``production``.

        ``promote(epoch=100, to="validated", version="1.0.0", checks={...})`` copies the
        verified checkpoint of epoch 100 to ``validated/v1.0.0.safetensors`` with an immutable
        record. ``promote(version="1.0.0", to="production")`` copies that version to
        ``production/model.safetensors`` and appends to the production history.

        Parameters
        ----------
        epoch
            The committed epoch to validate (``to="validated"``). With ``to="production"``
            it is optional and, if given, must be the version's source epoch.
        to
            ``"validated"`` or ``"production"``.
        version
            A semantic version, e.g. ``"1.0.0"``.
        checks
            JSON-able results of the checks that passed (``{"test_accuracy": 0.99}``);
            a check whose value is ``False`` failed and refuses the promotion.

        Returns
        -------
        VersionRecord or ProductionRecord
            The record written.

        Raises
        ------
        InvalidVersionError
            If ``version`` is not a semantic version.
        PromotionError
            If the version exists already, a check failed, the checkpoint or validated file is
            corrupt, or a production promotion names a version that was not validated.
        CheckpointNotFoundError
            If ``epoch`` is not committed.
        """
        self._check_writable("promote")
        manifest = self._manifest()
        return self._registry(manifest).promote(
            manifest, self._dir, epoch, to=to, version=version, checks=checks
        )

    def versions(self) -> list[str]:
        """Return the validated versions, in semantic-version order (``1.9.0`` < ``1.10.0``)."""
        return [str(v) for v in self._registry(self._manifest()).versions()]

    def version_record(self, version: str) -> VersionRecord:
        """Return the immutable record of a validated version."""
        return self._registry(self._manifest()).record(parse_version(version))

    def production_record(self) -> ProductionRecord | None:
        """Return which version is in production, or ``None``."""
        return self._registry(self._manifest()).production()

    def production_history(self) -> list[ProductionRecord]:
        """Return the append-only history of production promotions, oldest first."""
        return self._registry(self._manifest()).history()

    def load_version(
        self,
        version: str,
        *,
        map_location: MapLocation = "cpu",
        include_optimizer: bool = True,
    ) -> Checkpoint:
        """Load a validated version, verified against its record.

        The returned checkpoint has ``version`` set and ``epoch`` = the source epoch.

        Raises
        ------
        CheckpointNotFoundError
            If the version was not validated.
        CorruptCheckpointError
            If its file does not match the record.
        """
        return self._registry(self._manifest()).load_version(
            version, map_location=map_location, include_optimizer=include_optimizer
        )

    def load_production(
        self, *, map_location: MapLocation = "cpu", include_optimizer: bool = True
    ) -> Checkpoint:
        """Load ``production/model.safetensors``, verified against ``production/model.json``.

        Raises
        ------
        CheckpointNotFoundError
            If nothing was promoted to production.
        CorruptCheckpointError
            If the production copy does not match its record (for example after an
            interrupted promotion: run ``promote(version=..., to="production")`` again).
        """
        return self._registry(self._manifest()).load_production(
            map_location=map_location, include_optimizer=include_optimizer
        )
