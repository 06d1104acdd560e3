"""The alert rules and Alertmanager config generated for the example config, and the
hand-written tables they are tested against (scenarios, promtool cases)."""
