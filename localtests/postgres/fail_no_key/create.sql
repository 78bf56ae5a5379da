-- No PRIMARY KEY, and the only UNIQUE key is on a nullable column.
CREATE TABLE t (
  a int UNIQUE,
  name text NOT NULL
);
INSERT INTO t (a, name) SELECT CASE WHEN g % 10 = 0 THEN NULL ELSE g END, 'name-' || g FROM generate_series(1, 500) g;
