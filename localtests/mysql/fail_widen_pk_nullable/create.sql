-- The new primary key's other column may be NULL in the original: no key of
-- the altered table identifies rows by the original's values.
CREATE TABLE t (
  id INT NOT NULL PRIMARY KEY,
  tenant INT NULL
) ENGINE=InnoDB;
INSERT INTO t (id, tenant) SELECT seq, seq % 7 FROM seq_1_to_500;
