CREATE TABLE t (
  id INT NOT NULL PRIMARY KEY,
  grp INT NOT NULL,
  body VARCHAR(255) NOT NULL,
  KEY idx_grp (grp)
) ENGINE=InnoDB;
INSERT INTO t (id, grp, body)
SELECT seq, seq % 17, REPEAT(SUBSTRING(MD5(seq), 1, 16), 1 + seq % 15)
FROM seq_1_to_20000;
