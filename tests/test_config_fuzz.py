"""Property-based: any YAML document, and any mutation of the examples, is
either a valid config or a clean list of field-naming errors, never a crash."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exporter import config
from exporter.config import ConfigError

EXAMPLES = sorted(p for p in (Path(__file__).parent.parent / "examples").glob("*.yml")
                  if p.name != "prometheus.yml")
DOCUMENTS = [yaml.safe_load(p.read_text(encoding="utf-8")) for p in EXAMPLES]
PROBLEM = re.compile(r"^fuzz\.yml: \S.*: .+$")

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**40), 2**40), st.floats(allow_nan=True),
    st.text(max_size=30), st.sampled_from(["5s", "echo", "tcp", "1h", "Z97117", "", "0s",
                                           "-1", "vaxjo", "partner", "CTImageStorage"]),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.text(max_size=12), inner, max_size=4)),
    max_leaves=20,
)


def check(text: str) -> None:
    try:
        parsed = config.parse(text, "fuzz.yml")
    except ConfigError as exc:
        assert exc.problems, "an error must say what is wrong"
        for line in exc.problems:
            assert PROBLEM.match(line), line
        return
    assert parsed.targets is not None


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values)
def test_any_yaml_document_is_a_config_or_clean_errors(document: object) -> None:
    check(yaml.safe_dump(document))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(range(len(DOCUMENTS))), st.data())
def test_mutated_examples_are_a_config_or_clean_errors(index: int, data: st.DataObject) -> None:
    document = copy.deepcopy(DOCUMENTS[index])
    for _ in range(data.draw(st.integers(1, 4))):
        node = document
        path = []
        while isinstance(node, (dict, list)) and node and data.draw(st.booleans()):
            key = data.draw(st.sampled_from(list(node) if isinstance(node, dict)
                                            else list(range(len(node)))))
            path.append((node, key))
            node = node[key]
        if not path:
            continue
        parent, key = path[-1]
        action = data.draw(st.sampled_from(["replace", "delete", "duplicate"]))
        if action == "replace":
            parent[key] = data.draw(values)
        elif action == "delete":
            del parent[key]
        elif isinstance(parent, list):
            parent.append(copy.deepcopy(parent[key]))
        else:
            parent[f"{key}_copy"] = copy.deepcopy(parent[key])
    check(yaml.safe_dump(document, allow_unicode=True))


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_arbitrary_text_is_never_a_crash(text: str) -> None:
    try:
        config.parse(text, "fuzz.yml")
    except ConfigError as exc:
        assert all(line.startswith("fuzz.yml: ") for line in exc.problems)
