"""Listing a directory the same way on a local disk and in a bucket (run discovery's one call)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from epochstore import StorageUnreachableError
from epochstore.location import open_filesystem, reaching


def test_entries_list_alike_on_disk_and_in_a_bucket(tmp_path: Path, s3: Any) -> None:
    url = s3.url("root")
    local, local_root = open_filesystem(tmp_path)
    remote, remote_root = open_filesystem(url, s3.storage_options)
    for fs, root in ((local, local_root), (remote, remote_root)):
        fs.makedirs(fs.join(root, "run", "artifacts"))
        fs.write_bytes(fs.join(root, "run", "variant.json"), b"{}")
        fs.write_bytes(fs.join(root, "run", "artifacts", "zarr.json"), b"{}")
    assert local.list_entries(local.join(local_root, "run")) == {
        "artifacts": True, "variant.json": False}
    assert remote.list_entries(remote.join(remote_root, "run")) == {
        "artifacts": True, "variant.json": False}
    assert local.list_entries(local.join(local_root, "nowhere")) == {}
    assert remote.list_entries(remote.join(remote_root, "nowhere")) == {}


def test_reaching_names_the_url_and_passes_other_errors(tmp_path: Path) -> None:
    url = "s3://bucket/runs"
    unreachable = pytest.raises(StorageUnreachableError, match=r"cannot reach s3://bucket/runs \(")
    with unreachable, reaching(url):
        raise TypeError("unexpected keyword argument 'endpoint'")
    with pytest.raises(FileNotFoundError), reaching(url):  # missing is the caller's to say
        raise FileNotFoundError(url)
    with pytest.raises(TypeError), reaching(tmp_path):  # local paths: untouched
        raise TypeError("local")
