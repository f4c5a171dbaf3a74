package steps

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log"
)

type recorder struct{ ran []string }

func (r *recorder) first(context.Context, *int) (*ctrl.Result, error) {
	r.ran = append(r.ran, "first")
	return nil, nil
}

func (r *recorder) wait(context.Context, *int) (*ctrl.Result, error) {
	r.ran = append(r.ran, "wait")
	return &ctrl.Result{RequeueAfter: time.Minute}, nil
}

func (r *recorder) broken(context.Context, *int) (*ctrl.Result, error) {
	r.ran = append(r.ran, "broken")
	return nil, errors.New("broken step")
}

func TestRun(t *testing.T) {
	cases := map[string]struct {
		steps   func(r *recorder) []Step[*int] // the pass
		wantRan string                         // steps that ran, in order
		wantLog string                         // text the debug log must hold
		wantErr bool                           // whether Run returns an error
	}{
		"a step stops the pass": {
			steps:   func(r *recorder) []Step[*int] { return []Step[*int]{r.first, r.wait, r.broken} },
			wantRan: "first,wait", wantLog: `"step":"wait","requeueAfter":"1m0s"`,
		},
		"an error stops the pass, unlogged": {
			steps:   func(r *recorder) []Step[*int] { return []Step[*int]{r.broken, r.first} },
			wantRan: "broken", wantErr: true,
		},
		"every step runs": {
			steps:   func(r *recorder) []Step[*int] { return []Step[*int]{r.first, r.first} },
			wantRan: "first,first", wantLog: "pass went through every step",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			var out bytes.Buffer
			logger := logr.FromSlogHandler(slog.NewJSONHandler(&out, &slog.HandlerOptions{Level: slog.LevelDebug}))
			r := &recorder{}
			n := 0
			_, err := Run(log.IntoContext(context.Background(), logger), &n, tc.steps(r)...)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if got := strings.Join(r.ran, ","); got != tc.wantRan {
				t.Errorf("ran %s, want %s", got, tc.wantRan)
			}
			if tc.wantLog == "" && out.Len() > 0 || !strings.Contains(out.String(), tc.wantLog) {
				t.Errorf("debug log %q, want %q", out.String(), tc.wantLog)
			}
		})
	}
}
