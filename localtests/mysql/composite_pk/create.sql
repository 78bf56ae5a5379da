-- A two-column key, the second a string: the writers use the workload file.
CREATE TABLE t (
  tenant INT NOT NULL,
  code VARCHAR(16) NOT NULL,
  qty INT NOT NULL,
  note VARCHAR(100) NULL,
  PRIMARY KEY (tenant, code)
) ENGINE=InnoDB;
INSERT INTO t (tenant, code, qty, note)
SELECT 1 + (seq - 1) DIV 10, CONCAT('c', (seq - 1) % 10), seq, IF(seq % 4 = 0, NULL, CONCAT('note ', seq))
FROM seq_1_to_3000;
