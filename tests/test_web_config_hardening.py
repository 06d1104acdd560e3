"""--web.config.file read as strictly as the main config: any file content is
either a WebConfig or a ConfigError of short one-line problems naming the file
and the field, never another exception, a hang or the exporter's memory.

Start-up turns a ConfigError into the problems and exit 1; anything else out
of webconfig.load() is a traceback there (and, on a reload, at best a vague
"cannot load" line instead of the field at fault). The fuzzing
reuses the main config's vocabulary (tests/test_config_fuzz.py): YAML trees of
any shape, raw YAML with aliases, alias bombs and numbers beyond Python's
4,300-digit limit, here in every position of a web config."""

from __future__ import annotations

import copy
import json
import re
import time
import tracemalloc
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exporter.config import ConfigError, webconfig
from tests.test_config_fuzz import _Emitter, any_text, dump, scalars

# A self-signed P-256 certificate and key, for these tests only: made once with
# openssl so that the fast tests start no external program.
CERT = """-----BEGIN CERTIFICATE-----
MIIBoDCCAUWgAwIBAgIUbmUKssFVrsyOfdCnIVcjpp3hiIEwCgYIKoZIzj0EAwIw
JDEiMCAGA1UEAwwZd2ViLWNvbmZpZy1mdXp6IHRlc3Qgb25seTAgFw0yNjExMjcx
MTQ4NTFaGA8yMTI2MTEwMzExNDg1MVowJDEiMCAGA1UEAwwZd2ViLWNvbmZpZy1m
dXp6IHRlc3Qgb25seTBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABH8zBHSqp96M
s87GkyJkPGaVMhL8B+cD5kGod7z0TRCJLzpjtmNwQlae6W3y9M92khqnXRz7ZW5d
8yC/ChPelCajUzBRMB0GA1UdDgQWBBSj0lPtkMsTxCFCqmmmLpuptgaj8TAfBgNV
HSMEGDAWgBSj0lPtkMsTxCFCqmmmLpuptgaj8TAPBgNVHRMBAf8EBTADAQH/MAoG
CCqGSM49BAMCA0kAMEYCIQCA/Tgnb9/DYowHfLB63IWBN+f+cWl7qsmLoXunS2Pq
FgIhAInZwyIT0I5xFsl5FghWEMaiaKUHUI+5NUtmjwSQB3gv
-----END CERTIFICATE-----
"""
KEY = """-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgac5sws8jy2WgdNAz
3ThLw7kiaT6DRKHxvlD4JK+mzYyhRANCAAR/MwR0qqfejLPOxpMiZDxmlTIS/Afn
A+ZBqHe89E0QiS86Y7ZjcEJWnult8vTPdpIap10c+2VuXfMgvwoT3pQm
-----END PRIVATE KEY-----
"""
# bcrypt at the lowest cost: load() hashes a dummy as dear as the dearest user.
HASH = "$2y$04$ojhhYoVFJN7T5ppj4S2WhOc/d1quQs/gHO.hPgcc4LpNw7uhc3gVC"
# The longest a problem may be after "FILE: ": the reader cuts paths and values short.
MAX_PROBLEM = 640
BILLION_LAUGHS = "document: more than 2,000,000 values (each alias counting the values it repeats)"


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with the test certificate and key, as tls.crt and tls.key."""
    path = tmp_path_factory.mktemp("web")
    (path / "tls.crt").write_text(CERT)
    (path / "tls.key").write_text(KEY)
    return path


@pytest.fixture(scope="module")
def usual(folder: Path) -> Path:
    """A small web config with a problem in rate_limit.interval, to compare costs with."""
    path = folder / "usual.yml"
    path.write_text("rate_limit: {interval: [1s], burst: 1}\n")
    return path


def problems_of(path: Path, text: str | bytes) -> list[str]:
    """The problems load() finds in `text`, with "FILE: " taken off each."""
    if isinstance(text, str):
        path.write_text(text, encoding="utf-8")
    else:
        path.write_bytes(text)
    with pytest.raises(ConfigError) as caught:
        webconfig.load(path)
    prefix = f"{path}: "
    assert all(line.startswith(prefix) for line in caught.value.problems), caught.value.problems
    return [line.removeprefix(prefix) for line in caught.value.problems]


def bomb(levels: int) -> str:
    """An inline alias tree of 1 + 10 * (the level below) values, nested
    `levels` deep: 5 levels are just under the reader's bound, 6 over it."""
    text = "&a0 [x, x, x, x, x, x, x, x, x, x]"
    for level in range(1, levels + 1):
        text = f"&a{level} [{text}, " + ", ".join([f"*a{level - 1}"] * 9) + "]"
    return text


