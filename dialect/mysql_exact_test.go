package dialect

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"osc/engine"
	"osc/table"
)

// exactCase is a migration checked against the server's own ALTER: the
// table and a control copy receive the same writes while osc migrates the
// table; then a plain ALTER TABLE runs on the control copy, in a session
// with the case's time zone and the server's global sql_mode, and the two
// must hold the same rows, byte for byte (or both must fail).
type exactCase struct {
	name   string   // table; the control copy is name_ctl
	create string   // CREATE TABLE statement, %s for the name
	seed   []string // run on the table before the control copy is taken, %s for the name
	alter  string
	zone   string // the migration's and the plain ALTER's time zone
	// write returns one write, %s for the table; it runs on the table and the
	// control copy in one transaction.
	write func(r *rand.Rand) (string, []any)
	// ignore lists columns not compared; check, if set, checks the migrated
	// table afterwards.
	ignore []string
	check  func(t *testing.T, db *sql.DB)
	// fail: both the plain ALTER and osc must fail with this in the message.
	fail string
}

func runExact(t *testing.T, c exactCase) {
	t.Helper()
	ctl := c.name + "_ctl"
	db := mysqlTestDB(t, c.name, ctl)
	mustExec(t, db, fmt.Sprintf(c.create, c.name))
	// The seed may hold values the server's sql_mode refuses (zero dates
	// under NO_ZERO_DATE): a table may have them from before.
	seed, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range append([]string{"SET SESSION sql_mode = ''"}, c.seed...) {
		if strings.Contains(s, "%s") {
			s = fmt.Sprintf(s, c.name)
		}
		if _, err := seed.ExecContext(context.Background(), s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	if err := seed.Close(); err != nil {
		t.Fatal(err)
	}
	mustExec(t, db, "CREATE TABLE "+ctl+" LIKE "+c.name, "INSERT INTO "+ctl+" SELECT * FROM "+c.name)

	flag := filepath.Join(t.TempDir(), "postpone")
	if err := os.WriteFile(flag, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := engine.Config{Schema: mysqlTestSchema, Table: c.name, Execute: true, ChunkSize: 50, DMLBatchSize: 20, Alter: c.alter,
		PostponeCutOverFlagFile: flag, CutOverLockTimeout: 2 * time.Second, CutOverRetries: 3, StatusInterval: time.Hour}
	conn := mysqlTestConn(t)
	conn.TimeZone = c.zone
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	d, err := NewMySQL(cfg, conn, log)
	if err != nil {
		t.Fatal(err)
	}
	m := engine.New(cfg, d, log, io.Discard)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()

	// Writers: the same statement on both tables, in one transaction.
	wctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var werr error
	writes := 0
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 9))
			for wctx.Err() == nil {
				q, args := c.write(r)
				err := func() error {
					tx, err := db.BeginTx(wctx, nil)
					if err != nil {
						return err
					}
					defer tx.Rollback() // no-op after Commit
					for _, n := range []string{c.name, ctl} {
						if _, err := tx.ExecContext(wctx, fmt.Sprintf(q, n), args...); err != nil {
							return fmt.Errorf("%s: %w", fmt.Sprintf(q, n), err)
						}
					}
					return tx.Commit()
				}()
				if err != nil {
					if wctx.Err() == nil && !isDuplicate(err) {
						mu.Lock()
						werr = err
						mu.Unlock()
						return
					}
					continue
				}
				mu.Lock()
				writes++
				mu.Unlock()
				time.Sleep(time.Millisecond)
			}
		}()
	}
	var runErr error
	finished := false
