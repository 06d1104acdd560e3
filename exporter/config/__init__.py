"""The exporter's configuration: YAML read strictly into frozen objects.

`strict` reads YAML and words every problem as `FILE: path.to.field: problem`;
`targets` holds modules and targets (the Config), `topology` the sites and
DICOM routes, `target_tls` a target's DICOM TLS block, `webconfig` the
exporter-toolkit web config of the HTTP server. Whatever holds a Config may
trust it: nothing downstream re-validates.
"""

from exporter.config.strict import ConfigError
from exporter.config.targets import Config, Module, Target, load, notes, parse

__all__ = ["Config", "ConfigError", "Module", "Target", "load", "notes", "parse"]
