-- Expression defaults, with and without parentheses: copied and applied rows get them.
CREATE TABLE t (
  id INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  name VARCHAR(40) NOT NULL,
  qty INT NULL,
  note TEXT NULL,
  code CHAR(3) NULL,
  KEY idx_name (name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
INSERT INTO t (id, name, qty, note, code)
SELECT seq, CONCAT(ELT(1 + seq % 4, 'alpha', 'beta', 'gamma', 'delta'), '-', seq), IF(seq % 7 = 0, NULL, seq * 3),
       IF(seq % 5 = 0, NULL, REPEAT(ELT(1 + seq % 4, 'alpha', 'beta', 'gamma', 'delta'), seq % 40)), IF(seq % 3 = 0, NULL, LEFT(ELT(1 + seq % 4, 'alpha', 'beta', 'gamma', 'delta'), 3))
FROM seq_1_to_2000;
