"""The guideline as code: pure domain model (stdlib + eventsourcing only)."""
