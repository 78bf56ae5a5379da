SELECT 'the view does not read the new table' WHERE NOT EXISTS (SELECT 1 FROM v WHERE id = 2000000000);
SELECT 'the foreign key does not reference the new table' WHERE NOT EXISTS (
  SELECT 1 FROM pg_constraint WHERE conrelid = 'child'::regclass AND contype = 'f' AND confrelid = 't'::regclass);
SELECT c.id, c.t_id FROM child c LEFT JOIN t ON t.id = c.t_id WHERE t.id IS NULL;
