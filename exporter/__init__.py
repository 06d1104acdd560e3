"""dicom-exporter: Prometheus probes for DICOM transfer between hospitals."""

__version__ = "0.1.0"
