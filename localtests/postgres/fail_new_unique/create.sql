-- A new UNIQUE key that the original's rows duplicate: osc looks for duplicates
-- before the copy and refuses, naming them (copying with ON CONFLICT DO NOTHING
-- would drop them silently).
CREATE TABLE t (
  id int PRIMARY KEY,
  email text NOT NULL
);
INSERT INTO t (id, email) SELECT g, 'user' || (g % 400) || '@example.com' FROM generate_series(1, 500) g;
