-- A two-column key, the second a string: the writers use the workload file.
CREATE TABLE t (
  tenant int NOT NULL,
  code text NOT NULL,
  qty int NOT NULL,
  note varchar(100),
  PRIMARY KEY (tenant, code)
);
INSERT INTO t (tenant, code, qty, note)
SELECT 1 + (g - 1) / 10, 'c' || ((g - 1) % 10), g, CASE WHEN g % 4 = 0 THEN NULL ELSE 'note ' || g END
FROM generate_series(1, 3000) g;
