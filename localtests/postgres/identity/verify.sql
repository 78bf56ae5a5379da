SELECT id FROM t WHERE payload = 'after cut-over' AND id <= (SELECT max(id) FROM _t_old);
SELECT 'id is no longer GENERATED ALWAYS' FROM pg_attribute WHERE attrelid = 't'::regclass AND attname = 'id' AND attidentity <> 'a';
