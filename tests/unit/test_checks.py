from __future__ import annotations

import numpy as np
import pytest

from charter.checks import check_int, check_number
from charter.errors import InvalidArgument


def test_check_int() -> None:
    assert check_int(np.int64(3), "n", minimum=1) == 3
    for bad in (True, 2.0, "3", 0):
        with pytest.raises(InvalidArgument) as e:
            check_int(bad, "n", minimum=1)
        assert e.value.field == "n" and e.value.remedy


def test_check_number() -> None:
    assert check_number(np.float32(0.5), "x", minimum=0, maximum=1) == 0.5
    for bad in (False, "1", float("nan"), float("inf"), 1.5, -0.1):
        with pytest.raises(InvalidArgument) as e:
            check_number(bad, "x", minimum=0, maximum=1)
        assert e.value.field == "x"
    assert check_number(-5, "x") == -5.0
