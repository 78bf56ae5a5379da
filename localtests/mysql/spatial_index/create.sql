-- A SPATIAL INDEX on a GEOMETRY NOT NULL column (the TiDB parser knows neither);
-- the writers copy geometries between rows, so they reach osc through the binlog too.
CREATE TABLE t (
  id INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  name VARCHAR(40) NOT NULL,
  g GEOMETRY NOT NULL,
  p POINT NULL,
  area POLYGON NULL
) ENGINE=InnoDB;
INSERT INTO t (id, name, g, p, area)
SELECT seq, CONCAT('place-', seq),
       IF(seq % 3 = 0, ST_GeomFromText(CONCAT('LINESTRING(0 0, ', seq, ' ', seq % 17, ')')), POINT(seq / 7, -seq / 3)),
       IF(seq % 5 = 0, NULL, POINT(seq, seq % 11)),
       IF(seq % 4 = 0, NULL, ST_GeomFromText(CONCAT('POLYGON((0 0, ', seq, ' 0, ', seq, ' ', seq, ', 0 0))')))
FROM seq_1_to_2000;
