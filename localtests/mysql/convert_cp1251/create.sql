-- Cyrillic text, which cp1251 holds (the TiDB parser does not know cp1251).
CREATE TABLE t (
  id INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  name VARCHAR(40) NOT NULL,
  qty INT NULL,
  note TEXT NULL,
  code CHAR(3) NULL,
  KEY idx_name (name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
INSERT INTO t (id, name, qty, note, code)
SELECT seq, CONCAT(ELT(1 + seq % 4, 'Привет', 'съешь же ещё', 'Ёлка', 'plain'), '-', seq), IF(seq % 7 = 0, NULL, seq * 3),
       IF(seq % 5 = 0, NULL, REPEAT(ELT(1 + seq % 4, 'Привет', 'съешь же ещё', 'Ёлка', 'plain'), seq % 40)), IF(seq % 3 = 0, NULL, LEFT(ELT(1 + seq % 4, 'Привет', 'съешь же ещё', 'Ёлка', 'plain'), 3))
FROM seq_1_to_2000;
