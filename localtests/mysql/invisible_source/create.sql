-- The original has an INVISIBLE column (as invisible_column makes one): SELECT * does not show it, but the copy,
-- the binlog and the writers (which name every column) carry it.
CREATE TABLE t (
  id INT NOT NULL PRIMARY KEY,
  hidden INT NULL INVISIBLE,
  name VARCHAR(40) NOT NULL
) ENGINE=InnoDB;
INSERT INTO t (id, hidden, name) SELECT seq, IF(seq % 9 = 0, NULL, seq * 2), CONCAT('n', seq) FROM seq_1_to_2000;
