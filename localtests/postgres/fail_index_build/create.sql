-- The shadow's non-unique indexes are built once the rows are copied: an
-- index whose expression fails on a converted row (100 / a where the USING
-- made a zero) fails that build, as it fails the plain ALTER, and osc must
-- fail with nothing left behind.
CREATE TABLE t (
  id int PRIMARY KEY,
  a int NOT NULL
);
CREATE INDEX t_q_idx ON t ((100 / a));
INSERT INTO t (id, a) SELECT g, g FROM generate_series(1, 3000) g;
