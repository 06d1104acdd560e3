"""The two names every test peer and test config share: where they listen and
who the monitor says it is. Apart, so the config builder and the real peers
need not import each other."""

LOOPBACK = "127.0.0.1"
MONITOR_AE = "KRONOBERG_MON"
