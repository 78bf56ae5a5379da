-- t references a parent table (RESTRICT); writers change both. osc carries
-- the foreign key to the new table as _fk_parent (InnoDB's names are
-- schema-wide), drops the old table's after the cut-over and then gives the
-- new table's its own name back.
CREATE TABLE parent (id INT NOT NULL PRIMARY KEY, name VARCHAR(20) NOT NULL) ENGINE=InnoDB;
INSERT INTO parent SELECT seq, CONCAT('p', seq) FROM seq_1_to_20;
CREATE TABLE t (
  id INT NOT NULL PRIMARY KEY,
  parent_id INT NOT NULL,
  name VARCHAR(40) NOT NULL,
  CONSTRAINT fk_parent FOREIGN KEY (parent_id) REFERENCES parent (id) ON UPDATE NO ACTION
) ENGINE=InnoDB;
INSERT INTO t (id, parent_id, name) SELECT seq, 1 + seq % 10, CONCAT("name-", seq) FROM seq_1_to_2000;
