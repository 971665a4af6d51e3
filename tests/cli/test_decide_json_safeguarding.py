"""`caseroute decide` on a JSON file the strict reader refuses: a flagged case gets its notice.

Every JSON entry caseroute reads goes through ``cli.options.read_json`` (``--case``,
``--request``, with or without ``--server``). A repeated key was refused there before the case
parser, the only place the safeguarding notice was added, ever ran: ``"flags":
["safeguarding"], "flags": []`` was refused without saying the case was a safeguarding concern.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from caseroute.cli import main
from caseroute.domain.safeguarding_notice import SAFEGUARDING_NOTICE, SAFEGUARDING_UNREAD_NOTICE
from caseroute.testing import REFERENCE_RULESET, REPO_ROOT, SAFEGUARDING_RULE, ruleset_with_rules

CASES = REPO_ROOT / "examples" / "cases"
REQUESTS = REPO_ROOT / "examples" / "requests"
ROSTER = str(REPO_ROOT / "examples" / "roster.json")
NOTICE = f"\n  - case.flags: {SAFEGUARDING_NOTICE}\n"
DUPLICATE = "duplicate key in "


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    """`caseroute decide ARGV` (python engine): exit code and stderr."""
    code = main(["decide", "--engine", "python", *argv])
    return code, capsys.readouterr().err


def _dry_run(capsys: pytest.CaptureFixture[str], case: Path) -> tuple[int, str]:
    """`caseroute decide` of ``case`` against the reference ruleset and example roster."""
    return _cli(
        capsys, "--ruleset", str(REFERENCE_RULESET), "--case", str(case), "--roster", ROSTER
    )


def _case_file(tmp_path: Path, tail: str) -> Path:
    """examples/cases/safeguarding.json without its flags, then ``tail`` closing the object."""
    data = json.loads((CASES / "safeguarding.json").read_text())
    del data["flags"]
    path = tmp_path / "case.json"
    path.write_text(json.dumps(data)[:-1] + tail)
    return path


@pytest.mark.parametrize(
    "tail",
    [
        ', "flags": ["safeguarding"], "flags": []}',
        ', "flags": [], "flags": ["safeguarding"]}',
        ', "flags": ["safeguarding"], "case_id": "again"}',
    ],
)
@pytest.mark.parametrize("server", [False, True])
def test_a_case_file_with_a_repeated_key_gets_the_notice_first(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, tail: str, server: bool
) -> None:
    """--case, as a dry run or for a server (refused before any call), notice then the key."""
    where = ["--server", "127.0.0.1:9"] if server else ["--ruleset", str(REFERENCE_RULESET)]
    case = _case_file(tmp_path, tail)
    code, err = _cli(capsys, *where, "--case", str(case), "--roster", ROSTER)
    assert code == 2
    assert err.index(NOTICE) < err.index(DUPLICATE)


def test_a_case_file_with_the_ruleset_s_own_flag_gets_the_notice(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A dry run reads the flag the local ruleset names."""
    ruleset = tmp_path / "ruleset.yaml"
    ruleset.write_text(_sg_concern_ruleset())
    case = _case_file(tmp_path, ', "flags": ["sg_concern"], "flags": []}')
    code, err = _cli(capsys, "--ruleset", str(ruleset), "--case", str(case), "--roster", ROSTER)
    assert (code, NOTICE in err) == (2, True)


def _sg_concern_ruleset() -> str:
    """A ruleset whose safeguarding flag is ``sg_concern``."""
    rest = "  - id: rest\n    when: true\n    then: {route: {queue: by_intent}}\n"
    return (
        ruleset_with_rules(rest)
        .replace("flag: safeguarding", "flag: sg_concern")
        .replace(
            SAFEGUARDING_RULE, SAFEGUARDING_RULE.replace("'safeguarding' in", "'sg_concern' in")
        )
    )


def _request_file(tmp_path: Path, case_tail: str) -> Path:
    """examples/requests/decide-safeguarding.json with its case's flags replaced by the tail."""
    data = json.loads((REQUESTS / "decide-safeguarding.json").read_text())
    del data["case"]["flags"]
    case = json.dumps(data.pop("case"))[:-1] + case_tail
    path = tmp_path / "request.json"
    path.write_text(json.dumps(data)[:-1] + f', "case": {case}}}')
    return path


@pytest.mark.parametrize("server", [False, True])
def test_a_request_file_with_a_repeated_key_gets_the_notice_first(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, server: bool
) -> None:
    """--request, as a dry run or for a server: the notice at case.flags, then the key."""
    where = ["--server", "127.0.0.1:9"] if server else ["--ruleset", str(REFERENCE_RULESET)]
    request = _request_file(tmp_path, ', "flags": ["safeguarding"], "flags": []}')
    code, err = _cli(capsys, *where, "--request", str(request))
    assert code == 2
    assert err.index(NOTICE) < err.index(DUPLICATE)


