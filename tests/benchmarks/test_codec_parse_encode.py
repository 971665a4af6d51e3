"""codec_parse.py --encode --cpu: the new agents' one-pass line, run with its smallest settings.

Never timing: what is pinned is the lines printed (the A/B of ``fast.known_agents_from_proto``
compares the "proto agents+json" line of two trees).
"""

from tests.benchmarks.test_bench_smoke import run_script


def test_codec_parse_encode_adds_the_agents_and_json_line() -> None:
    """--encode adds "proto agents+json" after the two conversion lines; --cpu keeps the lines."""
    out = run_script("codec_parse.py", "--agents", "20", "--calls", "2", "--encode", "--cpu")
    assert [line.split(":")[0] for line in out.splitlines()] == [
        "json agents 20",
        "proto agents 20",
        "proto agents+json agents 20",
        "proto case alone",
    ]
