-- No PRIMARY KEY: a NOT NULL UNIQUE key identifies the rows (and a nullable
-- UNIQUE key, which cannot, is there to be ignored; it is mostly NULL so that
-- the writers' copies of rows do not collide on it).
CREATE TABLE t (
  uid INT NOT NULL,
  email VARCHAR(60) NULL,
  payload VARCHAR(200) NOT NULL,
  UNIQUE KEY uk_email (email),
  UNIQUE KEY uk_uid (uid)
) ENGINE=InnoDB;
INSERT INTO t (uid, email, payload)
SELECT seq, IF(seq % 20 = 0, CONCAT('user', seq, '@example.com'), NULL), REPEAT(SUBSTRING(MD5(seq), 1, 8), 1 + seq % 20)
FROM seq_1_to_3000;
