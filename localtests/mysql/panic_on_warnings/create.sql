CREATE TABLE t (
  id INT NOT NULL PRIMARY KEY,
  name VARCHAR(40) NOT NULL,
  qty INT NULL,
  price DECIMAL(10,2) NULL,
  created DATETIME(6) NOT NULL
) ENGINE=InnoDB;
INSERT INTO t (id, name, qty, price, created)
SELECT seq, CONCAT('name-', seq), IF(seq % 7 = 0, NULL, seq * 3), IF(seq % 11 = 0, NULL, seq / 7),
       TIMESTAMP('2024-01-01') + INTERVAL seq * 1001 MICROSECOND
FROM seq_1_to_3000;
