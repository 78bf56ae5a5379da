-- A column per character set the TiDB parser does not know.
CREATE TABLE t (
  id INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  name VARCHAR(40) NOT NULL,
  qty INT NULL,
  note TEXT NULL,
  code CHAR(3) NULL,
  pl VARCHAR(20) NULL,
  cz VARCHAR(20) NULL,
  ru VARCHAR(20) NULL,
  emoji VARCHAR(20) NULL,
  KEY idx_name (name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
INSERT INTO t (id, name, qty, note, code, pl, cz, ru, emoji)
SELECT seq, CONCAT(ELT(1 + seq % 4, 'Łódź', 'Žluťoučký', 'Привет', 'plain'), '-', seq), IF(seq % 7 = 0, NULL, seq * 3),
       IF(seq % 5 = 0, NULL, REPEAT(ELT(1 + seq % 4, 'Łódź', 'Žluťoučký', 'Привет', 'plain'), seq % 40)), IF(seq % 3 = 0, NULL, LEFT(ELT(1 + seq % 4, 'Łódź', 'Žluťoučký', 'Привет', 'plain'), 3)),
       IF(seq % 6 = 0, NULL, CONCAT('zażółć ', seq)), CONCAT('kůň ', seq), IF(seq % 8 = 0, NULL, CONCAT('ещё ', seq)), CONCAT('😀 ', seq)
FROM seq_1_to_2000;
