-- Every fifth row has a 20 kB value stored out of line (TOAST). An update
-- that does not touch it reaches osc through pgoutput as "unchanged": osc
-- must keep the value it has, also when the key changes or the row has not
-- been copied yet.
-- extra_args turns off the replica-lag and retained-WAL throttles: this case is
-- about TOAST, and on a busy machine (a parallel build, the other cases' WAL)
-- the standby's lag or the slot's retained WAL would throttle it for minutes.
CREATE TABLE t (
  id int PRIMARY KEY,
  counter int NOT NULL DEFAULT 0,
  big text,
  small text
);
ALTER TABLE t ALTER COLUMN big SET STORAGE EXTERNAL;
INSERT INTO t (id, counter, big, small)
SELECT g, 0,
       CASE WHEN g % 5 = 0 THEN (SELECT string_agg(md5(random()::text || g || s), '') FROM generate_series(1, 625) s) END,
       'row ' || g
FROM generate_series(1, 500) g;
