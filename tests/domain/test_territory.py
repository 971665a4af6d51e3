"""Which areas a region lies within: worked out once per ruleset and region, kept sorted."""

from __future__ import annotations

from caseroute.domain.territory import areas_of, region_areas

AREAS = {"E54000027": "Y56", "Y56": "GB-ENG"}


def test_a_region_s_areas_are_kept_sorted() -> None:
    """`ordered` is the codes in sorted order: what `case.region_areas` shows and rules read."""
    expected = ("E54000027", "GB", "GB-ENG", "Y56")
    assert expected == region_areas("E54000027", AREAS).ordered


def test_the_sorted_areas_are_worked_out_once_per_ruleset_and_region() -> None:
    """A second look-up for the same areas and region gives the same object, sort included."""
    first = areas_of("GB-KEN", AREAS)
    assert first.ordered is areas_of("GB-KEN", AREAS).ordered
    expected = ("GB", "GB-ENG", "GB-KEN")
    assert expected == first.ordered


def test_the_order_is_not_part_of_equality() -> None:
    """Two RegionAreas of the same region and steps are equal and hash alike (Needs key caches)."""
    one, two = region_areas("GB-EDH", {}), region_areas("GB-EDH", {})
    assert one == two
    assert hash(one) == hash(two)