def cost(path: Path) -> tuple[float, int]:
    """Seconds and peak traced bytes of one load(), whatever it finds."""
    tracemalloc.start()
    start = time.perf_counter()
    try:
        webconfig.load(path)
    except ConfigError:
        pass
    finally:
        seconds, peak = time.perf_counter() - start, tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return seconds, peak


def assert_cheap(path: Path, baseline: Path) -> None:
    """load(path) is fast and needs no more memory than load(baseline) does:
    the reader's 8 MiB read buffer is in both, so only the difference counts."""
    _, usual = cost(baseline)
    seconds, peak = cost(path)
    assert seconds < 0.5 and peak - usual < 2**20, (seconds, peak - usual)


# -- the reproduced defects, each one exact line ---------------------------------------
TLS = "tls_server_config: {cert_file: tls.crt, key_file: tls.key, "
CLIENT_AUTH_TYPES = ("NoClientCert, RequestClientCert, RequireAnyClientCert, "
                     "VerifyClientCertIfGiven, RequireAndVerifyClientCert")


@pytest.mark.parametrize(("text", "problem"), [
    (TLS + "client_auth_type: [x]}\n",
     f"tls_server_config.client_auth_type: must be one of {CLIENT_AUTH_TYPES}, got ['x']"),
    (TLS + "min_version: [TLS12]}\n",
     "tls_server_config.min_version: must be one of TLS10, TLS11, TLS12, TLS13, got ['TLS12']"),
    (TLS + "max_version: {TLS13: 1}}\n",
     "tls_server_config.max_version: must be one of TLS10, TLS11, TLS12, TLS13, "
     "got {'TLS13': 1}"),
], ids=["client_auth_type", "min_version", "max_version"])
def test_a_list_or_mapping_where_a_tls_name_belongs_is_one_clean_problem(
        folder: Path, text: str, problem: str) -> None:
    assert problems_of(folder / "web.yml", text) == [problem]


def test_a_burst_beyond_pythons_digit_limit_is_a_clean_problem_of_its_line(
        folder: Path) -> None:
    text = "rate_limit: {interval: 1s, burst: " + "9" * 5000 + "}\n"
    assert problems_of(folder / "web.yml", text) == [
        f"line 1: invalid YAML: cannot read '{'9' * 27}...{'9' * 28}': too many digits"]


def test_a_burst_within_pythons_digit_limit_is_refused_by_its_field(folder: Path) -> None:
    text = "rate_limit: {interval: 1s, burst: " + "9" * 4000 + "}\n"
    assert problems_of(folder / "web.yml", text) == [
        "rate_limit.burst: must be a whole number, 0 to 1000000, "
        f"got int {'9' * 13}...{'9' * 14}"]


def test_an_alias_bomb_in_the_rate_limit_interval_is_refused_fast_in_bounded_memory(
        folder: Path, usual: Path) -> None:
    path = folder / "web.yml"
    assert problems_of(path, f"rate_limit: {{interval: {bomb(8)}, burst: 1}}\n") == [
        BILLION_LAUGHS]
    assert_cheap(path, usual)


def test_an_alias_tree_just_under_the_readers_bound_is_never_expanded_into_a_message(
        folder: Path, usual: Path) -> None:
    """A million values by reference pass the reader; str() of them took
    seconds and megabytes, and the problem must still be one short line."""
    path = folder / "web.yml"
    assert problems_of(path, f"rate_limit: {{interval: {bomb(5)}, burst: 1}}\n") == [
        "rate_limit.interval: must be a duration like 100ms, got list "
        + "[" + ", ".join(["[[...], [...], [...], [...], ...]"] * 4) + ", ...]"]
    assert_cheap(path, usual)


def test_a_yaml_syntax_error_is_one_line_naming_its_line(folder: Path) -> None:
    assert problems_of(folder / "web.yml", "rate_limit: {interval: [1s\n") == [
        "line 2: invalid YAML: did not find expected ',' or ']'"]


# -- what else took load() down or the server's answers --------------------------------
def test_a_file_name_longer_than_the_system_allows_is_a_problem_of_its_field(
        folder: Path) -> None:
    name = "a" * 300
    text = f"tls_server_config: {{cert_file: tls.crt, key_file: {name}}}\n"
    assert problems_of(folder / "web.yml", text) == [
        f"tls_server_config.key_file: {folder / name}: File name too long"]


