-- Every row's updates fired t_au exactly once each, its insert t_ai and t_bi once.
SELECT t.id, t.v, a.u, a.i, t.stamp FROM t LEFT JOIN (SELECT id, SUM(op = 'u') AS u, SUM(op = 'i') AS i FROM audit GROUP BY id) a ON a.id = t.id
  WHERE t.v <> COALESCE(a.u, 0) OR COALESCE(a.i, 0) <> (t.id > 2000) OR NOT (t.stamp <=> IF(t.id > 2000, CONCAT('ins-', t.id), NULL));
-- Every delete fired t_ad exactly once, and only for a row that is gone.
SELECT id, COUNT(*) FROM audit WHERE op = 'd' GROUP BY id HAVING COUNT(*) <> 1 OR id IN (SELECT id FROM t);
-- The rows gone are those deleted: an original row missing from t has its delete audited.
SELECT s.seq FROM seq_1_to_2000 s WHERE s.seq NOT IN (SELECT id FROM t) AND s.seq NOT IN (SELECT id FROM audit WHERE op = 'd');
SELECT id FROM t WHERE id = 1000001;
-- The new table has its foreign keys and triggers under their own names; the old one has none.
SELECT 'foreign keys' FROM DUAL WHERE (SELECT GROUP_CONCAT(CONCAT(TABLE_NAME, ':', CONSTRAINT_NAME, ':', DELETE_RULE, ':', UPDATE_RULE) ORDER BY BINARY CONSTRAINT_NAME)
  FROM information_schema.REFERENTIAL_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = DATABASE()) <> 't:_fk_kind:RESTRICT:RESTRICT,t:fk_parent:RESTRICT:NO ACTION';
SELECT 'triggers' FROM DUAL WHERE (SELECT GROUP_CONCAT(CONCAT(EVENT_OBJECT_TABLE, ':', TRIGGER_NAME) ORDER BY BINARY TRIGGER_NAME)
  FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE()) <> 't:t_ad,t:t_ai,t:t_au,t:t_bi';
-- The index the foreign key uses kept its name.
SELECT 'index' FROM DUAL WHERE NOT EXISTS (SELECT 1 FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 't' AND INDEX_NAME = 'by_parent');
