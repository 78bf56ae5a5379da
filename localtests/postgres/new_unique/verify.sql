SELECT 'constraint ' || c || ' missing' FROM unnest(ARRAY['t_email_key', 't_a_b']) c
  WHERE NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = 't'::regclass AND conname = c AND contype = 'u');
SELECT email FROM t WHERE email IS NOT NULL GROUP BY email HAVING count(*) > 1;
