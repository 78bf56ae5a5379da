CREATE TABLE t (
  id int PRIMARY KEY,
  name varchar(40) NOT NULL,
  qty int,
  price numeric(10,2),
  note text,
  created timestamptz NOT NULL
);
CREATE INDEX t_name_idx ON t (name);
INSERT INTO t (id, name, qty, price, note, created)
SELECT g, 'name-' || g, CASE WHEN g % 7 = 0 THEN NULL ELSE g * 3 END, CASE WHEN g % 11 = 0 THEN NULL ELSE g / 7.0 END,
       CASE WHEN g % 5 = 0 THEN NULL ELSE repeat(chr(65 + g % 26), g % 300) END,
       timestamptz '2024-01-01 00:00:00+00' + g * interval '1001 microseconds'
FROM generate_series(1, 3000) g;
