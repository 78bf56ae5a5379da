-- The application's backfill, once the columns exist.
UPDATE users SET first_name = split_part(full_name, ' ', 1), last_name = substr(full_name, strpos(full_name, ' ') + 1)
WHERE full_name IS NOT NULL;
