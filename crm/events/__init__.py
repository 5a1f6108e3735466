"""The append-only event log: one row per change worth telling, written in the change's transaction."""
