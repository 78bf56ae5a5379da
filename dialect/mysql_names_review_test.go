package dialect

import (
	"context"
	"strings"
	"testing"
	"time"

	"osc/engine"
	"osc/table"
)

// TestMySQLResumeSwappedForeignKeyOnlyAlter: an --alter that only drops a
// foreign key leaves the definitions without their foreign keys equal
// before and after the swap, so the tables' definitions cannot tell a swap;
// once --ok-to-drop-table dropped the old table, the carried foreign key and
// trigger under their planned names (the checkpoint table keeps them; the
// table cannot have had them before the swap) tell it: the resumed run
// finishes the cleanup and gives them their own names back. A shadow lost
// before any swap (the table keeps its own names) is still refused, nothing
// dropped.
func TestMySQLResumeSwappedForeignKeyOnlyAlter(t *testing.T) {
	for _, swap := range []bool{true, false} {
		name := map[bool]string{true: "rn2_fko", false: "rn2_fkn"}[swap]
		t.Run(name, func(t *testing.T) {
			db := mysqlTestDB(t, name, name+"_p")
			shadow, _, old, ckp := rsmyNames(name)
			ctx := context.Background()
			mustExec(t, db, "CREATE TABLE "+name+"_p (id INT PRIMARY KEY) ENGINE=InnoDB", "INSERT INTO "+name+"_p VALUES (1), (2)",
				"CREATE TABLE "+name+" (id INT PRIMARY KEY, p INT, q INT, n INT, KEY by_p (p), KEY by_q (q), "+
					"CONSTRAINT "+name+"_fk1 FOREIGN KEY (p) REFERENCES "+name+"_p (id), "+
					"CONSTRAINT "+name+"_fk2 FOREIGN KEY (q) REFERENCES "+name+"_p (id)) ENGINE=InnoDB",
				"INSERT INTO "+name+" VALUES (1, 1, 1, 0)",
				"CREATE TRIGGER "+name+"_bi BEFORE INSERT ON "+name+" FOR EACH ROW SET NEW.n = NEW.id + 1")
			alter := "DROP FOREIGN KEY " + name + "_fk1"
			cfg := engine.Config{Schema: mysqlTestSchema, Table: name, Alter: alter, Execute: true, Version: "test", Resume: true,
				OkToDropTable: true, CutOverLockTimeout: time.Second, CutOverRetries: 2}
			kcfg := cfg
			kcfg.Resume = false
			rsmyKilled(t, kcfg, &engine.Checkpoint{Version: "test", Alter: alter, CopyDone: true, Position: rsmyBinlogPos(t, db), Saved: time.Now()})
			if swap {
				// The killed run's cut-over and cleanup, up to the old
				// table's drop.
				mustExec(t, db, "INSERT INTO "+shadow+" (id, p, q, n) SELECT id, p, q, n FROM "+name,
					"ALTER TABLE "+shadow+" ADD CONSTRAINT _"+name+"_fk2 FOREIGN KEY (q) REFERENCES "+name+"_p (id)",
					"CREATE TRIGGER _"+name+"_bi BEFORE INSERT ON "+shadow+" FOR EACH ROW SET NEW.n = NEW.id + 1",
					"RENAME TABLE "+name+" TO "+old+", "+shadow+" TO "+name,
					"DROP TABLE "+old)
			} else {
				mustExec(t, db, "DROP TABLE "+shadow)
			}
			d, err := rsmyDialect(t, cfg)
			if err != nil {
				t.Fatal(err)
			}
			_, ck, err := d.Resume(ctx)
			if !swap {
				if err == nil {
					t.Fatalf("resumed a run whose shadow was lost before any swap: %+v", ck)
				}
				if left := tablesExist(t, db, name, ckp); len(left) != 2 {
					t.Errorf("after the refusal: %v left, want %s and %s", left, name, ckp)
				}
				return
			}
			if err != nil || !ck.CutOver {
				t.Fatalf("resume after the swap: %+v, %v", ck, err)
			}
			if err := d.Cleanup(ctx, true); err != nil {
				t.Fatal(err)
			}
			got := strings.Join(dumpMySQL(t, db, `SELECT CONSTRAINT_NAME FROM information_schema.REFERENTIAL_CONSTRAINTS
				WHERE CONSTRAINT_SCHEMA = '`+mysqlTestSchema+`' AND TABLE_NAME = '`+name+`'`), ",") + " " +
				strings.Join(dumpMySQL(t, db, `SELECT TRIGGER_NAME FROM information_schema.TRIGGERS
				WHERE TRIGGER_SCHEMA = '`+mysqlTestSchema+`' AND EVENT_OBJECT_TABLE = '`+name+`'`), ",")
			if want := "'" + name + "_fk2' '" + name + "_bi'"; got != want {
				t.Errorf("foreign keys and triggers %s, want %s", got, want)
			}
			if left := tablesExist(t, db, ckp, old, shadow); len(left) > 0 {
				t.Errorf("left %v", left)
			}
		})
	}
}

// TestMySQLCheckpointNamesInLatin1Schema: the checkpoint table keeps the
// carried names in the schema's default character set unless told
// otherwise; in a latin1 schema a trigger named in CJK (identifiers are
// UTF-8 whatever the schema's character set) made the checkpoint's INSERT
// fail under a strict sql_mode, and so the migration before it started. The
// checkpoint table is utf8mb4, and its names read back as they were.
func TestMySQLCheckpointNamesInLatin1Schema(t *testing.T) {
	const schema, name = "rn2_l1", "rn2_l1t"
	db := mysqlTestDB(t)
	mustExec(t, db, "DROP DATABASE IF EXISTS "+schema, "CREATE DATABASE "+schema+" CHARACTER SET latin1")
	t.Cleanup(func() { mustExec(t, db, "DROP DATABASE IF EXISTS "+schema) })
	mustExec(t, db, "CREATE TABLE "+schema+"."+name+" (id INT PRIMARY KEY, n INT) ENGINE=InnoDB",
		"CREATE TRIGGER "+schema+".`名_bi` BEFORE INSERT ON "+schema+"."+name+" FOR EACH ROW SET NEW.n = NEW.id + 1")
	cfg := engine.Config{Schema: schema, Table: name, Alter: "ADD COLUMN w INT", Execute: true, Version: "test",
		CutOverLockTimeout: time.Second, CutOverRetries: 2}
	d, err := rsmyDialect(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.CreateShadow(context.Background()); err != nil {
		t.Fatalf("create the shadow and the checkpoint table: %v", err)
	}
	row, err := table.ReadMySQLCheckpoint(context.Background(), db, schema, name)
	if err != nil || row == nil || row.Carried == nil {
		t.Fatalf("checkpoint %+v, %v", row, err)
	}
	if own := row.Carried.Triggers["_名_bi"]; own != "名_bi" {
		t.Errorf("carried triggers %v, want _名_bi for 名_bi", row.Carried.Triggers)
	}
}
