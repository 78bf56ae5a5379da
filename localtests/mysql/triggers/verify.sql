-- Every row's updates fired t_au exactly once each, its insert t_ai and t_bi once.
SELECT t.id, t.v, a.u, a.i, t.stamp FROM t LEFT JOIN (SELECT id, SUM(op = 'u') AS u, SUM(op = 'i') AS i FROM audit GROUP BY id) a ON a.id = t.id
  WHERE t.v <> COALESCE(a.u, 0) OR COALESCE(a.i, 0) <> (t.id > 2000) OR NOT (t.stamp <=> IF(t.id > 2000, CONCAT('ins-', t.id), NULL));
-- The new table has the triggers under their own names; the old one has none.
SELECT 'triggers' FROM DUAL WHERE (SELECT GROUP_CONCAT(CONCAT(EVENT_OBJECT_TABLE, ':', TRIGGER_NAME) ORDER BY TRIGGER_NAME)
  FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE()) <> 't:t_ai,t:t_au,t:t_bi';