wait:
	for {
		select {
		case runErr = <-done:
			finished = true
			break wait
		case <-time.After(20 * time.Millisecond):
			if m.State() == engine.StatePostponed {
				time.Sleep(200 * time.Millisecond) // writes while postponed
				break wait
			}
		}
	}
	stop()
	wg.Wait()
	if werr != nil {
		t.Fatalf("writer: %v", werr)
	}
	if !finished {
		if err := os.Remove(flag); err != nil {
			t.Fatal(err)
		}
		runErr = <-done
	}
	t.Logf("%d writes during the migration", writes)

	// The oracle: a plain ALTER in a session of the case's zone and the
	// server's own sql_mode.
	sess, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	var alterErr error
	for _, s := range []string{"SET SESSION time_zone = '" + c.zone + "'", "SET SESSION sql_mode = @@GLOBAL.sql_mode",
		"ALTER TABLE " + ctl + " " + c.alter} {
		if _, alterErr = sess.ExecContext(ctx, s); alterErr != nil {
			break
		}
	}
	if c.fail != "" {
		if alterErr == nil || !strings.Contains(alterErr.Error(), c.fail) {
			t.Fatalf("plain ALTER: %v, want an error with %q", alterErr, c.fail)
		}
		if runErr == nil || !strings.Contains(runErr.Error(), c.fail) {
			t.Fatalf("osc: %v, want an error with %q, as the plain ALTER's", runErr, c.fail)
		}
		return
	}
	if alterErr != nil {
		// Where the server's mode refuses what the case expects it to
		// accept, osc must refuse it with the same error (whose value may
		// be shown with other digits, and whose table is another).
		msg, _, _ := strings.Cut(alterErr.Error(), "'")
		if runErr == nil || !strings.Contains(runErr.Error(), msg) {
			t.Fatalf("plain ALTER failed (%v); osc: %v", alterErr, runErr)
		}
		t.Logf("both failed, as the server's sql_mode wants: %v", alterErr)
		return
	}
	if runErr != nil {
		t.Fatalf("osc: %v", runErr)
	}
	got, cols := dumpRows(t, db, c.name, c.ignore)
	want, wantCols := dumpRows(t, db, ctl, c.ignore)
	if !slices.Equal(cols, wantCols) {
		t.Fatalf("columns %v, the plain ALTER's %v", cols, wantCols)
	}
	if len(got) != len(want) {
		t.Errorf("%d rows, the plain ALTER's table has %d", len(got), len(want))
	}
	bad := 0
	for i := 0; i < len(got) && i < len(want) && bad < 10; i++ {
		if got[i] != want[i] {
			t.Errorf("row %d: osc %s\n          plain ALTER %s", i, got[i], want[i])
			bad++
		}
	}
	if c.check != nil {
		c.check(t, db)
	}
}

