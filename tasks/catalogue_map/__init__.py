"""The catalogue map: every file as a 2-D point, near files near each other (projection), kept
beside the snapshot (store) and up to date after each refresh (update)."""
