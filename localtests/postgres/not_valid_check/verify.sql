SELECT 'the --alter''s CHECK is not t_name_check NOT VALID' WHERE NOT EXISTS (
  SELECT 1 FROM pg_constraint WHERE conrelid = 't'::regclass AND conname = 't_name_check' AND contype = 'c' AND NOT convalidated);
SELECT 'the original''s CHECK is not qty_nonneg NOT VALID' WHERE NOT EXISTS (
  SELECT 1 FROM pg_constraint WHERE conrelid = 't'::regclass AND conname = 'qty_nonneg' AND contype = 'c' AND NOT convalidated);
SELECT 'rows breaking the CHECKs were not all kept' WHERE (SELECT count(*) FROM t WHERE qty < 0) = 0 OR (SELECT count(*) FROM t WHERE name LIKE 'old-%') < 1000;
