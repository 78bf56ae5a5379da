-- A new UNIQUE key that nothing in the original guarantees: INSERT IGNORE
-- would drop the duplicates silently, REPLACE would delete the rows they
-- clash with.
CREATE TABLE t (
  id INT NOT NULL PRIMARY KEY,
  email VARCHAR(60) NOT NULL
) ENGINE=InnoDB;
INSERT INTO t (id, email) SELECT seq, CONCAT('user', seq % 400, '@example.com') FROM seq_1_to_500;
