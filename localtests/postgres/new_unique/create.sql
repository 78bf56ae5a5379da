-- New UNIQUE constraints over columns the original does not keep unique (the
-- values happen to be distinct), added beside a type change: the constraints
-- keep their names. The writers (workload) insert, delete, give rows fresh
-- values or NULL and take values over from deleted rows' keys, never
-- duplicating one: osc must migrate without refusing a row and keep every one.
CREATE TABLE t (
  id int PRIMARY KEY,
  email text,
  a int,
  b int,
  n int NOT NULL
);
INSERT INTO t (id, email, a, b, n)
SELECT g, CASE WHEN g % 10 <> 0 THEN 'user' || g || '@example.com' END, g % 7, g, g % 97 FROM generate_series(1, 3000) g;
