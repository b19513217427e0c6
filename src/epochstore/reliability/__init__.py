"""Checking and repairing a run: ``verify_run`` reads everything, ``repair_run`` removes damage."""

from epochstore.reliability.verify import (
    ArtifactDamage,
    RunVerification,
    repair_run,
    verify_run,
)

__all__ = ["ArtifactDamage", "RunVerification", "repair_run", "verify_run"]
