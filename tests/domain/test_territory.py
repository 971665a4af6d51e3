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


def test_a_long_region_below_the_deepest_areas_still_reaches_the_top() -> None:
    """A 198-character region 98 sub-codes below an area 64 steps deep is within GB.

    Requests take regions of up to 200 characters (the default --max-id-chars), and the areas
    check lets an area lie 64 steps deep, so the walk must take 98 + 64 steps: with 128 it
    stopped short and GB's agents did not cover the region (it failed safe, but wrongly).
    """
    areas = {f"A{i}": f"A{i + 1}" for i in range(62)} | {"A62": "GB-ENG"}
    region = "A0" + "-X" * 98
    assert len(region) == 198
    assert "GB" in region_areas(region, areas).codes
