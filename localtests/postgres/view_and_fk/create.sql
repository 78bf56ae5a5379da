-- A view reads t and a child table references it (cascading, so that the
-- writers' deletes and key changes reach the children). After the cut-over
-- both must be bound to the new table, not to _t_old.
CREATE TABLE t (
  id int PRIMARY KEY,
  name text NOT NULL,
  qty int
);
INSERT INTO t (id, name, qty) SELECT g, 'name-' || g, g % 100 FROM generate_series(1, 3000) g;
CREATE TABLE child (
  id int PRIMARY KEY,
  t_id int NOT NULL REFERENCES t (id) ON DELETE CASCADE ON UPDATE CASCADE
);
INSERT INTO child (id, t_id) SELECT g, g FROM generate_series(10, 3000, 10) g;
CREATE VIEW v AS SELECT id, name, qty FROM t WHERE qty IS NOT NULL;
