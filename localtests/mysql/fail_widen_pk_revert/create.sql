-- A widened key migrates, but not with a revert window: the old table would
-- be kept current by a key the new table lacks.
CREATE TABLE t (
  id INT NOT NULL PRIMARY KEY,
  tenant INT NOT NULL
) ENGINE=InnoDB;
INSERT INTO t (id, tenant) SELECT seq, seq % 7 FROM seq_1_to_500;
