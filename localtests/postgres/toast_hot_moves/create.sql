-- Five rows with 20 kB values stored out of line (TOAST) whose keys the
-- writers move back and forth, through the cut-over. Such a
-- key change reaches osc with the value "unchanged", and osc reads it from
-- the source, where the row may have moved on already; each drain can then
-- bring more such reads, so that the applier settles only with writes
-- blocked (engine's settleBlocked). The other rows make the copy last.
-- writer_pause keeps the writers (4, up to 100 ms between two writes) under
-- what the applier keeps up with on a loaded 2-core machine: with the
-- default 10 ms they made more such reads than it could apply there, the
-- backlog grew to 40 s and osc never caught up to postpone the cut-over.
-- Unpaced moves of such rows are TestStress's toast variant, whose one
-- writer runs at full speed.
-- extra_args turns off the replica-lag and retained-WAL throttles, as in
-- toast_unchanged.
CREATE TABLE t (
  id int PRIMARY KEY,
  counter int NOT NULL DEFAULT 0,
  big text
);
ALTER TABLE t ALTER COLUMN big SET STORAGE EXTERNAL;
INSERT INTO t (id, counter, big)
SELECT g, 0,
       CASE WHEN g <= 5 THEN (SELECT string_agg(md5(random()::text || g || s), '') FROM generate_series(1, 625) s) END
FROM generate_series(1, 3000) g;
