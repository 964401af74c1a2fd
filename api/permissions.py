"""Who may call what: the one permission table of the API.

Every route that needs a key takes the ``Caller`` dependency, which looks the route up
here; a route missing from the table is refused to everyone (fail closed), and the
permission tests enumerate the application's routes, so a route added without a line
here fails the suite until it states who may call it.

- case_worker: opens cases, records facts, reads cases and reports.
- auditor: reads everything, replays and verifies; never writes.
- admin: administers (checkpoints, keys, organisations, erasure of a person of their
  organisation); reads counts but no person's data.
"""

from __future__ import annotations

CASE_WORKER, AUDITOR, ADMIN = "case_worker", "auditor", "admin"
READERS = frozenset({CASE_WORKER, AUDITOR})

# The probes, and the API's documentation (api.md: no key needed for these).
PUBLIC: frozenset[tuple[str, str]] = frozenset(
    {
        ("GET", "/health"),
        ("HEAD", "/health"),
        ("GET", "/ready"),
        ("HEAD", "/ready"),
        ("GET", "/openapi.json"),
        ("GET", "/docs"),
        ("GET", "/docs/oauth2-redirect"),
        ("GET", "/redoc"),
    }
)

PERMISSIONS: dict[tuple[str, str], frozenset[str]] = {
    ("POST", "/cases"): frozenset({CASE_WORKER}),
    ("GET", "/cases"): READERS,
    ("GET", "/cases/{case_id}"): READERS,
    ("POST", "/cases/{case_id}/events"): frozenset({CASE_WORKER}),
    ("GET", "/cases/{case_id}/history"): READERS,
    ("GET", "/cases/{case_id}/export"): READERS,
    ("POST", "/cases/{case_id}/shares"): frozenset({CASE_WORKER}),
    ("DELETE", "/cases/{case_id}/shares/{org}"): frozenset({CASE_WORKER}),
    ("POST", "/cases/{case_id}/erase"): frozenset({ADMIN}),
    ("POST", "/negotiations"): frozenset({CASE_WORKER}),
    ("GET", "/negotiations"): READERS,
    ("GET", "/negotiations/{negotiation_id}"): READERS,
    ("POST", "/negotiations/{negotiation_id}/lists"): frozenset({CASE_WORKER}),
    ("POST", "/negotiations/{negotiation_id}/matches"): frozenset({CASE_WORKER}),
    ("POST", "/negotiations/{negotiation_id}/agreements"): frozenset({CASE_WORKER}),
    ("POST", "/exchanges"): frozenset({CASE_WORKER}),
    ("GET", "/exchanges"): READERS,
    ("GET", "/exchanges/{exchange_id}"): READERS,
    ("GET", "/reports/summary"): frozenset({CASE_WORKER, AUDITOR, ADMIN}),
    ("GET", "/audit/verify"): frozenset({AUDITOR, ADMIN}),
    ("POST", "/audit/verify"): frozenset({AUDITOR, ADMIN}),
    ("GET", "/audit/checkpoints"): frozenset({AUDITOR, ADMIN}),
    ("POST", "/audit/checkpoints"): frozenset({ADMIN}),
    ("GET", "/audit/key"): frozenset({AUDITOR, ADMIN}),
    ("GET", "/audit/keys"): frozenset({AUDITOR, ADMIN}),
    ("GET", "/audit/access"): frozenset({AUDITOR}),
    # Prometheus metrics (no personal data; also keyless on CASEBOOK_METRICS_ADDRESS).
    ("GET", "/metrics"): frozenset({ADMIN}),
}
