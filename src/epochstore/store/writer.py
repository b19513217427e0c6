"""ArtifactStore: writes one epoch of one analyzer at a time, atomically."""

from __future__ import annotations

import json
import math
import time
import uuid
import warnings
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import zarr
from zarr.core.buffer import cpu
from zarr.core.sync import sync

from epochstore._version import __version__
from epochstore.errors import (
    EpochNotFoundError,
    InvalidNameError,
    SchemaMismatchError,
    UnsupportedArrayError,
)
from epochstore.location import PARTIAL_SUFFIX, STALE_AFTER
from epochstore.naming import NAME_PATTERN, validate_epoch, validate_name
from epochstore.run import ARTIFACTS_DIR
from epochstore.store.codecs import DEFAULT_CODEC, Codec, default_layout
from epochstore.store.commit import METADATA_KEY
from epochstore.store.manifest import (
    ATTRS_KEY,
    CREATED_FORMAT,
    GENERATIONS_FORMAT,
    WRITE_TOKEN_KEY,
    AnalyzerManifest,
    FieldManifest,
)
from epochstore.store.reader import _ArtifactView

if TYPE_CHECKING:
    from numpy.typing import ArrayLike
    from zarr.abc.store import Store

    from epochstore.store.location import LocationLike

__all__ = ["MAX_FIELD_BYTES", "ArtifactStore"]

#: Largest single field of one epoch accepted (guards against absurd shapes).
MAX_FIELD_BYTES = 64 * 1024**3
_ALLOWED_KINDS = frozenset("biufc")


