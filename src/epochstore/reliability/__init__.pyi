"""Type stub of :mod:`epochstore.reliability`: its public names, loaded lazily."""

from .verify import (
    ArtifactDamage,
    RunVerification,
    repair_run,
    verify_run,
)

__all__ = ["ArtifactDamage", "RunVerification", "repair_run", "verify_run"]
