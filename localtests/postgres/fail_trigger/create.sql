CREATE TABLE t (
  id int PRIMARY KEY,
  name text NOT NULL
);
INSERT INTO t (id, name) SELECT g, 'name-' || g FROM generate_series(1, 500) g;
-- A built-in trigger function: the case does not depend on PL/pgSQL.
CREATE TRIGGER t_skip_noop BEFORE UPDATE ON t FOR EACH ROW EXECUTE FUNCTION suppress_redundant_updates_trigger();