def test_a_path_longer_than_any_file_path_is_refused_unread(folder: Path) -> None:
    text = "tls_server_config: {cert_file: tls.crt, key_file: " + "a/" * 3000 + "k}\n"
    assert problems_of(folder / "web.yml", text) == [
        f"tls_server_config.key_file: '{'a/' * 13}a...{'/a' * 13}/k' is longer than any "
        "file path (4096)"]


def test_a_header_value_outside_printable_ascii_is_refused_as_answers_are_latin1(
        folder: Path) -> None:
    text = 'http_server_config: {headers: {Content-Security-Policy: "default-src \u2192"}}\n'
    assert problems_of(folder / "web.yml", text) == [
        "http_server_config.headers.Content-Security-Policy: must be one line of printable "
        "ASCII, got str 'default-src \u2192'"]


def test_inline_pem_outside_ascii_is_a_problem_of_its_field_not_a_type_error(
        folder: Path) -> None:
    text = ('tls_server_config: {cert_file: tls.crt, key_file: tls.key, '
            'client_ca: "-----BEGIN CERTIFICATE-----\u2192"}\n')
    assert problems_of(folder / "web.yml", text) == [
        "tls_server_config.client_ca: must be PEM text"]


def test_a_bcrypt_hash_with_a_trailing_newline_is_refused_not_silently_unusable(
        folder: Path) -> None:
    text = f"basic_auth_users:\n  prometheus: |\n    {HASH}\n"
    assert problems_of(folder / "web.yml", text) == [
        "basic_auth_users.prometheus: must be a bcrypt hash ($2y$...), e.g. from htpasswd -nBC 10"]


def test_a_user_name_with_a_colon_is_refused_as_it_could_never_log_in(folder: Path) -> None:
    assert problems_of(folder / "web.yml", f"basic_auth_users: {{'a:b': '{HASH}'}}\n") == [
        "basic_auth_users.a:b: a user name cannot contain ':'"]


def test_a_bcrypt_cost_that_would_take_hours_is_refused_not_computed(folder: Path) -> None:
    """The dummy hash for unknown users is made at the dearest cost: at cost 31
    start-up would take days. The hash is never computed, so this is quick."""
    costly = "$2y$31$" + HASH[7:]
    started = time.monotonic()
    assert problems_of(folder / "web.yml", f"basic_auth_users: {{prometheus: '{costly}'}}\n") == [
        "basic_auth_users.prometheus: bcrypt cost 31 makes every login take seconds or more; "
        "at most 14, e.g. from htpasswd -nBC 10"]
    assert time.monotonic() - started < 5


def test_an_unreadable_file_is_a_problem_naming_the_file(folder: Path) -> None:
    missing = folder / "missing.yml"
    with pytest.raises(ConfigError) as caught:
        webconfig.load(missing)
    assert caught.value.problems == [
        f"{missing}: file: cannot read: [Errno 2] No such file or directory: '{missing}'"]
    assert problems_of(folder / "web.yml", b"\xff") == [
        "file: cannot read: 'utf-8' codec can't decode byte 0xff in position 0: "
        "invalid start byte"]
    with pytest.raises(ConfigError) as caught:
        webconfig.load(folder)
    assert caught.value.problems == [f"{folder}: file: is not a regular file"]


def test_a_file_over_the_main_configs_size_bound_is_refused(folder: Path) -> None:
    assert problems_of(folder / "web.yml", b"#" * (8 * 2**20 + 1)) == [
        "file: larger than 8 MiB"]


# -- fuzzing ---------------------------------------------------------------------------
# The web config as raw YAML flow text, in document order; None: absent unless
# fuzzed. Two skeletons, the certificate given by file or inline, since each
# clashes with the other ("give cert or cert_file, not both").
BY_FILE: dict = {
    "tls_server_config": {
        "cert_file": "tls.crt", "key_file": "tls.key", "client_ca_file": "tls.crt",
        "cert": None, "key": None, "client_ca": None,
        "client_auth_type": "RequireAndVerifyClientCert",
        "client_allowed_sans": "[localhost]", "min_version": "TLS12", "max_version": "TLS13",
        "cipher_suites": "[TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256]",
        "prefer_server_cipher_suites": "true", "curve_preferences": "[CurveP256]",
    },
    "http_server_config": {
        "http2": "false",
        "headers": {"Content-Security-Policy": "\"default-src 'self'\"",
                    "X-Frame-Options": "deny", "X-Content-Type-Options": "nosniff",
                    "X-XSS-Protection": "\"1; mode=block\"",
                    "Strict-Transport-Security": "max-age=31536000"},
    },
    "basic_auth_users": {"prometheus": HASH},
    "rate_limit": {"interval": "100ms", "burst": "20"},
}
INLINE: dict = {**BY_FILE, "tls_server_config": {
    **BY_FILE["tls_server_config"], "cert_file": None, "key_file": None,
    "client_ca_file": None, "cert": json.dumps(CERT), "key": json.dumps(KEY),
    "client_ca": json.dumps(CERT)}}
