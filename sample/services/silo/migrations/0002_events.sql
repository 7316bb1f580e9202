-- Events that constellation's queue consumer hands back to silo after reading silo-events.
CREATE TABLE IF NOT EXISTS events (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  kind TEXT NOT NULL,
  key TEXT NOT NULL,
  consumed_by TEXT NOT NULL,
  created_at TEXT NOT NULL
);
