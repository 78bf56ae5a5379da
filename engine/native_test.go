package engine

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"osc/throttle"
)

// fakeNative is the fake dialect with a native path: stmt is what Native
// answers ("" with why: the --alter needs a copy).
type fakeNative struct {
	*fakeDialect
	stmt, why string
	runErr    error
}

var _ nativeDialect = (*fakeNative)(nil)

func (d *fakeNative) Native(context.Context) (*NativePlan, error) {
	d.call("Native")
	if d.stmt == "" {
		return &NativePlan{Why: d.why}, nil
	}
	return &NativePlan{Steps: []NativeStep{{SQL: d.stmt, BlocksWriters: true}}}, nil
}

func (d *fakeNative) RunNative(ctx context.Context, o NativeRun) error {
	d.call("RunNative")
	if err := o.BeforeAttempt(ctx); err != nil {
		return err
	}
	o.Step(1, 2, "CREATE UNIQUE INDEX CONCURRENTLY x")
	return d.runErr
}

func (d *fakeNative) NativeThrottle() (throttle.Probe, error) { return d.Throttle() }

// TestStrategy: which path each strategy takes, for an --alter the
// database can carry out natively and for one that needs a copy.
func TestStrategy(t *testing.T) {
	for _, c := range []struct {
		name, strategy, stmt string
		execute              bool
		runErr               error
		want                 []string // the calls from Native on, up to CreateShadow
		refused, failed      bool
	}{
		{name: "copy", strategy: StrategyCopy, stmt: "ALTER …", execute: true, want: []string{"CreateShadow"}},
		{name: "zero value", strategy: "", stmt: "ALTER …", execute: true, want: []string{"CreateShadow"}},
		{name: "auto native", strategy: StrategyAuto, stmt: "ALTER …", execute: true, want: []string{"Native", "RunNative"}},
		{name: "auto dry run", strategy: StrategyAuto, stmt: "ALTER …", want: []string{"Native"}},
		{name: "auto copy", strategy: StrategyAuto, execute: true, want: []string{"Native", "CreateShadow"}},
		{name: "native refused", strategy: StrategyNative, execute: true, want: []string{"Native"}, refused: true},
		{name: "native", strategy: StrategyNative, stmt: "ALTER …", execute: true, want: []string{"Native", "RunNative"}},
		{name: "native fails", strategy: StrategyNative, stmt: "ALTER …", execute: true, runErr: errors.New("lock wait timeout"),
			want: []string{"Native", "RunNative"}, failed: true},
		{name: "auto refused on the table", strategy: StrategyAuto, stmt: "ALTER …", execute: true,
			runErr: &NativeRejectedError{Err: errors.New("too many columns")}, want: []string{"Native", "RunNative", "CreateShadow"}},
		{name: "native refused on the table", strategy: StrategyNative, stmt: "ALTER …", execute: true,
			runErr: &NativeRejectedError{Err: errors.New("too many columns")}, want: []string{"Native", "RunNative"}, refused: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := &fakeNative{fakeDialect: newFake(100), stmt: c.stmt, why: "a new index", runErr: c.runErr}
			cfg := fakeConfig()
			cfg.Strategy, cfg.Execute = c.strategy, c.execute
			m := New(cfg, d, slog.New(slog.DiscardHandler), io.Discard)
			err := m.Run(context.Background())
			var r *RefusedError
			switch {
			case c.refused && !errors.As(err, &r):
				t.Errorf("err %v, want a refusal", err)
			case c.failed && (err == nil || errors.As(err, &r)):
				t.Errorf("err %v, want a failure", err)
			case !c.refused && !c.failed && err != nil:
				t.Errorf("err %v", err)
			}
			calls := d.called()
			i := slices.Index(calls, "Inspect")
			var got []string
			for _, call := range calls[i+1:] {
				if slices.Contains([]string{"Native", "RunNative", "CreateShadow"}, call) {
					got = append(got, call)
				}
			}
			if !slices.Equal(got, c.want) {
				t.Errorf("calls %v, want %v", got, c.want)
			}
			if c.stmt != "" && c.strategy != StrategyCopy && c.strategy != "" && !c.failed && !c.refused && m.State() != StateDone {
				t.Errorf("state %s, want done", m.State())
			}
		})
	}
}

// TestNativeStatus: the status line says the native path runs, and which
// step; the JSON status names the step too.
func TestNativeStatus(t *testing.T) {
	d := &fakeNative{fakeDialect: newFake(100), stmt: "ALTER …"}
	cfg := fakeConfig()
	cfg.Strategy, cfg.Execute = StrategyNative, true
	var out bytes.Buffer
	m := New(cfg, d, slog.New(slog.DiscardHandler), &out)
	if err := m.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	const want = "Native (no copy): step 1 of 2: CREATE UNIQUE INDEX CONCURRENTLY x; Lag: "
	if !strings.Contains(out.String(), want) {
		t.Errorf("status lines lack %q:\n%s", want, out.String())
	}
	if j := m.Status().JSON(); !strings.Contains(j, `"native_step":"step 1 of 2: CREATE UNIQUE INDEX CONCURRENTLY x"`) {
		t.Errorf("JSON status %s lacks the native step", j)
	}
}
