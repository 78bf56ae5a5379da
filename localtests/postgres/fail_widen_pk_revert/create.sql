-- A widened key migrates, but not with a revert window: the old table would
-- be kept current by a key the new table lacks.
CREATE TABLE t (
  id int NOT NULL PRIMARY KEY,
  tenant int NOT NULL
);
ALTER TABLE t REPLICA IDENTITY FULL;
INSERT INTO t (id, tenant) SELECT g, g % 7 FROM generate_series(1, 500) g;
