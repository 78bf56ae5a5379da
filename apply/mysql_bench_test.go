package apply_test

import (
	"context"
	"fmt"
	"testing"

	"osc/apply"
	"osc/cdc"
	"osc/internal/testdb"
)

// BenchmarkMySQLApply times the applier alone (capture excluded) on the
// changes of one UPDATE of every row of osc-bench's table, applied in
// batches of each size; it reports changes/s.
func BenchmarkMySQLApply(b *testing.B) {
	db, cfg := myOpenDB(b)
	const orig, shadow, rows = "applyspeed_bench", "_applyspeed_bench_gho", 20000
	testdb.DropMySQLTables(b, db, orig, shadow)
	b.Cleanup(func() { testdb.DropMySQLTables(b, db, orig, shadow, "_"+orig+"_ghc") })
	testdb.ExecMySQL(b, db, "CREATE TABLE "+orig+` (
		id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY, account_id INT NOT NULL, qty INT NOT NULL,
		status VARCHAR(16) NOT NULL, label VARCHAR(64) NOT NULL, price DECIMAL(12,2) NOT NULL,
		created_at DATETIME NOT NULL, updated_at DATETIME NOT NULL) ENGINE=InnoDB`)
	testdb.ExecMySQL(b, db, "CREATE TABLE "+shadow+" LIKE "+orig)
	testdb.ExecMySQL(b, db, "INSERT INTO "+orig+` (account_id, qty, status, label, price, created_at, updated_at)
		SELECT seq % 50000, seq % 100, ELT(1 + seq % 4, 'new', 'paid', 'shipped', 'done'),
		CONCAT('item ', seq, ' ', MD5(seq)), (seq % 100000) / 100,
		'2024-01-01' + INTERVAL seq SECOND, '2024-01-01' + INTERVAL seq SECOND
		FROM seq_1_to_`+fmt.Sprint(rows))
	testdb.ExecMySQL(b, db, "INSERT INTO "+shadow+" SELECT * FROM "+orig)
	p := myLoadPlan(b, db, orig, shadow)
	src := myStartSource(b, db, cfg, p)
	testdb.ExecMySQL(b, db, "UPDATE "+orig+" SET qty = qty + 1")
	if err := src.EmitMarker(context.Background(), "bench"); err != nil {
		b.Fatal(err)
	}
	changes := myReadUntil(b, src, "bench")
	changes = changes[:len(changes)-1]
	apply.BenchBatches(b, changes, func() interface {
		Apply(context.Context, []cdc.Change) error
	} {
		return apply.NewMySQL(db, p)
	})
}
