CREATE TABLE users (
  id bigint PRIMARY KEY,
  full_name text,
  email text NOT NULL
);
INSERT INTO users (id, full_name, email)
SELECT g,
       CASE WHEN g % 13 = 0 THEN NULL
            ELSE (ARRAY['Ada', 'Grace', 'Alan', 'Edsger', 'José', 'Zoë'])[1 + g % 6] || ' ' ||
                 (ARRAY['Lovelace', 'Hopper', 'Turing', 'Dijkstra', 'Núñez', 'de la Cruz'])[1 + (g / 6) % 6] END,
       'user' || g || '@example.com'
FROM generate_series(1, 3000) g;