class ArtifactStore(_ArtifactView):
    """Writes analysis artifacts of a run, one (analyzer, epoch) node at a time.

    Each epoch of each analyzer is a Zarr v3 group ``<analyzer>/epoch_NNNNN`` with one array per
    output field, committed atomically: an epoch exists, whole, once its node exists. Readers
    (:class:`~epochstore.ArtifactLoader`) never see a partial epoch.

    Parameters
    ----------
    location
        A run directory (default: the Zarr root is ``<location>/artifacts``), an fsspec URL such
        as ``"s3://bucket/runs/p113"``, or a zarr ``Store`` (e.g. ``zarr.storage.MemoryStore()``).
    storage_options
        fsspec options for URLs (credentials, ``endpoint_url``, ...).
    path
        The artifact root below the run location; ``""`` for the location itself.
    codec
        Compression and checksum of new analyzers (existing analyzers keep theirs): a
        :class:`Codec` or a name for :meth:`Codec.parse` (``"default"``: LZ4, the fastest
        reads; ``"archival"``: zstd level 1, as small as ``.npz``; ``"none"``).

    Examples
    --------
    >>> import numpy as np, zarr
    >>> store = ArtifactStore(zarr.storage.MemoryStore())
    >>> store.write_epoch("neuron_activations", 100, {"activations": np.ones((4, 3, 3))},
    ...                   dims={"activations": ("neuron", "a", "b")})
    >>> store.get_epochs("neuron_activations")
    [100]
    """

    _read_only = False

    def __init__(
        self,
        location: LocationLike,
        *,
        storage_options: Mapping[str, Any] | None = None,
        path: str = ARTIFACTS_DIR,
        codec: Codec | str = DEFAULT_CODEC,
    ) -> None:
        self._codec = Codec.parse(codec) if isinstance(codec, str) else codec
        super().__init__(location, storage_options=storage_options, path=path)
        self._root_ready = False
        self._formats_ensured: set[int] = set()

    # --- groups -------------------------------------------------------------------------------

    def _ensure_root(self) -> None:
        if self._root_ready:
            return
        if not self._check_format():
            # Exclusive create, as for an analyzer's group: of several processes creating the
            # store at once exactly one root metadata lands, and the others read it (zarr's own
            # open_group(mode="a") checks, then creates, and refused the loser of that race).
            document = {
                "zarr_format": 3,
                "node_type": "group",
                "attributes": {
                    "epochstore_format": CREATED_FORMAT, "epochstore_version": __version__
                },
            }
            sync(
                self._location.store.set_if_not_exists(
                    self._location.key(METADATA_KEY),
                    cpu.Buffer.from_bytes(json.dumps(document).encode()),
                )
            )
            self._check_format()
        self._root_ready = True

    def _require_format(self, version: int) -> None:
        """Mark the store as format ``version`` at least, before a write that needs it.

        Called before the first write that uses a feature of a later format (``superseded`` in
        a manifest: 2; a generation on an object store: 3): an older reader then refuses the
        store instead of misreading it (``docs/format.md``). Once per store object.
        """
        if version in self._formats_ensured:
            return
        group = zarr.open_group(self.store, path=self.root_path, mode="a", zarr_format=3)
        current = group.attrs.get("epochstore_format")
        if not isinstance(current, int) or current < version:
            group.attrs.update({"epochstore_format": version})
        self._formats_ensured.add(version)

    def _write_manifest(self, manifest: AnalyzerManifest) -> None:
        zarr.open_group(
            self._location.store,
            path=self._location.key(manifest.analyzer),
            mode="a",
            zarr_format=3,
        ).attrs.put({ATTRS_KEY: manifest.to_attrs()})
        self._manifests.pop(manifest.analyzer, None)

    def create_analyzer(
        self,
        analyzer: str,
        *,
        version: str | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> AnalyzerManifest:
        """Create the analyzer's group (once), recording its version and run-level params.

        Calling it again with the same values does nothing, so parallel workers can all call
        it; the pipeline calls it before any task starts so that workers never race on it.

        Raises
        ------
        SchemaMismatchError
            If the analyzer exists with another version or other params.
        """
        validate_name(analyzer, "analyzer name")
        self._ensure_root()
        try:
            params = json.loads(json.dumps(dict(params or {})))  # as it will read back
        except (TypeError, ValueError) as exc:
            raise SchemaMismatchError(
                f"params of analyzer {analyzer!r} must be JSON-serialisable: {exc}"
            ) from None
        try:
            current = self._manifest(analyzer)
        except KeyError:
            # Exclusive create: of several writers racing here, exactly one group metadata
            # lands, and nobody can overwrite a manifest that already has its fields.
            manifest = AnalyzerManifest(
                analyzer=analyzer, codec=self._codec, version=version, params=params
            )
            document = {
                "zarr_format": 3,
                "node_type": "group",
                "attributes": {ATTRS_KEY: manifest.to_attrs()},
            }
            sync(
                self._location.store.set_if_not_exists(
                    self._location.key(analyzer, METADATA_KEY),
                    cpu.Buffer.from_bytes(json.dumps(document).encode()),
                )
            )
            current = self._manifest(analyzer)
        if current.version != version or dict(current.params) != params:
            raise SchemaMismatchError(
                f"analyzer {analyzer!r} in {self._location.display} was written by version "
                f"{current.version!r} with params {dict(current.params)!r}, not {version!r} "
                f"with {params!r}; delete it (store.delete_analyzer({analyzer!r})) to recompute "
                "all its epochs, or use a new analyzer name"
            )
        return current

    def delete_analyzer(self, analyzer: str) -> None:
        """Delete an analyzer and every epoch of it."""
        self._analyzer_attrs(analyzer)
        for epoch in self.get_epochs(analyzer):
            self._commit.delete(analyzer, epoch)
        sync(self._location.store.delete_dir(self._location.key(analyzer)))
        self._manifests.pop(analyzer, None)

    # --- epochs -------------------------------------------------------------------------------

    def _prepare_outputs(
        self,
        analyzer: str,
        outputs: Mapping[str, ArrayLike],
        dims: Mapping[str, Sequence[str]] | None,
        chunks: Mapping[str, Sequence[int]] | None,
    ) -> tuple[dict[str, np.ndarray], dict[str, FieldManifest]]:
        if not isinstance(outputs, Mapping) or not outputs:
            raise UnsupportedArrayError(
                f"outputs for analyzer {analyzer!r} must be a non-empty mapping of field name "
                f"to array, got {type(outputs).__name__}"
            )
        dims = dict(dims or {})
        chunks = dict(chunks or {})
        for extra in (set(dims) | set(chunks)) - set(outputs):
            raise SchemaMismatchError(
                f"dims/chunks given for {extra!r}, which is not an output of analyzer "
                f"{analyzer!r} (outputs: {sorted(outputs)})"
            )
        arrays: dict[str, np.ndarray] = {}
        fields: dict[str, FieldManifest] = {}
        for name, value in outputs.items():
            validate_name(name, f"field name of analyzer {analyzer!r}")
            array = _as_storable_array(analyzer, name, value)
            field_dims = tuple(dims.get(name, [f"{name}_dim_{i}" for i in range(array.ndim)]))
            if len(field_dims) != array.ndim:
                raise SchemaMismatchError(
                    f"field {name!r} of analyzer {analyzer!r} has {array.ndim} dimensions but "
                    f"dims {field_dims} names {len(field_dims)}; give one name per axis"
                )
            for dim in field_dims:
                try:
                    validate_name(dim, f"dimension name of field {name!r}")
                except InvalidNameError as exc:
                    raise InvalidNameError(str(exc)) from None
                if dim == "epoch":
                    raise InvalidNameError(
                        f"dimension name 'epoch' of field {name!r} is reserved for the stacked "
                        "epoch axis of load_epochs(); rename it"
                    )
            if len(set(field_dims)) != len(field_dims):
                raise SchemaMismatchError(f"dims {field_dims} of field {name!r} repeat a name")
            field_chunks = chunks.get(name)
            layout = default_layout(
                array.shape,
                array.dtype,
                None if field_chunks is None else tuple(int(c) for c in field_chunks),
            )
            arrays[name] = array
            fields[name] = FieldManifest(
                dims=field_dims, dtype=array.dtype.str, shape=array.shape, layout=layout
            )
        return arrays, fields

    def _check_schema(
        self,
        manifest: AnalyzerManifest,
        fields: Mapping[str, FieldManifest],
        dims_given: Mapping[str, Sequence[str]] | None,
    ) -> None:
        where = f"analyzer {manifest.analyzer!r} in {self._location.display}"
        fix = (
            "every epoch of an analyzer must have the same fields, shapes and dtypes; write to "
            "a new analyzer name, or delete_analyzer() to start over"
        )
        if set(fields) != set(manifest.fields):
            raise SchemaMismatchError(
                f"{where} has fields {sorted(manifest.fields)}, this epoch has "
                f"{sorted(fields)}; {fix}"
            )
        for name, new in fields.items():
            old = manifest.fields[name]
            if new.shape != old.shape or new.dtype != old.dtype:
                raise SchemaMismatchError(
                    f"field {name!r} of {where} is {old.dtype} {old.shape} in earlier epochs, "
                    f"this epoch gives {new.dtype} {new.shape}; {fix}"
                )
            if dims_given and name in dims_given and new.dims != old.dims:
                raise SchemaMismatchError(
                    f"field {name!r} of {where} has dims {old.dims}, this epoch gives "
                    f"{new.dims}; {fix}"
                )

    def write_epoch(
        self,
        analyzer: str,
        epoch: int,
        outputs: Mapping[str, ArrayLike],
        *,
        dims: Mapping[str, Sequence[str]] | None = None,
        overwrite: bool = False,
        chunks: Mapping[str, Sequence[int]] | None = None,
        attrs: Mapping[str, Any] | None = None,
    ) -> None:
        """Write one epoch of one analyzer atomically.

        Parameters
        ----------
        analyzer
            Analyzer name (``[a-z][a-z0-9_]*``); its group is created on first write.
        epoch
            Epoch number, 0..99999.
        outputs
            Field name to array (numeric or bool dtype).
        dims
            Field name to dimension names; default ``<field>_dim_0, <field>_dim_1, ...``.
            Recorded once, in the analyzer's manifest, by the first epoch written.
        overwrite
            Replace an existing epoch (readers see the old epoch or the new, never a mix).
        chunks
            Field name to chunk shape, for the first epoch of an analyzer (later epochs use the
            recorded layout, so every epoch is chunked alike).
        attrs
            Extra JSON-serialisable attributes of this epoch's group.

        Raises
        ------
        EpochExistsError
            If the epoch exists and ``overwrite`` is false.
        SchemaMismatchError
            If fields, shapes, dtypes or dims differ from the analyzer's earlier epochs.
        InvalidNameError, InvalidEpochError, UnsupportedArrayError
            On bad names, epochs or arrays, before anything is written.
        StoreWriteError
            If the storage fails (disk full, I/O error); nothing partial is visible.
        """
        validate_name(analyzer, "analyzer name")
        epoch = validate_epoch(epoch)
        arrays, fields = self._prepare_outputs(analyzer, outputs, dims, chunks)
        self._ensure_root()
        try:
            manifest = self._manifest(analyzer)
        except KeyError:
            manifest = self.create_analyzer(analyzer)
        if not manifest.fields:
            manifest = AnalyzerManifest(
                analyzer=analyzer,
                fields=fields,
                codec=manifest.codec,
                version=manifest.version,
                params=manifest.params,
                superseded=manifest.superseded,
            )
            self._write_manifest(manifest)
        else:
            self._check_schema(manifest, fields, dims)
        codec = manifest.codec
        layouts = {name: manifest.fields[name] for name in arrays}
        # One token per write, in the group and every array: a reader that finds two tokens
        # read across an overwrite and must retry, instead of mixing two versions.
        token = uuid.uuid4().hex
        epoch_attrs = {**dict(attrs or {}), "epoch": epoch, WRITE_TOKEN_KEY: token}

        def write_node(store: Store, path: str) -> None:
            group = zarr.create_group(store, path=path, attributes=epoch_attrs, zarr_format=3)
            for name, array in arrays.items():
                field = layouts[name]
                target = group.create_array(
                    name,
                    shape=array.shape,
                    dtype=array.dtype,
                    chunks=field.layout.chunks,
                    shards=field.layout.shards,
                    compressors=codec.zarr_compressors(),
                    dimension_names=field.dims,
                    fill_value=0,
                    config={"write_empty_chunks": True},
                    attributes={WRITE_TOKEN_KEY: token},
                )
                if array.size:
                    target[...] = array

        if overwrite and self._location.local_root is None:
            self._require_format(GENERATIONS_FORMAT)  # an overwrite writes a generation
        self._commit.commit(analyzer, epoch, write_node, overwrite=overwrite)

    def delete_epoch(self, analyzer: str, epoch: int, *, force: bool = False) -> None:
        """Delete one epoch of an analyzer; it disappears whole.

        Parameters
        ----------
        analyzer, epoch
            The epoch to delete.
        force
            Also delete a damaged node that is no longer a committed epoch (e.g. its group
            metadata is gone); used by ``epochstore repair``.

        Raises
        ------
        EpochNotFoundError
            If the epoch does not exist (and not ``force``).
        """
        self._analyzer_attrs(analyzer)
        epoch = validate_epoch(epoch)
        if not force and not self.has_epoch(analyzer, epoch):
            raise EpochNotFoundError(
                f"cannot delete epoch {epoch} of analyzer {analyzer!r}: it is not in "
                f"{self._location.display}"
            )
        self._commit.delete(analyzer, epoch)

    def cleanup(
        self, *, stale_after: float = STALE_AFTER, older_than: float | None = None
    ) -> list[str]:
        """Remove what killed writers left behind; return the removed keys.

        Parameters
        ----------
        stale_after
            Only remove leftovers unchanged for this many seconds (local stores), so a writer
            still running is not disturbed; the default, one hour
            (:data:`epochstore.location.STALE_AFTER`), is far longer than any epoch takes to
            write. Pass ``0`` when you know no writer runs. On object stores every uncommitted
            epoch is removed whatever its age: call it only when no writer runs.
        older_than
            Deprecated name of ``stale_after``.
        """
        if older_than is not None:
            warnings.warn(
                "ArtifactStore.cleanup(older_than=...) is deprecated; use stale_after=...",
                DeprecationWarning,
                stacklevel=2,
            )
            stale_after = older_than
        if not self._check_format():
            return []
        removed: list[str] = []
        root_names = self._list()
        # Every analyzer-named child, even one whose group metadata a killed writer never
        # finished, and the root itself (zarr's own partial metadata files).
        removed += self._commit.cleanup("", root_names, stale_after)
        for name in root_names:
            if NAME_PATTERN.fullmatch(name):
                removed += self._commit.cleanup(name, self._list(name), stale_after)
        local = self._location.local_root
        if local is not None and self._location.prefix:
            # zarr writes an implicit group at the run root too; remove its partial writes.
            # zarr names them with Path.with_suffix: "zarr.json" -> "zarr.<hex>.partial".
            now = time.time()
            stem = METADATA_KEY.rsplit(".", 1)[0]
            for path in local.parent.glob(f"{stem}.*{PARTIAL_SUFFIX}"):
                if now - path.stat().st_mtime >= stale_after:
                    path.unlink(missing_ok=True)
                    removed.append(path.name)
        return removed

    def loader(self) -> Any:
        """Return a read-only :class:`~epochstore.ArtifactLoader` on the same location."""
        from epochstore.store.reader import ArtifactLoader

        if self._location.local_root is not None:
            return ArtifactLoader(self._location.local_root, path="")
        return ArtifactLoader(self._location.store, path=self._location.prefix)


def _as_storable_array(analyzer: str, name: str, value: ArrayLike) -> np.ndarray:
    where = f"field {name!r} of analyzer {analyzer!r}"
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # a torch tensor
        value = value.detach().cpu().numpy()
    try:
        array = np.asarray(value)
    except (ValueError, TypeError) as exc:
        raise UnsupportedArrayError(f"{where} is not array-like: {exc}") from None
    if array.dtype.kind not in _ALLOWED_KINDS:
        raise UnsupportedArrayError(
            f"{where} has dtype {array.dtype}, which epochstore does not store; use a numeric "
            "or bool dtype (encode strings or objects as numbers, or put them in attrs)"
        )
    nbytes = array.dtype.itemsize * math.prod(array.shape)
    if nbytes > MAX_FIELD_BYTES:
        raise UnsupportedArrayError(
            f"{where} is {nbytes / 1024**3:.1f} GiB for one epoch, over the "
            f"{MAX_FIELD_BYTES / 1024**3:.0f} GiB limit; split it into several fields"
        )
    if not array.dtype.isnative:
        array = array.astype(array.dtype.newbyteorder("="))
    # np.ascontiguousarray would turn a 0-d array into 1-d.
    return np.require(array, requirements="C")
