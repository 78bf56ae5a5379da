-- The new columns hold their defaults, on copied and on applied rows alike.
SELECT id, status, score FROM t WHERE status <> 'new' OR score IS NOT NULL;
