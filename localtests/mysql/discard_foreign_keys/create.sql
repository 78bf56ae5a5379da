-- t is a child of parent (RESTRICT), writers change both; with
-- --discard-foreign-keys the new t has no foreign key, and the old one's is
-- dropped after the cut-over, so that it no longer holds the parent's rows.
CREATE TABLE parent (id INT NOT NULL PRIMARY KEY, name VARCHAR(20) NOT NULL) ENGINE=InnoDB;
INSERT INTO parent SELECT seq, CONCAT('p', seq) FROM seq_1_to_20;
CREATE TABLE t (
  id INT NOT NULL PRIMARY KEY,
  parent_id INT NOT NULL,
  name VARCHAR(40) NOT NULL,
  CONSTRAINT fk_parent FOREIGN KEY (parent_id) REFERENCES parent (id)
) ENGINE=InnoDB;
INSERT INTO t (id, parent_id, name) SELECT seq, 1 + seq % 10, CONCAT('name-', seq) FROM seq_1_to_2000;
