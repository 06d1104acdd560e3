"""Property-based: any YAML document, and any mutation of the examples, is
either a valid config or a clean list of field-naming errors, never a crash.

The strategies are broad on purpose (issue 13): YAML trees of any shape,
numbers of any size, any Unicode, control characters, and anchors and aliases
in any position (keys, label values, whole sections), including expansions
large enough to take the exporter's memory if anything expanded them."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exporter import config
from exporter.config import Config, ConfigError
from exporter.config.strict import Checker, read_yaml
from exporter.config.targets import RESERVED_LABELS

EXAMPLES = sorted(p for p in (Path(__file__).parent.parent / "examples").glob("*.yml")
                  if p.name != "prometheus.yml")
DOCUMENTS = [yaml.safe_load(p.read_text(encoding="utf-8")) for p in EXAMPLES]
PROBLEM = re.compile(r"fuzz\.yml: \S.*: .+")
# The longest line a problem may be: the reader cuts field paths and values short.
MAX_LINE = 700


def dump(document: object, **options: object) -> str:
    """Safe dumping through libyaml: a tenth of the pure-Python emitter's cost,
    so the fuzzing time goes to the reader under test, not to writing its input."""
    return yaml.dump(document, Dumper=yaml.CSafeDumper, **options)  # type: ignore[call-overload]

any_text = st.text(st.characters(exclude_categories=("Cs",)), max_size=40)
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(-(10**300), 10**300),
    st.floats(allow_nan=True), any_text,
    st.sampled_from(["5s", "echo", "tcp", "1h", "Z97117", "", "0s", "-1", "vaxjo",
                     "partner", "CTImageStorage", "host", "le", "z97117.from.skane",
                     "99999999999h", "1d", "2w", "1y", "5s\n", "skane\n", "\x00"]),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.text(max_size=12), inner, max_size=4)),
    max_leaves=20,
)


def check(text: str) -> None:
    """The contract: a valid Config, or a ConfigError of short one-line problems
    naming the file; any other exception fails the test."""
    try:
        parsed = config.parse(text, "fuzz.yml")
    except ConfigError as exc:
        assert exc.problems, "an error must say what is wrong"
        for line in exc.problems:
            assert PROBLEM.fullmatch(line), line
            assert len(line) <= MAX_LINE, line[:200]
        return
    assert isinstance(parsed, Config)
    for target in parsed.targets.values():
        assert not RESERVED_LABELS & set(target.labels) - {"partner", "direction"}
        assert all(value.isprintable() for value in target.labels.values())


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values)
def test_any_yaml_document_is_a_config_or_clean_errors(document: object) -> None:
    check(dump(document))


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
    check(dump(document, allow_unicode=True))


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_arbitrary_text_is_never_a_crash(text: str) -> None:
    try:
        config.parse(text, "fuzz.yml")
    except ConfigError as exc:
        assert all(line.startswith("fuzz.yml: ") for line in exc.problems)


# Raw YAML scalars, written as text so that they reach the reader unchanged:
# numbers of any size (beyond Python's 4,300-digit int conversion limit too),
# durations, dates, any Unicode quoted or plain, control-character escapes.
raw_scalars = st.one_of(
    st.integers().map(str),
    st.integers(1, 6000).map(lambda n: "9" * n),
    st.tuples(st.integers(1, 500), st.sampled_from(["ms", "s", "m", "h", "d", "w", "y"])
              ).map(lambda pair: "1" * pair[0] + pair[1]),
    st.sampled_from(["5s", "1d", "1w", "1y", "292y", "293y", "0", "-5s", "1e999", ".nan",
                     ".inf", "2026-13-45", "2026-02-30 25:61:61", "0x1F", "0o777", "~",
                     "true", "'le'", "host", "port", "z97117.from.skane", "!!binary AAAA",
                     "!!set {a, b}", "\"\\x00\\n\\t\\u2028\"", "\"\\ud7ff\"",
                     "\"a\\nb\"", "<<"]),
    any_text.map(lambda t: '"' + t.replace("\\", "\\\\").replace('"', '\\"') + '"'),
)


class _Emitter:
    """Writes a random flow-style YAML tree, with anchors on some values and
    aliases to earlier anchors in any position, including mapping keys."""

    def __init__(self, data: st.DataObject) -> None:
        self.data = data
        self.anchors = 0

    def draw(self, strategy: st.SearchStrategy) -> object:
        return self.data.draw(strategy)

    def anchor(self) -> str:
        if self.draw(st.integers(0, 3)) == 0:
            self.anchors += 1
            return f"&a{self.anchors} "
        return ""

    def value(self, depth: int) -> str:
        kinds = ["scalar", "alias"] if depth > 4 else ["scalar", "alias", "list", "map", "bomb"]
        kind = self.draw(st.sampled_from(kinds))
        if kind == "alias" and self.anchors:
            return f"*a{self.draw(st.integers(1, self.anchors))}"
        if kind == "list":
            items = [self.value(depth + 1) for _ in range(self.draw(st.integers(0, 4)))]
            return f"{self.anchor()}[{', '.join(items)}]"
        if kind == "map":
            return self.anchor() + self.mapping(depth)
        if kind == "bomb":  # each level ten times the one before
            self.anchors += 1
            first = self.anchors
            text = f"&a{first} [x, x, x, x, x, x, x, x, x, x]"
            for _ in range(self.draw(st.integers(1, 8))):
                self.anchors += 1
                text = f"&a{self.anchors} [{text}, " + ", ".join(
                    [f"*a{self.anchors - 1}"] * 9) + "]"
            return text
        return self.anchor() + str(self.draw(raw_scalars))

    def key(self, depth: int) -> str:
        if self.anchors and self.draw(st.integers(0, 5)) == 0:
            return f"*a{self.draw(st.integers(1, self.anchors))} "
        return str(self.draw(st.one_of(raw_scalars, st.sampled_from(
            ["modules", "targets", "labels", "host", "port", "ae_title", "prober", "timeout",
             "sop_classes", "site", "role", "region", "routes", "sites"]))))

    def mapping(self, depth: int) -> str:
        pairs = [f"{self.key(depth)}: {self.value(depth + 1)}"
                 for _ in range(self.draw(st.integers(0, 4)))]
        return "{" + ", ".join(pairs) + "}"


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_raw_yaml_with_aliases_and_huge_numbers_is_a_config_or_clean_errors(
    data: st.DataObject,
) -> None:
    emit = _Emitter(data)
    where = data.draw(st.sampled_from(["anywhere", "label", "module", "section"]))
    if where == "anywhere":
        text = emit.mapping(0)
    else:
        # A valid skeleton with one position replaced: a label value, a module
        # field or a whole section, so the fuzz reaches the validators.
        label = emit.value(1) if where == "label" else "vaxjo"
        timeout = emit.value(2) if where == "module" else "5s"
        routes = emit.value(1) if where == "section" else "{}"
        text = (
            f"modules: {{echo: {{prober: echo, timeout: {timeout}}}}}\n"
            "targets:\n"
            "  skane: {host: pacs.skane.invalid, port: 104, ae_title: SKANE, "
            f"modules: [echo], labels: {{site: vaxjo, role: partner, region: {label}}}}}\n"
            f"routes: {routes}\n"
        )
    check(text)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_in_a_file_are_never_a_crash(tmp_path_factory: object,
                                                      content: bytes) -> None:
    path = tmp_path_factory.mktemp("fuzz") / "fuzz.yml"  # type: ignore[attr-defined]
    path.write_bytes(content)
    try:
        config.load(path)
    except ConfigError as exc:
        assert all(line.startswith(f"{path}: ") and "\n" not in line
                   for line in exc.problems)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values, st.booleans())
def test_the_reader_reads_what_pyyaml_reads(document: object, flow: bool) -> None:
    """The event-based reader keeps PyYAML SafeLoader's meaning of every value
    (YAML 1.1: yes/no, 0o17, 1_000, dates) for documents within its bounds."""
    text = dump({"x": document, "y": [document]}, allow_unicode=True,
                default_flow_style=flow)
    ours = read_yaml(text, Checker("fuzz.yml"))
    assert dump(ours) == dump(yaml.safe_load(text))


def test_merge_keys_read_as_pyyaml_reads_them() -> None:
    text = ("base: &base {site: vaxjo, role: partner}\n"
            "more: &more {region: skane, role: relay}\n"
            "t: {<<: [*base, *more], role: link_computer, x: 1}\n"
            "u: {<<: *more, site: ljungby}\n")
    assert read_yaml(text, Checker("m.yml")) == yaml.safe_load(text)
