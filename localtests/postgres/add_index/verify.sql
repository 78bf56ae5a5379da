SELECT 'no unique index on (email, id)' WHERE NOT EXISTS (
  SELECT 1 FROM pg_index i WHERE i.indrelid = 't'::regclass AND i.indisunique AND NOT i.indisprimary
    AND pg_get_indexdef(i.indexrelid) LIKE '%(email, id)');
