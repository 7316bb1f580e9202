-- silo's items: one row per key; the value's body lives in R2 under items/<key>.
CREATE TABLE IF NOT EXISTS items (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL,
  updated_at TEXT NOT NULL
);
