-- t references a parent table.
CREATE TABLE parent (id INT NOT NULL PRIMARY KEY) ENGINE=InnoDB;
INSERT INTO parent SELECT seq FROM seq_1_to_10;
CREATE TABLE t (
  id INT NOT NULL PRIMARY KEY,
  parent_id INT NOT NULL,
  CONSTRAINT fk_parent FOREIGN KEY (parent_id) REFERENCES parent (id)
) ENGINE=InnoDB;
INSERT INTO t (id, parent_id) SELECT seq, 1 + seq % 10 FROM seq_1_to_500;
