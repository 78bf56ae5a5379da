-- Every row inserted by the writers or after the cut-over was numbered; every updated row stamped.
SELECT id FROM t WHERE n IS NULL OR (v > 0) <> (stamp IS NOT NULL);
SELECT id FROM t WHERE id <= 5 AND v > 0 AND stamp < now() - interval '1 minute';
-- The triggers, their enabled states and comment are the new table's.
SELECT string_agg(tgname || ':' || tgenabled::text || ':' || coalesce(obj_description(oid, 'pg_trigger'), ''), ',' ORDER BY tgname) FROM pg_trigger
  WHERE tgrelid = 't'::regclass AND NOT tgisinternal
  HAVING string_agg(tgname || ':' || tgenabled::text || ':' || coalesce(obj_description(oid, 'pg_trigger'), ''), ',' ORDER BY tgname)
    <> 't_number:O:,t_skip_noop:D:,t_stamp:O:last update of v';