// dumpRows returns every row of name in key order (the first column) as the
// text protocol sends it, and the compared columns.
func dumpRows(t *testing.T, db *sql.DB, name string, ignore []string) ([]string, []string) {
	t.Helper()
	rows, err := db.Query("SELECT * FROM " + table.QuoteMySQL(name) + " ORDER BY 1")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	var keep []string
	for _, c := range cols {
		if !slices.Contains(ignore, c) {
			keep = append(keep, c)
		}
	}
	var out []string
	vals := make([]sql.RawBytes, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		for i, v := range vals {
			if slices.Contains(ignore, cols[i]) {
				continue
			}
			if v == nil {
				b.WriteString(cols[i] + "=NULL ")
			} else {
				fmt.Fprintf(&b, "%s=%q ", cols[i], v)
			}
		}
		out = append(out, b.String())
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out, keep
}

func isDuplicate(err error) bool {
	return err != nil && strings.Contains(err.Error(), "Duplicate entry")
}

// randTime is a time between 2001 and 2030 with microseconds, as text.
func randTime(r *rand.Rand) string {
	return time.Unix(978307200+r.Int64N(29*365*86400), r.Int64N(1e6)*1000).UTC().Format("2006-01-02 15:04:05.000000")
}

// A DATETIME becomes a TIMESTAMP and back in the server's time zone, not in
// osc's UTC sessions, in the copy and in applied changes; a TIMESTAMP that
// stays one keeps its instant; a DATETIME added with DEFAULT
// CURRENT_TIMESTAMP gets the clock of that zone.
func TestMySQLExactTimeZone(t *testing.T) {
	const zone = "+02:00"
	runExact(t, exactCase{
		name: "hme_exact_tz",
		create: `CREATE TABLE %s (id INT PRIMARY KEY, dt DATETIME(6) NULL, ts TIMESTAMP(6) NULL, ts3 TIMESTAMP(3) NULL,
			keep TIMESTAMP(6) NULL, d DATE NULL, s VARCHAR(40) NULL) ENGINE=InnoDB`,
		seed: []string{`INSERT INTO %s SELECT seq,
			FROM_UNIXTIME(978307200 + seq * 86399.123457), FROM_UNIXTIME(978307200 + seq * 76543.5),
			FROM_UNIXTIME(978307200 + seq * 65432.25), FROM_UNIXTIME(978307200 + seq * 54321.75),
			DATE(FROM_UNIXTIME(978307200 + seq * 86400)), FROM_UNIXTIME(978307200 + seq * 3600)
			FROM seq_1_to_600`,
			"UPDATE %s SET dt = '0000-00-00 00:00:00', ts = '0000-00-00 00:00:00' WHERE MOD(id, 50) = 0",
			"UPDATE %s SET dt = NULL, ts = NULL, ts3 = NULL, keep = NULL, d = NULL, s = NULL WHERE MOD(id, 70) = 0"},
		alter: "MODIFY dt TIMESTAMP(6) NULL, MODIFY ts DATETIME(6) NULL, MODIFY ts3 VARCHAR(40) NULL, MODIFY d TIMESTAMP NULL, " +
			"MODIFY s TIMESTAMP(3) NULL, ADD COLUMN added DATETIME DEFAULT CURRENT_TIMESTAMP",
		zone: zone,
		write: func(r *rand.Rand) (string, []any) {
			id := 1 + r.IntN(700)
			switch r.IntN(7) {
			case 6:
				// The rows with zero dates and NULLs, as the applier sees them.
				return "UPDATE %s SET keep = ? WHERE id = ?", []any{randTime(r), []int{50, 70}[r.IntN(2)] * (1 + r.IntN(8))}
			case 0:
				return "INSERT INTO %s (id, dt, ts, ts3, keep, d, s) VALUES (?, ?, ?, ?, ?, ?, ?)",
					[]any{700 + r.IntN(100000), randTime(r), randTime(r), randTime(r), randTime(r), randTime(r)[:10], randTime(r)}
			case 1:
				return "DELETE FROM %s WHERE id = ?", []any{id}
			case 2:
				return "UPDATE %s SET id = ? WHERE id = ?", []any{200000 + r.IntN(100000), id}
			default:
				return "UPDATE %s SET dt = ?, ts = ?, ts3 = ?, keep = ?, s = ? WHERE id = ?",
					[]any{randTime(r), randTime(r), randTime(r), randTime(r), randTime(r), id}
			}
		},
		ignore: []string{"added"},
		check: func(t *testing.T, db *sql.DB) {
			// The clock now in the zone, not in UTC.
			var off sql.NullInt64
			if err := db.QueryRow(`SELECT MAX(ABS(TIMESTAMPDIFF(SECOND, added, CONVERT_TZ(NOW(), '+00:00', ?))))
				FROM hme_exact_tz`, zone).Scan(&off); err != nil {
				t.Fatal(err)
			}
			if !off.Valid || off.Int64 > 120 {
				t.Errorf("added DATETIME DEFAULT CURRENT_TIMESTAMP is %v s away from the clock in %s", off, zone)
			}
		},
	})
}

// The same with a zone that has daylight saving time, where a TIMESTAMP
// kept as one must keep its instant in the hour the zone repeats, and a
// DATETIME in that hour becomes the instant the ALTER picks. It needs the
// server's time zone tables.
func TestMySQLExactTimeZoneDST(t *testing.T) {
	const zone = "Europe/Berlin"
	skipWithoutZone(t, zone)
	// 00:30 and 01:30 UTC on 2024-10-27 are both 02:30 in Berlin.
	ambiguous := []string{"2024-10-27 00:30:00.250000", "2024-10-27 01:30:00.250000", "2024-10-27 00:59:59.999999",
		"2024-10-27 01:00:00.000000", "2024-03-31 00:59:59.000000", "2024-03-31 01:00:00.000000"}
	runExact(t, exactCase{
		name:   "hme_exact_dst",
		create: `CREATE TABLE %s (id INT PRIMARY KEY, keep TIMESTAMP(6) NULL, ts TIMESTAMP(6) NULL, dt DATETIME(6) NULL) ENGINE=InnoDB`,
		seed: []string{`INSERT INTO %s SELECT seq, FROM_UNIXTIME(1729985400 + seq * 7.5), FROM_UNIXTIME(1729985400 + seq * 7.5),
			FROM_UNIXTIME(1729900000 + seq * 150) FROM seq_1_to_1000`},
		alter: "MODIFY ts DATETIME(6) NULL, MODIFY dt TIMESTAMP(6) NULL, ADD COLUMN x INT NULL",
		zone:  zone,
		write: func(r *rand.Rand) (string, []any) {
			v := ambiguous[r.IntN(len(ambiguous))]
			switch r.IntN(3) {
			case 0:
				return "INSERT INTO %s (id, keep, ts, dt) VALUES (?, ?, ?, ?)", []any{1000 + r.IntN(100000), v, v, "2024-06-01 12:00:00"}
			default:
				// dt: a local time Berlin has twice, which the ALTER reads as the first.
				return "UPDATE %s SET keep = ?, ts = ?, dt = ? WHERE id = ?", []any{v, v, "2024-10-27 02:" + v[14:], 1 + r.IntN(1000)}
			}
		},
	})
}

// Built and filled under the server's sql_mode: a generated column that
// divides by zero fails as the server's ALTER does (ERROR_FOR_DIVISION_BY_ZERO),
// whether the row was copied or applied.
func TestMySQLExactSQLMode(t *testing.T) {
	db := mysqlTestDB(t)
	var mode string
	if err := db.QueryRow("SELECT @@GLOBAL.sql_mode").Scan(&mode); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(mode, "ERROR_FOR_DIVISION_BY_ZERO") || !strings.Contains(mode, "STRICT") {
		t.Skipf("the server's sql_mode %q has no strict ERROR_FOR_DIVISION_BY_ZERO", mode)
	}
	create := "CREATE TABLE %s (id INT PRIMARY KEY, a INT NOT NULL, b INT NOT NULL) ENGINE=InnoDB"
	alter := "ADD COLUMN c INT GENERATED ALWAYS AS (a / b) STORED"
	t.Run("copy", func(t *testing.T) {
		runExact(t, exactCase{
			name: "hme_exact_div_copy", create: create, alter: alter, zone: "+00:00", fail: "Division by 0",
			seed: []string{"INSERT INTO %s SELECT seq, seq, MOD(seq, 7) FROM seq_1_to_300"},
			write: func(r *rand.Rand) (string, []any) {
				return "UPDATE %s SET a = a + 1 WHERE id = ?", []any{1 + r.IntN(300)}
			},
		})
	})
	t.Run("apply", func(t *testing.T) {
		runExact(t, exactCase{
			name: "hme_exact_div_apply", create: create, alter: alter, zone: "+00:00", fail: "Division by 0",
			seed: []string{"INSERT INTO %s SELECT seq, seq, 1 + MOD(seq, 7) FROM seq_1_to_300"},
			write: func(r *rand.Rand) (string, []any) {
				return "UPDATE %s SET b = ? WHERE id = ?", []any{r.IntN(3), 1 + r.IntN(300)}
			},
		})
	})
}

// A column added NOT NULL without a DEFAULT gets its type's implicit default,
// as from the server's ALTER, in copied and in applied rows.
func TestMySQLExactImplicitDefault(t *testing.T) {
	runExact(t, exactCase{
		name:   "hme_exact_nodef",
		create: "CREATE TABLE %s (id INT PRIMARY KEY, v INT NULL) ENGINE=InnoDB",
		seed:   []string{"INSERT INTO %s SELECT seq, seq FROM seq_1_to_500"},
		alter: "ADD i INT NOT NULL, ADD u BIGINT UNSIGNED NOT NULL, ADD de DECIMAL(6,2) NOT NULL, ADD f DOUBLE NOT NULL, " +
			"ADD bt BIT(3) NOT NULL, ADD vc VARCHAR(5) NOT NULL, ADD ch CHAR(3) NOT NULL, ADD bl BLOB NOT NULL, ADD tx TEXT NOT NULL, " +
			"ADD bn BINARY(3) NOT NULL, ADD vb VARBINARY(3) NOT NULL, ADD e ENUM('x','y') NOT NULL, ADD st SET('a','b') NOT NULL, " +
			"ADD y YEAR NOT NULL, ADD tm TIME(2) NOT NULL, ADD d DATE NOT NULL, ADD dt DATETIME(3) NOT NULL, ADD ts TIMESTAMP NOT NULL, " +
			"ADD nn INT NULL",
		zone: "+00:00",
		write: func(r *rand.Rand) (string, []any) {
			id := 1 + r.IntN(600)
			switch r.IntN(4) {
			case 0:
				return "INSERT INTO %s (id, v) VALUES (?, ?)", []any{600 + r.IntN(100000), r.IntN(1000)}
			case 1:
				return "DELETE FROM %s WHERE id = ?", []any{id}
			default:
				return "UPDATE %s SET v = ? WHERE id = ?", []any{r.IntN(1000), id}
			}
		},
	})
}

// A DATETIME that is no instant in the zone (before TIMESTAMP's range once
// converted, or skipped by the zone's spring forward) fails the migration as
// it fails a strict ALTER, whether it was copied or applied; CONVERT_TZ alone
// would store it unconverted or moved.
func TestMySQLExactTimeZoneRefused(t *testing.T) {
	create := "CREATE TABLE %s (id INT PRIMARY KEY, dt DATETIME NULL) ENGINE=InnoDB"
	seed := "INSERT INTO %s SELECT seq, FROM_UNIXTIME(1000000000 + seq * 86400) FROM seq_1_to_300"
	cases := []struct{ name, zone, bad string }{
		{"range", "+02:00", "1970-01-01 01:00:00"},
		{"gap", "Europe/Berlin", "2024-03-31 02:30:00"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.zone == "Europe/Berlin" {
				skipWithoutZone(t, c.zone)
			}
			t.Run("copy", func(t *testing.T) {
				runExact(t, exactCase{name: "hme_exact_bad_copy", create: create, zone: c.zone,
					seed:  []string{seed, "UPDATE %s SET dt = '" + c.bad + "' WHERE id = 150"},
					alter: "MODIFY dt TIMESTAMP NULL", fail: "Incorrect datetime value",
					write: func(r *rand.Rand) (string, []any) {
						return "UPDATE %s SET dt = dt + INTERVAL 1 SECOND WHERE id = ?", []any{1 + r.IntN(149)}
					},
				})
			})
			t.Run("apply", func(t *testing.T) {
				runExact(t, exactCase{name: "hme_exact_bad_apply", create: create, zone: c.zone, seed: []string{seed},
					alter: "MODIFY dt TIMESTAMP NULL", fail: "Incorrect datetime value",
					write: func(r *rand.Rand) (string, []any) {
						return "UPDATE %s SET dt = ? WHERE id = ?", []any{c.bad, 1 + r.IntN(300)}
					},
				})
			})
		})
	}
}

// skipWithoutZone skips a test that needs the server's time zone tables.
func skipWithoutZone(t *testing.T, zone string) {
	t.Helper()
	db := mysqlTestDB(t)
	var v sql.NullString
	if err := db.QueryRow("SELECT CONVERT_TZ('2024-01-01 00:00:00', '+00:00', ?)", zone).Scan(&v); err != nil {
		t.Fatal(err)
	}
	if !v.Valid {
		t.Skipf("the server has no time zone tables (%s unknown): load them with mariadb-tzinfo-to-sql", zone)
	}
}
