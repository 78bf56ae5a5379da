SELECT id FROM t WHERE big IS NOT NULL AND length(big) <> 20000;
