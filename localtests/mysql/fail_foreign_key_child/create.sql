-- A child table references t: after a rename it would reference the old table.
CREATE TABLE t (
  id INT NOT NULL PRIMARY KEY,
  name VARCHAR(40) NOT NULL
) ENGINE=InnoDB;
INSERT INTO t (id, name) SELECT seq, CONCAT('name-', seq) FROM seq_1_to_500;
CREATE TABLE child (
  id INT NOT NULL PRIMARY KEY,
  t_id INT NOT NULL,
  CONSTRAINT fk_t FOREIGN KEY (t_id) REFERENCES t (id)
) ENGINE=InnoDB;
INSERT INTO child SELECT seq, seq FROM seq_1_to_10;
