SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute
WHERE attrelid = 't'::regclass AND attnum > 0 AND NOT attisdropped
  AND (attname, format_type(atttypid, atttypmod)) NOT IN (('id', 'integer'), ('n', 'bigint'), ('label', 'text'));
