"""The ledger: hash-chained, append-only storage of every event, and its verification."""
