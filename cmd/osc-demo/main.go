package main

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	_ "github.com/go-sql-driver/mysql"
	_ "github.com/jackc/pgx/v5/stdlib"

	"osc/internal/load"
)

func main() {
	rows := flag.Int("rows", 200000, "rows in the demo table")
	rate := flag.Int("rate", 200, "write transactions per second during the migration")
	oscBin := flag.String("osc", "bin/osc", "path of the osc binary")
	only := flag.String("only", "", `run only "mysql" or "postgres"`)
	flag.Parse()

	demos := []demo{mysqlDemo(), postgresDemo()}
	for _, d := range demos {
		if *only != "" && *only != d.name {
			continue
		}
		if err := d.run(*oscBin, *rows, *rate); err != nil {
			fmt.Fprintf(os.Stderr, "osc-demo: %s: %v\n", d.name, err)
			os.Exit(1)
		}
	}
}

// demo is one database's demo: its connection and its SQL.
type demo struct {
	name, driver, dsn string
	setup             []string                  // statements creating and seeding the table; {rows} = rows
	write             func(r *rand.Rand) string // one write transaction's statement
	oscArgs           []string                  // how osc reaches the table
	alter             string                    // the migration
	check             string                    // query printing the result
}

func env(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func mysqlDemo() demo {
	host, port, user := env("OSC_MYSQL_HOST", "127.0.0.1"), env("OSC_MYSQL_PORT", "13306"), env("OSC_MYSQL_USER", "root")
	return demo{
		name:   "mysql",
		driver: "mysql",
		dsn:    fmt.Sprintf("%s@tcp(%s:%s)/osc_demo", user, host, port),
		setup: []string{
			"DROP TABLE IF EXISTS orders, orders_osc_old, orders_osc_new, orders_osc_log",
			`CREATE TABLE orders (
				id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
				customer_id INT NOT NULL,
				status VARCHAR(20) NOT NULL,
				amount DECIMAL(12,2) NOT NULL,
				note VARCHAR(255) NULL,
				created_at DATETIME(6) NOT NULL)`,
			`INSERT INTO orders (customer_id, status, amount, note, created_at)
				SELECT seq % 5000, ELT(1 + seq % 4, 'new', 'paid', 'shipped', 'done'), (seq % 10000) / 100,
				       CONCAT('order ', seq), NOW(6) - INTERVAL seq SECOND
				FROM seq_1_to_{rows}`,
		},
		write: func(r *rand.Rand) string {
			id := r.IntN(250000) + 1
			switch r.IntN(4) {
			case 0:
				return fmt.Sprintf("INSERT INTO orders (customer_id, status, amount, note, created_at) VALUES (%d, 'new', 9.99, 'live insert', NOW(6))", r.IntN(5000))
			case 1:
				return fmt.Sprintf("DELETE FROM orders WHERE id = %d", id)
			default:
				return fmt.Sprintf("UPDATE orders SET status = 'paid', amount = amount + 1 WHERE id = %d", id)
			}
		},
		oscArgs: []string{"--host", host, "--port", port, "--user", user, "--database", "osc_demo", "--table", "orders"},
		alter:   "ADD COLUMN display_name VARCHAR(255) NULL, ADD INDEX idx_customer (customer_id)",
		check:   "SELECT COUNT(*), SUM(display_name IS NULL), (SELECT COUNT(*) FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = 'osc_demo' AND TABLE_NAME = 'orders' AND INDEX_NAME = 'idx_customer') FROM orders",
	}
}

func postgresDemo() demo {
	dsn := env("OSC_PG_DSN", "postgres://postgres@127.0.0.1:15432/osc_test?sslmode=disable")
	return demo{
		name:   "postgres",
		driver: "pgx",
		dsn:    dsn,
		setup: []string{
			"DROP TABLE IF EXISTS public.users, public._users_old, public._users_osc",
			`CREATE TABLE public.users (
				id bigserial PRIMARY KEY,
				full_name text NOT NULL,
				email text NOT NULL,
				plan text NOT NULL DEFAULT 'free',
				created_at timestamptz NOT NULL DEFAULT now())`,
			`INSERT INTO public.users (full_name, email, plan, created_at)
				SELECT 'User ' || g || ' Example', 'user' || g || '@example.com',
				       (ARRAY['free','pro','team'])[1 + g % 3], now() - g * interval '1 minute'
				FROM generate_series(1, {rows}) g`,
			"ANALYZE public.users",
		},
		write: func(r *rand.Rand) string {
			id := r.IntN(250000) + 1
			switch r.IntN(4) {
			case 0:
				return "INSERT INTO public.users (full_name, email) VALUES ('Live Insert', 'live@example.com')"
			case 1:
				return fmt.Sprintf("DELETE FROM public.users WHERE id = %d", id)
			default:
				return fmt.Sprintf("UPDATE public.users SET plan = 'pro' WHERE id = %d", id)
			}
		},
		oscArgs: []string{"--dsn", dsn, "--table", "public.users"},
		// The type change makes it a copy: added columns alone would be
		// metadata only, which osc does natively in an instant.
		alter: "ADD COLUMN first_name text, ADD COLUMN last_name text, ALTER COLUMN plan TYPE varchar(10)",
		check: "SELECT COUNT(*), COUNT(*) FILTER (WHERE first_name IS NULL), (SELECT COUNT(*) FROM information_schema.columns WHERE table_name = 'users' AND column_name IN ('first_name','last_name')) FROM public.users",
	}
}

func (d demo) run(oscBin string, rows, rate int) error {
	ctx := context.Background()
	db, err := sql.Open(d.driver, d.dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	db.SetMaxOpenConns(8)
	if err := db.PingContext(ctx); err != nil {
		return fmt.Errorf("connect (is the sandbox up? bash localtests/sandbox.sh up): %w", err)
	}
	fmt.Printf("\n=== %s: building a table of %d rows\n", d.name, rows)
	for _, s := range d.setup {
		if _, err := db.ExecContext(ctx, strings.ReplaceAll(s, "{rows}", strconv.Itoa(rows))); err != nil {
			return fmt.Errorf("setup: %w", err)
		}
	}

	fmt.Printf("=== %s: starting a live write load of %d transactions/s\n", d.name, rate)
	w, err := load.Start(ctx, db, d.write, rate)
	if err != nil {
		return err
	}
	time.Sleep(time.Second)

	args := append(append([]string{}, d.oscArgs...), "--alter", d.alter, "--execute", "--status-interval", "2")
	fmt.Printf("=== %s: %s %s\n", d.name, oscBin, quoteArgs(args))
	cmd := exec.Command(oscBin, args...) //nolint:gosec // G204: the osc binary the developer named (--osc)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	start := time.Now()
	oscErr := cmd.Run()
	took := time.Since(start)
	time.Sleep(time.Second) // writes keep landing on the new table
	st := w.Stop()

	fmt.Printf("=== %s: osc finished in %s\n", d.name, took.Round(time.Millisecond))
	fmt.Printf("    writers: %d transactions, %d errors, p99 %s, slowest %s\n",
		st.Count, st.Errors, st.P99.Round(time.Millisecond), st.Max.Round(time.Millisecond))
	if st.FirstErr != nil {
		fmt.Printf("    first writer error: %v\n", st.FirstErr)
	}
	var n, nulls, added int64
	if err := db.QueryRowContext(ctx, d.check).Scan(&n, &nulls, &added); err != nil {
		return fmt.Errorf("check: %w", err)
	}
	fmt.Printf("    table now: %d rows, new column(s)/index present: %d\n", n, added)
	if oscErr != nil {
		return fmt.Errorf("osc failed: %w", oscErr)
	}
	if st.Errors > 0 {
		return errors.New("a writer saw an error during the migration")
	}
	return nil
}

func quoteArgs(args []string) string {
	s := ""
	for i, a := range args {
		if i > 0 {
			s += " "
		}
		if a == "" || strings.ContainsAny(a, " \t") {
			s += fmt.Sprintf("%q", a)
		} else {
			s += a
		}
	}
	return s
}
