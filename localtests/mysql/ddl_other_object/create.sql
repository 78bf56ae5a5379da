CREATE TABLE t (
  id INT NOT NULL PRIMARY KEY,
  name VARCHAR(40) NOT NULL,
  n INT NOT NULL
) ENGINE=InnoDB;
INSERT INTO t (id, name, n) SELECT seq, CONCAT('name-', seq), seq % 7 FROM seq_1_to_2000;
-- Objects of other kinds named like the table: DDL on them during the
-- migration is not DDL on the table.
CREATE EVENT t ON SCHEDULE AT '2037-01-01 00:00:00' ON COMPLETION PRESERVE DISABLE DO SET @x = 1;
CREATE PROCEDURE t() SET @x = 1;
