"""Every text a person can see has its Vietnamese: the catalogs match the code."""

import pytest

from scripts.catalogs import DOMAINS, problems


@pytest.mark.parametrize("domain", DOMAINS, ids=lambda d: d.name)
def test_every_text_has_its_vietnamese(domain):
    assert problems(domain) == []