def test_a_request_file_with_the_ruleset_s_own_flag_gets_the_notice(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A dry run of a request reads the flag of the ruleset the request would use."""
    ruleset = tmp_path / "ruleset.yaml"
    ruleset.write_text(_sg_concern_ruleset())
    request = _request_file(tmp_path, ', "flags": ["sg_concern"], "flags": []}')
    code, err = _cli(capsys, "--ruleset", str(ruleset), "--request", str(request))
    assert (code, NOTICE in err) == (2, True)


def test_an_unflagged_case_file_with_a_repeated_key_gets_no_notice(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """The control: the refusal alone, no notice."""
    case = _case_file(tmp_path, ', "flags": ["vip"], "flags": []}')
    code, err = _dry_run(capsys, case)
    assert (code, SAFEGUARDING_NOTICE in err, DUPLICATE in err) == (2, False, True)


def test_a_request_file_beside_a_broken_ruleset_still_gets_the_conventional_notice(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """The ruleset's flag is best effort: one that will not load leaves `safeguarding`."""
    ruleset = tmp_path / "ruleset.yaml"
    ruleset.write_text("ruleset: [not, a, name]\n")
    request = _request_file(tmp_path, ', "flags": ["safeguarding"], "flags": []}')
    code, err = _cli(capsys, "--ruleset", str(ruleset), "--request", str(request))
    assert (code, NOTICE in err) == (2, True)


UNREAD = f"\n  - case: {SAFEGUARDING_UNREAD_NOTICE}\n"


@pytest.mark.parametrize(
    "tail",
    [
        ', "flags": ["safeguarding"],}',  # a trailing comma
        ", 'flags': ['safeguarding']}",  # single quotes
        ', "flags": ["Safe\u00adguarding"] "x": 1}',  # a soft hyphen, then bad syntax
        ', "flags": ["safeguarding"], "deep": ' + "[" * 100_000 + "]" * 100_000 + "}",
    ],
)
def test_a_flagged_case_file_that_is_no_json_gets_the_notice_first(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, tail: str
) -> None:
    """No field can be read, so the flag is found in the text: the notice, then the error."""
    case = _case_file(tmp_path, tail)
    code, err = _dry_run(capsys, case)
    assert code == 2
    assert UNREAD in err
    assert err.index(UNREAD) < err.index(str(case))


def test_a_case_file_that_is_no_json_and_names_no_flag_gets_no_notice(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Bad syntax in an unflagged case: only the error (no notice raised for nothing)."""
    case = _case_file(tmp_path, ', "flags": ["vip"],}')
    code, err = _dry_run(capsys, case)
    assert code == 2
    assert "is not valid JSON" in err
    assert SAFEGUARDING_UNREAD_NOTICE not in err


def test_a_request_file_that_is_no_json_gets_the_notice_of_the_local_ruleset(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """--request: the flag is looked for in the text, notice at ``request``."""
    text = (REQUESTS / "decide-clinical-tx.json").read_text()
    path = tmp_path / "request.json"
    path.write_text(text.replace('"flags": [', '"flags": ["safeguarding",', 1).rstrip()[:-1] + ",}")
    code, err = _cli(capsys, "--ruleset", str(REFERENCE_RULESET), "--request", str(path))
    assert code == 2
    assert f"\n  - request: {SAFEGUARDING_UNREAD_NOTICE}\n" in err


def test_a_case_file_starting_with_a_byte_order_mark_is_read(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A UTF-8 BOM (Windows editors write one) is no content: the case is decided."""
    case = tmp_path / "case.json"
    case.write_bytes(b"\xef\xbb\xbf" + (CASES / "clinical-tx.json").read_bytes())
    code = main(
        [
            "decide",
            "--engine",
            "python",
            "--ruleset",
            str(REFERENCE_RULESET),
            "--case",
            str(case),
            "--roster",
            ROSTER,
            "--now",
            "2026-11-21T10:00:00Z",
        ]
    )
    out, err = capsys.readouterr()
    assert (code, err) == (0, "")
    assert "ASSIGN" in out


def _flagged_bytes(encode: str) -> bytes:
    """examples/cases/safeguarding.json encoded so, or its flag escaped in a broken file."""
    text = (CASES / "safeguarding.json").read_text()
    if encode == "escaped":  # a writer that escapes letters, then a trailing comma
        return (text.replace("safeguarding", "safeguard\\u0069ng").rstrip()[:-1] + ",}").encode()
    if encode == "latin-1":  # an editor's legacy encoding: one non-UTF-8 byte in a note
        return (text.rstrip()[:-1] + ', "note": "caf\u00e9"}').encode("latin-1")
    return text.encode(encode)


@pytest.mark.parametrize("encode", ["utf-16", "utf-16-le", "utf-16-be", "latin-1", "escaped"])
def test_a_flagged_case_file_in_another_encoding_or_escaped_gets_the_notice_first(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, encode: str
) -> None:
    """UTF-16 (PowerShell's `>`), Latin-1, JSON escapes: still refused, the notice first."""
    case = tmp_path / "case.json"
    case.write_bytes(_flagged_bytes(encode))
    code, err = _dry_run(capsys, case)
    assert code == 2
    assert UNREAD in err
    assert err.index(UNREAD) < err.index(str(case))
