package localtests

import (
	"context"
	"path/filepath"
	"testing"
	"time"
)

// TestForeignKeyCutOverUnderWrites: osc migrates a child table while writers
// change the child and its parent through the cut-over and after it: the
// cut-over adds the carried foreign key to the shadow while the table is
// locked (which holds the parent's writers too) without a writer failing or
// waiting out a lock timeout, and the new table ends with the key under its
// planned name, the old table without one. (The rows are compared by the
// foreign_key_child case, whose writers stop before the cut-over.)
func TestForeignKeyCutOverUnderWrites(t *testing.T) {
	d := mysqlDialect{}
	c, err := loadCase(filepath.Join(d.dir(), "foreign_key_child"))
	if err != nil {
		t.Fatal(err)
	}
	c.name = "fk_cutover_writes"
	bin := requireOsc(t)
	admin := d.connectAdmin(t)
	ctx, cancel := context.WithTimeout(context.Background(), caseTimeout)
	defer cancel()
	ns, db := setupCase(ctx, t, d, admin, c)
	info, err := d.describe(ctx, db, ns, c.table)
	if err != nil {
		t.Fatal(err)
	}
	w, err := caseWorkload(ctx, d, db, c, info)
	if err != nil {
		t.Fatal(err)
	}
	ws, err := w.start(ctx, db, d)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Stop() //nolint:errcheck // on an early exit; the checked Stop below reports the writers' errors
	okBefore := w.ok.Load()
	osc, err := startOsc(ctx, bin, append(d.oscArgs(ns, c.table), "--alter", c.alter, "--execute", "--chunk-size", chunkSize))
	if err != nil {
		t.Fatal(err)
	}
	defer osc.logOutput(t)
	defer osc.stop()
	select {
	case <-osc.done:
	case err := <-ws.errs:
		t.Fatalf("a writer failed while osc ran: %v", err)
	case <-time.After(postponeTimeout + cutOverTimeout):
		t.Fatalf("osc did not finish within %v", postponeTimeout+cutOverTimeout)
	}
	if osc.err != nil {
		t.Fatalf("osc failed: %s", osc.failure())
	}
	time.Sleep(writeAfterPostpone) // writes on the new table, checked by its foreign key
	if err := ws.Stop(); err != nil {
		t.Fatalf("a writer failed: %v", err)
	}
	if n := w.ok.Load() - okBefore; n < minWrites {
		t.Fatalf("only %d writes succeeded (want at least %d): the case ran without load", n, minWrites)
	}
	if !osc.logged("cut-over complete") || !osc.logged("dropped the old table's foreign keys") {
		t.Error("osc's log lacks the cut-over or the old table's foreign keys dropped")
	}
	rows, err := queryRows(ctx, db, `SELECT TABLE_NAME, CONSTRAINT_NAME FROM information_schema.REFERENTIAL_CONSTRAINTS
		WHERE CONSTRAINT_SCHEMA = DATABASE() ORDER BY TABLE_NAME, CONSTRAINT_NAME`, 5)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 || rows[0] != `TABLE_NAME="t" CONSTRAINT_NAME="_fk_parent"` {
		t.Errorf("foreign keys after the migration: %q, want t's _fk_parent only", rows)
	}
	dropCase(ctx, t, d, admin, ns)
}
