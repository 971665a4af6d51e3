"""docs/api.md's reference is generated from the proto comments and kept in step with them."""

import functools
import importlib.util
import re
import subprocess
import sys
from types import ModuleType

from caseroute.testing import REPO_ROOT
from caseroute.v1 import admin_pb2, routing_pb2

SCRIPT = REPO_ROOT / ".ci" / "gen_api_docs.py"


@functools.cache
def _generator() -> ModuleType:
    """.ci/gen_api_docs.py, imported as a module (registered: its dataclass needs that)."""
    spec = importlib.util.spec_from_file_location("gen_api_docs", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_the_committed_reference_matches_the_protos() -> None:
    """`gen_api_docs.py --check` passes on the committed docs/api.md."""
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True, check=False
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "docs/api.md matches protos/\n", "")


def test_the_reference_has_a_section_for_every_service_method_message_and_enum() -> None:
    """Each service, method, message (nested too, map entries not) and enum has a heading."""
    headings = set(re.findall(r"(?m)^#{4,5} (\S+)$", _generator().reference()))
    expected: set[str] = set()
    for file in (routing_pb2.DESCRIPTOR, admin_pb2.DESCRIPTOR):
        for service in file.services_by_name.values():
            expected.add(service.name)
            expected.update(f"{service.name}.{m.name}" for m in service.methods)
        expected.update(file.enum_types_by_name)
        for message in file.message_types_by_name.values():
            expected.add(message.name)
            expected.update(
                f"{message.name}.{n.name}"
                for n in message.nested_types
                if not n.GetOptions().map_entry
            )
    assert headings == expected


def test_a_field_row_carries_its_type_and_comment() -> None:
    """A field is one row: name, linked or scalar type, and its comment on one line."""
    reference = _generator().reference()
    assert (
        "| `explanation_level` | [ExplanationLevel](#explanationlevel) | How much explanation to "
        "return. Unset means SUMMARY (FULL lists every agent's verdict and can exceed a "
        "client's default 4 MB receive limit for large rosters or batches; ask for it). |"
    ) in reference
    assert "| `now` | `google.protobuf.Timestamp` | The decision instant actually used. |" in (
        reference
    )


def test_rewriting_replaces_only_the_text_between_the_markers() -> None:
    """Hand-written text before and after the markers is kept; the old reference is gone."""
    generator = _generator()
    document = f"intro\n{generator.BEGIN}\nold\n{generator.END}\noutro\n"
    assert generator.rewrite(document, "new\n") == (
        f"intro\n{generator.BEGIN}\n\nnew\n\n{generator.END}\noutro\n"
    )
