"""The HTTP side: endpoints, the on-call status page, the served runbooks."""