SKELETONS = {"by file": BY_FILE, "inline": INLINE}
EXTRA = "?"  # a position for one more (unknown or duplicate) key in a mapping


def positions(tree: dict, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every field and section of the skeleton, and a new key in each mapping."""
    out = [(*prefix, EXTRA)]
    for key, value in tree.items():
        out.append((*prefix, key))
        if isinstance(value, dict):
            out += positions(value, (*prefix, key))
    return out


POSITIONS = [(), *positions(BY_FILE)]
FIELDS = [where for where in POSITIONS if where and where[-1] != EXTRA]
WEB_KEYS = sorted({key for path in POSITIONS for key in path if key != EXTRA})
WEB_RAW = st.sampled_from([
    "TLS10", "TLS12", "TLS13", "NoClientCert", "RequireAnyClientCert", "RequestClientCert",
    "[CurveP256, X25519]", "[CurveP521]", "[TLS_AES_128_GCM_SHA256, TLS_RSA_WITH_AES_128_CBC_SHA]",
    "tls.crt", "tls.key", "web.yml", ".", "/dev/null", "a" * 300, json.dumps(CERT),
    json.dumps(KEY), json.dumps("-----BEGIN \x00\u2192"), "deny", "SAMEORIGIN", "nosniff",
    HASH, "100ms", "0", "0s", "1000000", "1000001", "[localhost, '']", '"a\\r\\nb"',
    '"caf\\u00e9"', '"\\t"', "prometheus", "true", "false",
])
# Text that passes the first PEM check ("-----BEGIN" in it) and fails later ones.
pem_like = st.one_of(st.builds("{}-----BEGIN{}".format, any_text, any_text),
                     st.sampled_from([CERT, KEY, CERT.replace("M", "\u00e9", 1)]))
web_values = st.recursive(
    st.one_of(scalars, pem_like, WEB_RAW.map(lambda text: yaml.safe_load(f"[{text}]")[0])),
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.one_of(st.text(max_size=12),
                                                      st.sampled_from(WEB_KEYS)),
                                            inner, max_size=4)),
    max_leaves=20,
)
# Where to fuzz: up to three positions, each given a value (True) or left out.
fuzzed_positions = st.dictionaries(st.sampled_from(POSITIONS[1:]), st.booleans(),
                                   min_size=1, max_size=3)


def check(path: Path) -> None:
    """The contract: a WebConfig, or a ConfigError of short one-line problems,
    each naming the file and a field; any other exception fails the test."""
    try:
        web = webconfig.load(path)
    except ConfigError as exc:
        assert exc.problems, "an error must say what is wrong"
        for line in exc.problems:
            problem = line.removeprefix(f"{path}: ")
            assert problem != line and line.isprintable(), line[:300]
            assert re.fullmatch(r"\S.*: .+", problem), line[:300]
            assert len(problem) <= MAX_PROBLEM, line[:300]
        return
    assert isinstance(web, webconfig.WebConfig)
    # Every answer's head is written as Latin-1: a header must not break them all.
    assert re.fullmatch(r"[\t\r\n\x20-\x7e]*", web.header_lines)
    assert web.header_lines.count("\r\n") == len(web.headers)


class _WebEmitter(_Emitter):
    """The main config's raw-YAML emitter, with the web config's names and values."""

    def key(self, depth: int) -> str:
        if self.draw(st.booleans()):
            return str(self.draw(st.sampled_from(WEB_KEYS)))
        return super().key(depth)

    def value(self, depth: int) -> str:
        if self.draw(st.integers(0, 3)) == 0:
            return self.anchor() + str(self.draw(WEB_RAW))
        return super().value(depth)


class _AliasTree(_WebEmitter):
    """Emits the same million-value alias tree wherever it is asked for a value."""

    def __init__(self) -> None:
        super().__init__(None)  # type: ignore[arg-type]  # draws nothing

    def value(self, depth: int) -> str:
        return bomb(5)


def render(tree: dict, fuzzed: dict[tuple[str, ...], bool] | None = None,
           emit: _Emitter | None = None, prefix: tuple[str, ...] = ()) -> str:
    """The skeleton as flow YAML, each `fuzzed` position emitted (True) or left
    out (False), written in document order so that an alias may refer to an
    anchor in an earlier position."""
    fuzzed = fuzzed or {}
    pairs = []
    for key, value in tree.items():
        path = (*prefix, key)
        if path in fuzzed and emit is not None:
            if fuzzed[path]:
                pairs.append(f"{key}: {emit.value(len(path))}")
        elif isinstance(value, dict):
            pairs.append(f"{key}: {render(value, fuzzed, emit, path)}")
        elif value is not None:
            pairs.append(f"{key}: {value}")
    if fuzzed.get((*prefix, EXTRA)) and emit is not None:
        pairs.append(f"{emit.key(len(prefix) + 1)}: {emit.value(len(prefix) + 1)}")
    return "{" + ", ".join(pairs) + "}"


def placed(plain: dict, where: tuple[str, ...], value: object) -> dict:
    """A copy of a skeleton's data with `value` at `where`."""
    document = copy.deepcopy(plain)
    node = document
    for key in where[:-1]:
        node = node[key]
    node[where[-1]] = value
    return document


VALID = {name: render(tree) for name, tree in SKELETONS.items()}
PLAIN = {name: yaml.safe_load(text) for name, text in VALID.items()}


@pytest.mark.parametrize("skeleton", SKELETONS)
def test_the_fuzzing_skeletons_are_valid_web_configs_with_everything(
        folder: Path, skeleton: str) -> None:
    """So that the fuzz, which changes a few positions, reaches every check."""
    path = folder / "valid.yml"
    path.write_text(VALID[skeleton])
    web = webconfig.load(path)
    assert web.ssl_context is not None and web.rate_limit is not None
    assert set(web.users) == {"prometheus"} and len(web.headers) == 5
    assert web.allowed_sans == {"localhost"}


@settings(max_examples=70, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(sorted(PLAIN)), st.sampled_from(POSITIONS), web_values, st.data())
def test_any_yaml_tree_in_any_position_is_a_web_config_or_clean_problems(
        folder: Path, skeleton: str, where: tuple[str, ...], value: object,
        data: st.DataObject) -> None:
    document: object = value
    if where:
        if where[-1] == EXTRA:
            key = data.draw(st.one_of(st.text(max_size=12), st.sampled_from(WEB_KEYS)))
            where = (*where[:-1], key)
        document = placed(PLAIN[skeleton], where, value)
    path = folder / "tree.yml"
    path.write_text(dump(document, allow_unicode=True), encoding="utf-8")
    check(path)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(sorted(SKELETONS)), st.booleans(), fuzzed_positions, st.data())
