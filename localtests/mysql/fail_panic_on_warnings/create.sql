CREATE TABLE t (
  id INT NOT NULL PRIMARY KEY,
  s VARCHAR(10) NOT NULL
) ENGINE=InnoDB;
INSERT INTO t (id, s) SELECT seq, CONCAT('s', seq % 100) FROM seq_1_to_500;
-- Trailing spaces past the new length: the server cuts them off with a note
-- where the plain ALTER fails (error 1265).
UPDATE t SET s = 'ab      ' WHERE id = 321;
