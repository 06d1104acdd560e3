"""The four kinds of probe: the one table of their names, config keys and phases.

The config reader checks modules against it, the probers package maps each
name to its function, the CLI and /probe order phases by it, and the alert
and dashboard builders take their `prober` selectors from it, so a new kind
of probe is added here once.
"""

from __future__ import annotations

from dataclasses import dataclass

# Every phase a probe can time, in the order it happens. `tls` is timed only
# for targets with a tls block, `query` and `commit` only for store modules
# that verify (VERIFY_PHASES); each kind lists the others it always reports.
PHASES = ("connect", "tls", "associate", "dimse", "query", "commit", "release")
# A store module's `verify`: what tells us the peer kept the test object.
# none: the C-STORE status alone; find: a C-FIND for it; commit: Storage Commitment.
VERIFY_MODES = ("none", "find", "commit")
VERIFY_PHASES = {"none": (), "find": ("query",), "commit": ("commit",)}

_COMMON = frozenset({"prober", "timeout"})
_DICOM = _COMMON | {"calling_ae_title", "as_partners"}
_PROPOSES = _DICOM | {"sop_classes", "transfer_syntaxes"}


@dataclass(frozen=True)
class ProberKind:
    name: str
    keys: frozenset[str]  # what a module of this kind may set
    phases: tuple[str, ...]
    speaks_dicom: bool  # associates; `tcp` only connects
    answers_reachability: bool  # success means the peer is there at all
    checks_receiving: bool  # success means the peer takes what we send


KINDS: dict[str, ProberKind] = {
    kind.name: kind
    for kind in (
        ProberKind("tcp", _COMMON | {"tcp_safe"}, ("connect",), False, True, False),
        ProberKind("echo", _DICOM, ("connect", "associate", "dimse", "release"), True, True, False),
        ProberKind("negotiate", _PROPOSES, ("connect", "associate", "release"), True, False, True),
        ProberKind("store", _PROPOSES | {"uid_root", "min_interval", "test_object_size",
                                         "verify"},
                   ("connect", "associate", "dimse", "release"), True, False, True),
    )
}
NAMES = tuple(KINDS)
MODULE_KEYS = frozenset().union(*(kind.keys for kind in KINDS.values()))


def selector(predicate: str) -> str:
    """A PromQL regex over the `prober` label for the kinds with this property."""
    names = [kind.name for kind in KINDS.values() if getattr(kind, predicate)]
    return "|".join(names)
