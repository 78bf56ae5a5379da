CREATE TABLE t (
  id int PRIMARY KEY,
  grp int NOT NULL,
  body text NOT NULL
);
CREATE INDEX t_grp_idx ON t (grp);
INSERT INTO t (id, grp, body) SELECT g, g % 17, repeat(substr(md5(g::text), 1, 16), 1 + g % 15) FROM generate_series(1, 20000) g;
