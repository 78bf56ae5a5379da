SELECT COLUMN_NAME, COLUMN_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 't'
  AND (COLUMN_NAME, COLUMN_TYPE) NOT IN (('id', 'int(11)'), ('n', 'bigint(20)'), ('u', 'bigint(20) unsigned'), ('label', 'varchar(200)'));
