"""Every decoder, fed arbitrary bytes, returns a value or raises its own documented error."""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz_targets import FUZZ, targets

TARGETS = targets()


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_arbitrary_bytes_give_a_value_or_the_decoders_error(name):
    target = TARGETS[name]

    @FUZZ
    @given(data=st.binary(max_size=512))
    def feed(data):
        try:
            target.run(data)
        except target.errors:
            pass

    feed()
