-- Triggers, with C functions of contrib's spi modules (the case does not
-- depend on PL/pgSQL): t_stamp (moddatetime) sets stamp to the writing
-- transaction's start at each update of v; had it fired for osc's applier
-- too, the new table's stamp would be the applier's time, and the rows would
-- differ. t_number (autoinc) numbers a row inserted without n. osc makes
-- them on the new table in the swap's transaction, with their enabled state
-- (t_skip_noop disabled) and comments.
CREATE EXTENSION IF NOT EXISTS moddatetime SCHEMA public;
CREATE EXTENSION IF NOT EXISTS autoinc SCHEMA public;
CREATE SEQUENCE t_n_seq START 1000000;
CREATE TABLE t (
  id int PRIMARY KEY,
  v int NOT NULL DEFAULT 0,
  n int,
  stamp timestamptz
);
INSERT INTO t (id, n) SELECT g, g FROM generate_series(1, 2000) g;
CREATE TRIGGER t_stamp BEFORE UPDATE OF v ON t FOR EACH ROW EXECUTE FUNCTION public.moddatetime(stamp);
CREATE TRIGGER t_number BEFORE INSERT ON t FOR EACH ROW EXECUTE FUNCTION public.autoinc(n, t_n_seq);
CREATE TRIGGER t_skip_noop BEFORE UPDATE ON t FOR EACH ROW EXECUTE FUNCTION suppress_redundant_updates_trigger();
ALTER TABLE t DISABLE TRIGGER t_skip_noop;
COMMENT ON TRIGGER t_stamp ON t IS 'last update of v';
