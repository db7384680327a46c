import os

# Triton kernels run on the CPU in the tests (the interpreter must be chosen before triton is imported).
os.environ.setdefault("TRITON_INTERPRET", "1")

import pytest  # noqa: E402
import torch  # noqa: E402


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield


@pytest.fixture
def data_trees():
    """``{data set name: builder(root) -> the path to pass as --data-root}`` (tests/trees.py)."""
    from .trees import DATA_TREES

    return DATA_TREES
