CREATE TABLE t (
  id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  payload text NOT NULL,
  n int
);
INSERT INTO t (payload, n) SELECT 'seed ' || g, g FROM generate_series(1, 3000) g;
