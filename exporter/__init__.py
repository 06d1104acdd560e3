"""dicom-exporter: Prometheus probes for DICOM transfer between hospitals."""

# First: until this has run, a SIGHUP (`systemctl reload` right after start) ends
# the process; see the module.
import exporter.sighup  # noqa: F401  # isort: skip

try:  # written at build time from git tags (packaging/buildhook.py)
    from exporter._version import __revision__, __version__
except ImportError:  # a source tree that was never built or installed
    __version__ = "0.0.0+unknown"
    __revision__ = ""

__all__ = ["__revision__", "__version__"]
