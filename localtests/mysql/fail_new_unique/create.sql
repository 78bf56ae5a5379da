-- A new UNIQUE key that the original's rows duplicate: osc looks for duplicates
-- before the copy and refuses, naming them (never INSERT IGNORE, which would drop
-- them silently, nor REPLACE, which would delete the rows they clash with).
CREATE TABLE t (
  id INT NOT NULL PRIMARY KEY,
  email VARCHAR(60) NOT NULL
) ENGINE=InnoDB;
INSERT INTO t (id, email) SELECT seq, CONCAT('user', seq % 400, '@example.com') FROM seq_1_to_500;
