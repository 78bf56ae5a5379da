-- Every fifth row has a 200 kB value stored out of line (TOAST). An update
-- that does not touch it reaches osc through pgoutput as "unchanged": osc
-- must keep the value it has, also when the key changes or the row has not
-- been copied yet.
CREATE TABLE t (
  id int PRIMARY KEY,
  counter int NOT NULL DEFAULT 0,
  big text,
  small text
);
ALTER TABLE t ALTER COLUMN big SET STORAGE EXTERNAL;
INSERT INTO t (id, counter, big, small)
SELECT g, 0,
       CASE WHEN g % 5 = 0 THEN (SELECT string_agg(md5(random()::text || g || s), '') FROM generate_series(1, 6250) s) END,
       'row ' || g
FROM generate_series(1, 500) g;
