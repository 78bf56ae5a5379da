-- A new UNIQUE key over a column the original does not keep unique (the
-- values happen to be distinct), added beside another clause. The writers
-- (workload) insert, delete, give rows fresh values or NULL and take values
-- over from deleted rows' keys, never duplicating one: osc must migrate
-- without refusing a row and keep every one.
CREATE TABLE t (
  id INT NOT NULL PRIMARY KEY,
  email VARCHAR(60) NULL,
  n INT NOT NULL,
  KEY idx_email (email)
) ENGINE=InnoDB;
INSERT INTO t (id, email, n)
SELECT seq, IF(seq % 10 = 0, NULL, CONCAT('user', seq, '@example.com')), seq % 97 FROM seq_1_to_3000;
