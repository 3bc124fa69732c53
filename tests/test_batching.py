"""Inference batches by length (``batching.length_batches``): every document once, ascending length, no batch
past the size or the padding bound, and no batch ended early without cause."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from anchoralign.batching import length_batches


def _padded(lengths: list[int], batch: list[int]) -> int:
    return len(batch) * max(lengths[i] for i in batch)


@given(st.lists(st.integers(1, 300), max_size=80), st.integers(1, 40), st.sampled_from([0.0, 0.25, 0.5, 2.0]))
def test_length_batches_cover_everything_in_order_within_both_bounds(lengths, batch_size, slack) -> None:
    batches = length_batches(lengths, batch_size, slack)
    flat = [i for b in batches for i in b]
    assert sorted(flat) == list(range(len(lengths)))
    assert [lengths[i] for i in flat] == sorted(lengths)
    for b in batches:
        assert 1 <= len(b) <= batch_size
        assert _padded(lengths, b) <= (1 + slack) * sum(lengths[i] for i in b)
    for a, b in zip(batches, batches[1:], strict=False):
        if len(a) < batch_size:  # ended early: the next item would have broken the padding bound
            assert _padded(lengths, a + b[:1]) > (1 + slack) * sum(lengths[i] for i in a + b[:1])


def test_the_long_tail_is_split_and_equal_lengths_fill_whole_batches() -> None:
    lengths = [10] * 6 + [40, 200]
    assert length_batches(lengths, 4, 0.5) == [[0, 1, 2, 3], [4, 5], [6], [7]]
    assert length_batches(lengths, 4, 100.0) == [[0, 1, 2, 3], [4, 5, 6, 7]]  # no bound: sorted chunks
    with pytest.raises(ValueError, match="batch_size"):
        length_batches(lengths, 0)
