CREATE TABLE t (
  id int PRIMARY KEY,
  name text NOT NULL
);
INSERT INTO t (id, name) SELECT g, 'name-' || g FROM generate_series(1, 500) g;
