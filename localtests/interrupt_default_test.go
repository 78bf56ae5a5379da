package localtests

import (
	"context"
	"path/filepath"
	"syscall"
	"testing"
)

// TestInterruptAddedDefault stops osc with SIGINT in a run without
// checkpoints whose --alter adds a column with DEFAULT now() next to a type
// change that rewrites the table: osc makes its checkpoint table then only
// to keep that DEFAULT's one value (table/postgres_added.go), and must drop
// it like everything else.
func TestInterruptAddedDefault(t *testing.T) {
	for _, d := range dialects() {
		if _, ok := d.(pgDialect); !ok {
			continue
		}
		t.Run(d.dir(), func(t *testing.T) {
			t.Parallel()
			c, err := loadCase(filepath.Join(d.dir(), "add_column"))
			if err != nil {
				t.Fatal(err)
			}
			c.name = "interrupt_added_default"
			c.alter = "ADD COLUMN at timestamptz DEFAULT now(), ALTER COLUMN qty TYPE bigint"
			c.extra = []string{"--checkpoint=false"}
			runStopped(t, d, c, "interrupted", func(p *oscProcess) error {
				db, err := d.open("osct_" + c.name)
				if err != nil {
					return err
				}
				defer db.Close()
				var kept bool
				if err := db.QueryRowContext(context.Background(), `SELECT EXISTS (SELECT 1 FROM pg_attribute
					WHERE attrelid = to_regclass('_t_osk') AND attname LIKE 'osc\_fill\_%' AND atthasmissing)`).Scan(&kept); err != nil {
					return err
				}
				if !kept {
					t.Error("osc keeps no value for the added column in its checkpoint table _t_osk")
				}
				return p.signal(syscall.SIGINT)
			})
		})
	}
}
