"""The DICOM side of a probe, in layers named after the standard's parts.

`failure` (classified failures, the deadline) → `codec` (PDUs and DIMSE
messages as bytes, no I/O) → `transport` (resolve, connect, TLS) →
`association` (one association on one socket); beside them `dimse_status`
(PS3.7 status classes) and `testobject` (the synthetic objects `store` sends).
"""
