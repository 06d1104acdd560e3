"""Development tools that run from a checkout, not part of the shipped package."""
