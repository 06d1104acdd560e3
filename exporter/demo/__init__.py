"""The embedded default: simulated peers on loopback and the demo built on them."""
