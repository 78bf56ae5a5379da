-- A new UNIQUE key that nothing in the original guarantees: copying with ON
-- CONFLICT DO NOTHING would drop the duplicates silently.
CREATE TABLE t (
  id int PRIMARY KEY,
  email text NOT NULL
);
INSERT INTO t (id, email) SELECT g, 'user' || (g % 400) || '@example.com' FROM generate_series(1, 500) g;
