"""Fixtures of the checkpoint tests: real files in temporary directories, no mocks."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import torch

from epochstore.checkpoints.fileformat import read_header

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator


@pytest.fixture(autouse=True, scope="module")
def _outside_any_checkout(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Run each module in a scratch cwd, so provenance never inspects the project's checkout."""
    previous = Path.cwd()
    os.chdir(tmp_path_factory.mktemp("cwd"))
    try:
        yield
    finally:
        os.chdir(previous)


class TiedModel(torch.nn.Module):
    """A tiny language-model shape: embedding and unembedding share one weight."""

    def __init__(self, vocab: int = 11, width: int = 6) -> None:
        super().__init__()
        self.embed = torch.nn.Embedding(vocab, width)
        self.hidden = torch.nn.Linear(width, width)
        self.unembed = torch.nn.Linear(width, vocab, bias=False)
        self.unembed.weight = self.embed.weight
        self.register_buffer("steps", torch.zeros((), dtype=torch.int64))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.unembed(torch.relu(self.hidden(self.embed(tokens))))


@pytest.fixture
def make_model() -> Callable[[int], torch.nn.Module]:
    """Return a factory of small MLPs with dropout (so resuming needs the RNG state)."""

    def make(seed: int = 0) -> torch.nn.Module:
        torch.manual_seed(seed)
        return torch.nn.Sequential(
            torch.nn.Linear(8, 32),
            torch.nn.ReLU(),
            torch.nn.Dropout(0.2),
            torch.nn.Linear(32, 3),
        )

    return make


@pytest.fixture
def make_tied() -> Callable[[int], TiedModel]:
    """Return a factory of models with tied embedding and unembedding weights."""

    def make(seed: int = 0) -> TiedModel:
        torch.manual_seed(seed)
        return TiedModel()

    return make


@pytest.fixture
def ckpt_dir(tmp_path: Path) -> str:
    """Return a checkpoint directory inside a run directory."""
    return str(tmp_path / "run" / "checkpoints")


def tensor_ranges(path: str) -> dict[str, tuple[int, int]]:
    """Return tensor name -> absolute byte range in a safetensors file."""
    with open(path, "rb") as handle:  # noqa: PTH123
        header = read_header(handle, os.path.getsize(path), path)  # noqa: PTH202
    return {
        name: (header.data_start + entry.begin, header.data_start + entry.end)
        for name, entry in header.tensors.items()
    }


def patch_bytes(path: str, start: int, data: bytes) -> None:
    """Overwrite bytes of a file in place (as a disk fault or a careless edit would)."""
    with open(path, "r+b") as handle:  # noqa: PTH123
        handle.seek(start)
        handle.write(data)


@pytest.fixture
def ranges() -> Callable[[str], dict[str, tuple[int, int]]]:
    """Return :func:`tensor_ranges`."""
    return tensor_ranges


@pytest.fixture
def patch() -> Callable[[str, int, bytes], None]:
    """Return :func:`patch_bytes`."""
    return patch_bytes
