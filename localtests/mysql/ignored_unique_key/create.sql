-- An IGNORED unique key that sorts before the usable one: the copy reads the table by its key with FORCE INDEX,
-- which cannot name an ignored index, so osc must choose z_id.
CREATE TABLE t (
  id INT NOT NULL,
  id2 INT NOT NULL,
  name VARCHAR(40) NOT NULL,
  UNIQUE KEY z_id (id),
  UNIQUE KEY a_id2 (id2) IGNORED
) ENGINE=InnoDB;
INSERT INTO t (id, id2, name) SELECT seq, seq, CONCAT('n', seq) FROM seq_1_to_2000;
