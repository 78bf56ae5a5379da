-- ALTER COLUMN … TYPE … USING: the new values are computed by the
-- expression, from the old row, for copied and for applied rows alike. Every
-- twentieth row has a 20 kB value stored out of line (TOAST), which updates
-- of the other columns and key changes leave "unchanged".
CREATE TABLE t (
  id int PRIMARY KEY,
  flag boolean,
  amount int NOT NULL,
  qty int NOT NULL,
  big text,
  note text
);
ALTER TABLE t ALTER COLUMN big SET STORAGE EXTERNAL;
INSERT INTO t (id, flag, amount, qty, big, note)
SELECT g, CASE g % 3 WHEN 0 THEN true WHEN 1 THEN false END, g * 7 % 100000, g % 1000,
       CASE WHEN g % 20 = 0 THEN (SELECT string_agg(md5(g::text || s), '') FROM generate_series(1, 625) s) END,
       CASE WHEN g % 11 <> 0 THEN 'note ' || g END
FROM generate_series(1, 3000) g;
