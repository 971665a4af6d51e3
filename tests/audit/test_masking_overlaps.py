"""A value two configured paths cover is digested once: the record's digest is the value's own."""

import pytest

from caseroute.audit.masking import DEFAULT_MASKED_PATHS, Masker, mask_case

KEY = bytes(range(32))


@pytest.mark.parametrize(
    "paths",
    [
        ("case.attributes.mrn", "case.attributes.mrn"),
        ("case.attributes.*", "case.attributes.mrn"),
        ("case.attributes.mrn", "case.region", "case.attributes.*"),
    ],
)
def test_a_value_two_paths_cover_is_digested_once(paths: tuple[str, ...]) -> None:
    """The stored digest is the value's own (as in the explanation), not a digest of a digest."""
    masker = Masker(KEY, paths)
    masked = masker.mask({"case": {"attributes": {"mrn": "M1"}, "region": "GB-KEN"}})
    assert masked["case"]["attributes"]["mrn"] == masker.digest("M1")


def test_defaults_plus_every_attribute_stores_each_default_as_the_defaults_alone_do() -> None:
    """`defaults,case.attributes.*`: a patient's digest matches records masked by the defaults."""
    case = {"case_id": "C1", "attributes": {"mrn": "M1", "payer": "acme"}}
    both = mask_case(case, Masker(KEY, (*DEFAULT_MASKED_PATHS, "case.attributes.*")))
    alone = mask_case(case, Masker(KEY, DEFAULT_MASKED_PATHS))
    assert isinstance(both, dict)
    assert isinstance(alone, dict)
    assert both["attributes"] == {
        "mrn": alone["attributes"]["mrn"],
        "payer": Masker(KEY).digest("acme"),
    }
