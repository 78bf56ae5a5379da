SELECT id FROM t WHERE extra <> 7;
-- The generated columns are computed in the new table too.
SELECT id FROM t WHERE NOT (gv <=> i + 1) OR NOT (gs <=> CONCAT(vc, '!'));
