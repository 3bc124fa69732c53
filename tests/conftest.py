import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The shared benchmarks: $ANCHORALIGN_DATA, else ../shared/data beside the repository."""
    path = Path(os.environ.get("ANCHORALIGN_DATA", REPO.parent / "shared" / "data"))
    if not path.is_dir():
        pytest.skip(f"benchmark data not found at {path}")
    return path
