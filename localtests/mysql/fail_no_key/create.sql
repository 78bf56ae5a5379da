-- No PRIMARY KEY, and the only UNIQUE key is on a nullable column: no key
-- osc can copy and apply by.
CREATE TABLE t (
  a INT NULL,
  name VARCHAR(40) NOT NULL,
  UNIQUE KEY uk_a (a)
) ENGINE=InnoDB;
INSERT INTO t (a, name) SELECT IF(seq % 10 = 0, NULL, seq), CONCAT('name-', seq) FROM seq_1_to_500;
