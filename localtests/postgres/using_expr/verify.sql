-- The USING values, from the old table (_t_old, the same rows: the writers
-- stopped before the cut-over).
SELECT o.id FROM _t_old o JOIN t n ON n.id = o.id
WHERE n.flag IS DISTINCT FROM (CASE WHEN o.flag THEN 'IT WAS TRUE' ELSE 'IT WAS FALSE' END)
   OR n.amount IS DISTINCT FROM o.amount::bigint * 1000 + o.qty
   OR n.remark IS DISTINCT FROM upper(o.note) || '!';
SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute
WHERE attrelid = 't'::regclass AND attnum > 0 AND NOT attisdropped
  AND (attname, format_type(atttypid, atttypmod)) NOT IN (('id', 'integer'), ('flag', 'text'), ('amount', 'bigint'), ('qty', 'integer'),
      ('big', 'text'), ('remark', 'text'));
