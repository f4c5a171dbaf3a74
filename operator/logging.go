package operator

import (
	"io"
	"log/slog"

	"github.com/go-logr/logr"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
)

// NewLogger returns the operator's logger: one JSON object a line on w, at
// level and above. logr's verbosity V(n) is slog's level -n, which slog
// names "DEBUG+3" and the like; here every level below info is "DEBUG".
func NewLogger(w io.Writer, level slog.Level) logr.Logger {
	return logr.FromSlogHandler(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level, ReplaceAttr: nameLevel}))
}

func nameLevel(groups []string, a slog.Attr) slog.Attr {
	if len(groups) > 0 || a.Key != slog.LevelKey {
		return a
	}
	if l, ok := a.Value.Any().(slog.Level); ok && l < slog.LevelInfo {
		return slog.String(slog.LevelKey, "DEBUG")
	}
	return a
}

// installLogger makes logger the process's logger for the libraries that
// log through globals: controller-runtime (whose informers otherwise print
// "log.SetLogger(...) was never called" with a goroutine stack) and klog
// (client-go's leader election), so every line the operator writes is one
// JSON object.
func installLogger(logger logr.Logger) {
	ctrl.SetLogger(logger)
	klog.SetLoggerWithOptions(logger, klog.ContextualLogger(true))
}
