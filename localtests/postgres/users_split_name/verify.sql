SELECT id, full_name, first_name, last_name FROM users WHERE first_name || ' ' || last_name IS DISTINCT FROM full_name;
