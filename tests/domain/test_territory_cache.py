"""The cache of a region's areas per ruleset and region answers as the walk does, bounded."""

from __future__ import annotations

from caseroute.domain import territory
from caseroute.domain.territory import areas_of, region_areas


def test_a_region_seen_again_under_the_same_areas_is_the_cached_answer() -> None:
    """The second call for one ruleset's areas and region returns the entry worked out first."""
    areas = {"E54000027": "Y56", "Y56": "GB-ENG"}
    first = areas_of("E54000027", areas)
    assert first.codes == region_areas("E54000027", areas).codes
    assert {"E54000027", "Y56", "GB-ENG", "GB"} <= first.codes
    assert areas_of("E54000027", areas) is first


def test_other_areas_with_the_same_region_are_worked_out_again() -> None:
    """An entry is never read for another ruleset's areas, even one built at the same address."""
    region = "E54000099"
    assert "Y99" in areas_of(region, {region: "Y99"}).codes
    # The first mapping is gone: a new one may reuse its id(), and must not get its answer.
    assert "Y99" not in areas_of(region, {region: "Y98"}).codes
    assert "Y98" in areas_of(region, {region: "Y98"}).codes


def test_the_cache_stays_bounded_and_right_past_its_size() -> None:
    """More regions than the cache holds: emptied rather than grown; answers stay right."""
    areas = {f"R{n}": "GB-SCT" for n in range(5000)}
    territory._REGION_AREAS.clear()
    for n in range(5000):
        assert "GB-SCT" in areas_of(f"R{n}", areas).codes
        assert len(territory._REGION_AREAS) <= 4096
    assert len(territory._REGION_AREAS) == 5000 - 4096
    assert "GB" in areas_of("R1", areas).codes
