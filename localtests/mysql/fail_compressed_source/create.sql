-- A table with COMPRESSED columns (as compressed_column makes one): MariaDB writes them to the binlog in a form
-- osc's binlog reader cannot decode, so osc refuses the table before it starts.
CREATE TABLE t (
  id INT NOT NULL PRIMARY KEY,
  note TEXT COMPRESSED NULL,
  code VARCHAR(30) COMPRESSED NULL
) ENGINE=InnoDB;
INSERT INTO t (id, note, code) SELECT seq, REPEAT('n', seq % 50), CONCAT('c', seq) FROM seq_1_to_500;
