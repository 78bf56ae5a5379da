-- A USING that calls a volatile function: a plain ALTER evaluates it once
-- per row, osc would evaluate it at the copy and again at every change.
CREATE TABLE t (
  id int PRIMARY KEY,
  a int
);
INSERT INTO t (id, a) SELECT g, g FROM generate_series(1, 500) g;
