package sdktest

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/keepsake-dev/keepsake/addons/sdk"
)

// bigDump outgrows the SDK's flow-control windows, so a cancelled backup
// is still running when the cancellation arrives.
const bigDump = "48000000"

func fakeOptions(mode string) Options {
	return Options{
		Open:          []sdk.Option{sdk.WithEnv(append(os.Environ(), envFake+"="+mode))},
		Backup:        &sdk.BackupRequest{Request: sdk.Request{Params: map[string]string{}}},
		FailingBackup: &sdk.BackupRequest{Request: sdk.Request{Params: map[string]string{"fail": "true"}}},
		CancelBackup:  &sdk.BackupRequest{Request: sdk.Request{Params: map[string]string{"size": bigDump}}},
		Restore:       &sdk.RestoreRequest{},
		Restored:      &sdk.Restored{ObjectKind: "streams", Objects: []string{"fake"}, Items: map[string]uint64{"bytes": 1000000}},
		Counts:        sdk.Counts{"blocks": 1000},
		Timeout:       2 * time.Minute,
	}
}

func TestConformanceOfAConformingDriver(t *testing.T) {
	Conformance(t, os.Args[0], fakeOptions(modeGood))
}

// TestConformanceOfADriverWithoutVerify: Verify is optional; a driver
// without it conforms, answering Verify with sdk.ErrNoVerify.
func TestConformanceOfADriverWithoutVerify(t *testing.T) {
	Conformance(t, os.Args[0], fakeOptions(modeNoVerify))
}

// TestConformanceCatches runs single checks on drivers that break a rule:
// each check must fail, naming the problem.
func TestConformanceCatches(t *testing.T) {
	tests := map[string]struct {
		mode  string                              // fakeDriver mode
		check func(conformance, testing.TB) error // the check to run
		want  string                              // substring of its error
	}{
		"a failing backup that returns nil": {
			mode:  modeNeverFails,
			check: func(c conformance, t testing.TB) error { return c.failingBackup(t) },
			want:  "the failing backup succeeded",
		},
		"a backup that ignores cancellation": {
			mode:  modeIgnoresCancel,
			check: func(c conformance, t testing.TB) error { return c.cancelBackup(t) },
			want:  "the driver's Backup did not return within",
		},
		"a restore that ignores cancellation": {
			mode:  modeIgnoresCancel,
			check: func(c conformance, t testing.TB) error { return c.cancelRestore(t, goodDump(t)) },
			want:  "the driver's Restore did not return within",
		},
		"a restore that stops before EOF": {
			mode:  modeShortRestore,
			check: func(c conformance, t testing.TB) error { return c.restore(t, goodDump(t)) },
			want:  "before the end of the stream",
		},
		"a restore that names objects without their kind": {
			mode:  modeNamelessObjects,
			check: func(c conformance, t testing.TB) error { return c.restore(t, goodDump(t)) },
			want:  "objects without an object kind",
		},
		"a verify that counts otherwise than the backup": {
			mode:  modeMiscounts,
			check: func(c conformance, t testing.TB) error { return c.verify(t, goodDump(t), true) },
			want:  "Verify counted map[blocks:1001] in the dump, but its Backup said map[blocks:1000]",
		},
		"a driver that declares verify but has no Verify": {
			mode:  modeFalseVerify,
			check: func(c conformance, t testing.TB) error { return c.verify(t, goodDump(t), true) },
			want:  "the driver cannot verify a dump",
		},
		"a backup that counts in a unit that is no word": {
			mode:  modeBadUnit,
			check: func(c conformance, t testing.TB) error { _, err := c.backup(t, t.TempDir()); return err },
			want:  `count unit "Blocks of 1000" must be one lower-case word`,
		},
		"a backup that counts otherwise than expected": {
			mode: modeGood,
			check: func(c conformance, t testing.TB) error {
				c.opts.Counts = sdk.Counts{"blocks": 7}
				_, err := c.backup(t, t.TempDir())
				return err
			},
			want: "the driver's Backup says its dump holds map[blocks:1000], want map[blocks:7]",
		},
		"a restore that says it restored something else": {
			mode: modeGood,
			check: func(c conformance, t testing.TB) error {
				c.opts.Restored = &sdk.Restored{ObjectKind: "streams", Objects: []string{"fake"}, Items: map[string]uint64{"bytes": 7}}
				return c.restore(t, goodDump(t))
			},
			want: "the driver says it restored streams",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			c := conformance{binary: os.Args[0], opts: fakeOptions(tc.mode), stopLimit: 3 * time.Second}
			err := tc.check(c, t)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("check error = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// goodDump is a dump made by the conforming driver.
func goodDump(t testing.TB) Dump {
	t.Helper()
	c := conformance{binary: os.Args[0], opts: fakeOptions(modeGood)}
	dump, err := c.backup(t, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return dump
}

func TestCheckInfo(t *testing.T) {
	valid := func() sdk.Info {
		return sdk.Info{Name: "db", Version: "1.0.0", Capabilities: []sdk.Capability{sdk.CapabilityBackup},
			Parameters: []sdk.Parameter{{Name: "url", Usage: "server URL", Required: true}}}
	}
	tests := map[string]struct {
		change func(*sdk.Info) // what breaks the valid Info
		want   string          // substring of the error; "" for none
	}{
		"valid":              {change: func(*sdk.Info) {}},
		"no version":         {change: func(i *sdk.Info) { i.Version = "" }, want: `version "" must both be set`},
		"no capabilities":    {change: func(i *sdk.Info) { i.Capabilities = nil }, want: "no capabilities"},
		"unknown capability": {change: func(i *sdk.Info) { i.Capabilities[0] = "count" }, want: `unknown capability "count"`},
		"duplicate parameter": {
			change: func(i *sdk.Info) { i.Parameters = append(i.Parameters, sdk.Parameter{Name: "url", Usage: "again"}) },
			want:   "parameter url is declared twice",
		},
		"no usage":             {change: func(i *sdk.Info) { i.Parameters[0].Usage = "" }, want: "parameter url has no usage"},
		"required and default": {change: func(i *sdk.Info) { i.Parameters[0].Default = "x" }, want: "is required and has default"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			info := valid()
			tc.change(&info)
			err := CheckInfo(info)
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("CheckInfo = %v, want %q", err, tc.want)
			}
		})
	}
}
