"""dicom-exporter: Prometheus probes for DICOM transfer between hospitals."""

# First: until this has run, a SIGHUP (`systemctl reload` right after start) ends
# the process; see the module.
import exporter.sighup  # noqa: F401  # isort: skip

try:  # written at build time from git tags (packaging/buildhook.py)
    from exporter import _version
except ImportError:  # a source tree that was never built or installed
    _version = None  # type: ignore[assignment]

__version__: str = getattr(_version, "__version__", "0.0.0+unknown")
__revision__: str = getattr(_version, "__revision__", "")
# Where and when the build ran, for `--version` (an older _version.py lacks them).
__branch__: str = getattr(_version, "__branch__", "")
__build_user__: str = getattr(_version, "__build_user__", "")
__build_date__: str = getattr(_version, "__build_date__", "")

__all__ = ["__branch__", "__build_date__", "__build_user__", "__revision__", "__version__"]
