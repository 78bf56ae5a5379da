package probe

import (
	"context"
	"database/sql"
	"errors"
	"slices"
	"strings"
	"time"
)

// secondsBehind is the lag the replica reports itself
// (Seconds_Behind_Master, whole seconds): what the throttle reads on the
// native path, which has no changelog table to write heartbeats to, and what
// the preflight report shows.
func (p *MySQLProbe) secondsBehind(ctx context.Context, addr string) (time.Duration, error) {
	db, err := p.replica(ctx, addr)
	if err != nil {
		return 0, errors.New("cannot connect: " + err.Error())
	}
	rows, err := db.QueryContext(ctx, "SHOW SLAVE STATUS")
	if err != nil {
		return 0, errors.New("SHOW SLAVE STATUS: " + err.Error())
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return 0, errors.New("SHOW SLAVE STATUS: " + err.Error())
	}
	lag := slices.IndexFunc(cols, func(c string) bool { return strings.EqualFold(c, "Seconds_Behind_Master") })
	if lag < 0 || !rows.Next() {
		if err := rows.Err(); err != nil {
			return 0, errors.New("SHOW SLAVE STATUS: " + err.Error())
		}
		return 0, errors.New("not replicating")
	}
	vals := make([]sql.NullInt64, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
		if i != lag {
			ptrs[i] = new(sql.RawBytes)
		}
	}
	if err := rows.Scan(ptrs...); err != nil {
		return 0, errors.New("SHOW SLAVE STATUS: " + err.Error())
	}
	if !vals[lag].Valid {
		return 0, errors.New("replication stopped: Seconds_Behind_Master is NULL")
	}
	return time.Duration(vals[lag].Int64) * time.Second, nil
}
