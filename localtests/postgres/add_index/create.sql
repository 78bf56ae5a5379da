-- PostgreSQL's ALTER TABLE builds an index only through a constraint. A
-- UNIQUE (email, id) is implied by the PRIMARY KEY (id), so osc accepts it
-- (a unique index it cannot prove is refused: fail_new_unique).
CREATE TABLE t (
  id int PRIMARY KEY,
  email text NOT NULL,
  qty int
);
INSERT INTO t (id, email, qty)
SELECT g, 'user' || (g % 1000) || '@example.com', CASE WHEN g % 9 = 0 THEN NULL ELSE g % 100 END
FROM generate_series(1, 3000) g;
