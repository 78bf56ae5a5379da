SELECT 'SELECT not granted' WHERE NOT has_table_privilege('osct_grants_reader', 't', 'SELECT');
SELECT 'UPDATE (qty) not granted' WHERE NOT has_column_privilege('osct_grants_reader', 't', 'qty', 'UPDATE');
SELECT 'DELETE granted' WHERE has_table_privilege('osct_grants_reader', 't', 'DELETE');
SELECT 'owner changed' WHERE (SELECT relowner FROM pg_class WHERE oid = 't'::regclass) <> (SELECT relowner FROM pg_class WHERE oid = '_t_old'::regclass);
