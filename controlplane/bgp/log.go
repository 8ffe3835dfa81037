package bgp

import (
	"context"
	"log/slog"

	gobgplog "github.com/osrg/gobgp/v3/pkg/log"
)

// gobgpLogger feeds gobgp's logging into slog. gobgp is chatty at info level
// (one line per configuration call), so its info becomes slog debug; its
// warnings and errors keep their level.
type gobgpLogger struct{ l *slog.Logger }

func newGobgpLogger(l *slog.Logger) gobgplog.Logger {
	return gobgpLogger{l: l.With("from", "gobgp")}
}

func (g gobgpLogger) emit(level slog.Level, msg string, fields gobgplog.Fields) {
	ctx := context.Background()
	if !g.l.Enabled(ctx, level) {
		return
	}
	attrs := make([]slog.Attr, 0, len(fields))
	for k, v := range fields {
		attrs = append(attrs, slog.Any(k, v))
	}
	g.l.LogAttrs(ctx, level, msg, attrs...)
}

func (g gobgpLogger) Panic(msg string, f gobgplog.Fields) {
	g.emit(slog.LevelError, msg, f)
	panic(msg)
}

// Fatal must not exit the controlplane: gobgp calls it for failures that a
// library user can survive (bad policy), so it is logged as an error.
func (g gobgpLogger) Fatal(msg string, f gobgplog.Fields) { g.emit(slog.LevelError, msg, f) }
func (g gobgpLogger) Error(msg string, f gobgplog.Fields) { g.emit(slog.LevelError, msg, f) }
func (g gobgpLogger) Warn(msg string, f gobgplog.Fields) {
	if msg == expectedWithdrawMiss {
		g.emit(slog.LevelDebug-4, msg, f)
		return
	}
	g.emit(slog.LevelWarn, msg, f)
}

// expectedWithdrawMiss is what gobgp warns for every withdrawal of a path
// its global RIB does not hold. The speaker's import policy keeps learned
// paths out of that RIB on purpose, so every withdrawal (a million when a
// full-table session drops) would warn.
const expectedWithdrawMiss = "No matching path for withdraw found, may be path was not installed into table"

func (g gobgpLogger) Info(msg string, f gobgplog.Fields)  { g.emit(slog.LevelDebug, msg, f) }
func (g gobgpLogger) Debug(msg string, f gobgplog.Fields) { g.emit(slog.LevelDebug-4, msg, f) }
func (g gobgpLogger) SetLevel(gobgplog.LogLevel)          {}

// GetLevel lets gobgp skip building debug messages nobody reads.
func (g gobgpLogger) GetLevel() gobgplog.LogLevel {
	if g.l.Enabled(context.Background(), slog.LevelDebug-4) {
		return gobgplog.DebugLevel
	}
	return gobgplog.InfoLevel
}
