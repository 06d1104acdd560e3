"""The monitoring pack: alert rules, dashboards and their settings, generated from the configs.

Part of the package so the installed program can generate a site's pack
without a checkout; the repository's committed files are their output for
the example config (`python -m tools.generate`).
"""
