-- t's foreign key deletes its rows with their parent: InnoDB does it without
-- a row event in the binlog, so osc would never see those deletes.
CREATE TABLE parent (id INT NOT NULL PRIMARY KEY) ENGINE=InnoDB;
INSERT INTO parent SELECT seq FROM seq_1_to_10;
CREATE TABLE t (
  id INT NOT NULL PRIMARY KEY,
  parent_id INT NOT NULL,
  CONSTRAINT fk_parent FOREIGN KEY (parent_id) REFERENCES parent (id) ON DELETE CASCADE
) ENGINE=InnoDB;
INSERT INTO t (id, parent_id) SELECT seq, 1 + seq % 10 FROM seq_1_to_500;
