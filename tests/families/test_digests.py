"""Today's families compute what the code before the families refactor computed, bit for bit.

The fixture holds digests computed at commit e6936b5 (conv and conv_vae: after issue 18,
whose channels-last weights changed their rounding, by about 1e-8 of the scores; conv
again after its training steps were computed in two slices, ``hourglass.sliced_gradients``;
both after their last layer became a matrix product and a fold,
``FewChannelConvTranspose2d``, and again when that layer summed by phases at inference,
which left the trained weights and codes as they were; each moved the scores by about
1e-8; and once more when that layer wrote a contiguous output, on which the sigmoid is
vectorised, about 1e-9), one record per CPU numerics: each PyTorch CPU kernel set on
each CPU it was recorded on (see ``family_digests.py`` and ``platform_records.py``).
On recorded numerics every digest must match; on another CPU's, the first scores must
agree to float rounding.
"""

from __future__ import annotations

import numpy as np
import pytest
from family_digests import FIXTURE, cases, summary

from platform_records import read_record

RECORDED, EXACT = read_record(FIXTURE)


@pytest.mark.parametrize("name", sorted(cases()))
def test_every_family_computes_what_it_did_before_the_refactor(name: str) -> None:
    fit, X = cases()[name]

    now = summary(fit(), X)

    before = RECORDED[name]
    if not EXACT:  # another CPU's kernels: values to rounding
        np.testing.assert_allclose(now["first_errors"], before["first_errors"], rtol=1e-4)
        return
    assert now == before
