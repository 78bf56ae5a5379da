SELECT id FROM t WHERE abs(id) <= 5 AND length(big) IS DISTINCT FROM 20000;
SELECT id FROM t WHERE abs(id) > 5 AND big IS NOT NULL;
SELECT count(*) FROM t HAVING count(*) <> 3000;
