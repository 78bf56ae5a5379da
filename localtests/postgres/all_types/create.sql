-- Every common PostgreSQL type, with edge values and NULLs: the copy (server
-- side) and the applier (pgoutput's text values) must both reproduce each
-- value. seq_no is GENERATED ALWAYS AS IDENTITY (writing it needs OVERRIDING
-- SYSTEM VALUE) and total a stored generated column (never written).
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE DOMAIN posint AS int CHECK (VALUE > 0);
CREATE TABLE t (
  id int PRIMARY KEY,
  si smallint, i int, bi bigint,
  num numeric, num2 numeric(12,4),
  r real, d double precision,
  txt text, vc varchar(50), ch char(5),
  by bytea,
  b boolean,
  dt date, tm time, tmtz timetz, ts timestamp, tstz timestamptz(3), iv interval,
  u uuid,
  j json, jb jsonb,
  ia int[], ta text[],
  m mood, p posint,
  seq_no int GENERATED ALWAYS AS IDENTITY,
  total numeric GENERATED ALWAYS AS (num2 * 2) STORED
);
INSERT INTO t (id, si, i, bi, num, num2, r, d, txt, vc, ch, by, b, dt, tm, tmtz, ts, tstz, iv, u, j, jb, ia, ta, m, p)
SELECT g,
  CASE g % 4 WHEN 0 THEN -32768 WHEN 1 THEN 32767 WHEN 2 THEN NULL ELSE g END,
  CASE g % 4 WHEN 0 THEN -2147483648 WHEN 1 THEN 2147483647 WHEN 2 THEN NULL ELSE g * 1000 END,
  CASE g % 4 WHEN 0 THEN -9223372036854775808 WHEN 1 THEN 9223372036854775807 WHEN 2 THEN NULL ELSE g * 1000000007::bigint END,
  CASE g % 5 WHEN 0 THEN 'NaN'::numeric WHEN 1 THEN 123456789012345678901234567890.123456789 WHEN 2 THEN NULL WHEN 3 THEN -0.000000001 ELSE g / 7.0 END,
  CASE g % 3 WHEN 0 THEN 12345678.1234 WHEN 1 THEN NULL ELSE g / 3.0 END,
  CASE g % 6 WHEN 0 THEN 'NaN'::real WHEN 1 THEN 'Infinity' WHEN 2 THEN '-Infinity' WHEN 3 THEN NULL WHEN 4 THEN 3.4e38 ELSE g / 7.0 END,
  CASE g % 7 WHEN 0 THEN 'NaN'::float8 WHEN 1 THEN 'Infinity' WHEN 2 THEN '-Infinity' WHEN 3 THEN NULL WHEN 4 THEN 1.7976931348623157e308
             WHEN 5 THEN '-0' ELSE g / 7.0 END,
  CASE g % 4 WHEN 0 THEN '' WHEN 1 THEN 'emoji 😀🎉 ' || g WHEN 2 THEN NULL ELSE repeat('naïve ', 40) END,
  CASE g % 3 WHEN 0 THEN 'café' WHEN 1 THEN 'trailing space ' ELSE NULL END,
  CASE g % 3 WHEN 0 THEN 'ab' WHEN 1 THEN 'é' ELSE NULL END,
  CASE g % 4 WHEN 0 THEN '\x00'::bytea WHEN 1 THEN decode(md5(g::text), 'hex') WHEN 2 THEN NULL ELSE '\x00ff7f805c'::bytea END,
  CASE g % 3 WHEN 0 THEN true WHEN 1 THEN false ELSE NULL END,
  CASE g % 4 WHEN 0 THEN '4713-01-01 BC'::date WHEN 1 THEN '5874897-12-31' WHEN 2 THEN 'infinity' ELSE NULL END,
  CASE g % 3 WHEN 0 THEN '00:00:00'::time WHEN 1 THEN '24:00:00' ELSE '12:34:56.789012' END,
  CASE g % 2 WHEN 0 THEN '12:34:56.789+05:30'::timetz ELSE NULL END,
  CASE g % 4 WHEN 0 THEN '4713-01-01 00:00:00 BC'::timestamp WHEN 1 THEN '294276-12-31 23:59:59.999999' WHEN 2 THEN '-infinity'
             ELSE '2024-02-29 12:00:00.123456' END,
  CASE g % 3 WHEN 0 THEN '2024-06-01 12:00:00.5+02'::timestamptz WHEN 1 THEN 'infinity' ELSE NULL END,
  CASE g % 3 WHEN 0 THEN '1 year 2 mons 3 days 04:05:06.789'::interval WHEN 1 THEN '-178000000 years' ELSE NULL END,
  CASE WHEN g % 5 = 0 THEN NULL ELSE md5(g::text)::uuid END,
  CASE g % 3 WHEN 0 THEN '{ "b" : 1,   "a" : [1, 2.50, null],"a":2 }'::json WHEN 1 THEN '[]' ELSE NULL END,
  CASE g % 3 WHEN 0 THEN '{"b": 1, "a": [1, 2.50, null], "emoji": "😀"}'::jsonb WHEN 1 THEN 'null' ELSE NULL END,
  CASE g % 4 WHEN 0 THEN ARRAY[1, NULL, -2147483648] WHEN 1 THEN '{}'::int[] WHEN 2 THEN NULL ELSE ARRAY[[1, 2], [3, 4]] END,
  CASE g % 3 WHEN 0 THEN ARRAY['a b', '', NULL, 'quote"', 'back\slash', '😀', 'NULL'] WHEN 1 THEN '{}'::text[] ELSE NULL END,
  CASE g % 4 WHEN 0 THEN 'sad'::mood WHEN 1 THEN 'happy' WHEN 2 THEN NULL ELSE 'ok' END,
  CASE WHEN g % 3 = 0 THEN NULL ELSE g END
FROM generate_series(1, 3000) g;
