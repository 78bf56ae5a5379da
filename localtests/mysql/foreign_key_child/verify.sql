-- The new table has the foreign key under its own name, with its rules; the old one has none.
SELECT 'foreign keys' FROM DUAL WHERE (SELECT GROUP_CONCAT(CONCAT(TABLE_NAME, ':', CONSTRAINT_NAME, ':', DELETE_RULE, ':', UPDATE_RULE))
  FROM information_schema.REFERENTIAL_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = DATABASE()) <> 't:fk_parent:RESTRICT:NO ACTION';
SELECT id FROM t WHERE id = 1000000;
-- The old table still holds rows of parent 10.
SELECT 1 FROM DUAL WHERE NOT EXISTS (SELECT 1 FROM t_osc_old WHERE parent_id = 10);