def test_raw_yaml_with_aliases_bombs_and_huge_numbers_in_any_position_is_clean(
        folder: Path, skeleton: str, whole: bool, fuzzed: dict[tuple[str, ...], bool],
        data: st.DataObject) -> None:
    emit = _WebEmitter(data)
    text = emit.value(0) if whole else render(SKELETONS[skeleton], fuzzed, emit)
    path = folder / "raw.yml"
    path.write_text(text, encoding="utf-8")
    check(path)


# Strings for each TLS field alone: the fuzz seldom makes one field the only
# thing wrong, and only then does ssl get the values (it raised TypeError).
HOSTILE_STRINGS = ["", "\x00", "a\r\nb", "\u2192", "x" * 5000, "a" * 300, "/dev/zero",
                   "../tls.crt", "TLS13\n", "-----BEGIN \u2192", "-----BEGIN CERTIFICATE-----\x00",
                   CERT.replace("M", "\u00e9", 1), KEY]


def test_a_hostile_string_in_any_one_tls_field_is_a_web_config_or_clean_problems(
        folder: Path) -> None:
    path = folder / "hostile.yml"
    for plain in PLAIN.values():
        for where in FIELDS:
            if where[0] != "tls_server_config":
                continue
            for text in HOSTILE_STRINGS:
                path.write_text(dump(placed(plain, where, text), allow_unicode=True),
                                encoding="utf-8")
                check(path)


@pytest.mark.parametrize("where", FIELDS, ids=".".join)
def test_an_alias_tree_in_any_position_is_never_expanded(folder: Path,
                                                         where: tuple[str, ...]) -> None:
    """A million values by reference, just under the reader's bound, in each field."""
    baseline = folder / "valid.yml"
    baseline.write_text(VALID["by file"])
    path = folder / "aliased.yml"
    path.write_text(render(BY_FILE, {where: True}, _AliasTree()), encoding="utf-8")
    assert_cheap(path, baseline)
    check(path)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_are_a_web_config_or_clean_problems(folder: Path,
                                                            content: bytes) -> None:
    path = folder / "bytes.yml"
    path.write_bytes(content)
    check(path)
