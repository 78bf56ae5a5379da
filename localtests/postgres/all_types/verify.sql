SELECT id FROM t WHERE extra <> 7;
-- The generated column is computed in the new table too.
SELECT id FROM t WHERE total IS DISTINCT FROM num2 * 2;
