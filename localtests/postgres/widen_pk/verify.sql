SELECT 1 FROM pg_index i WHERE i.indrelid = 't'::regclass AND i.indisprimary AND i.indkey::text <> '1 2';
SELECT 1 FROM pg_class WHERE oid = 't'::regclass AND relreplident <> 'f';
