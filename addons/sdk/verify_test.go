package sdk

import (
	"context"
	"errors"
	"io"
	"maps"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"
)

// TestBackupReportsCounts: the counts a driver's Backup sets reach the
// host after the dump; a Backup that sets none reports nil.
func TestBackupReportsCounts(t *testing.T) {
	c := mustOpen(t)
	const size = 3<<20 + 1 // several chunks; the last block is short
	res, err := c.Backup(context.Background(), backupReq(map[string]string{"size": strconv.Itoa(size), "count": "true"}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if want := (Counts{"blocks": blocks(size)}); res.Bytes != size || !maps.Equal(res.Counts, want) {
		t.Fatalf("backup = %d bytes, counts %v; want %d bytes, counts %v", res.Bytes, res.Counts, size, want)
	}
	res, err = c.Backup(context.Background(), backupReq(map[string]string{"size": "10"}), io.Discard)
	if err != nil || res.Counts != nil {
		t.Fatalf("a backup that counts nothing reported %v (%v), want nil", res.Counts, err)
	}
}

// TestVerifyCountsTheDump: Verify streams a dump into the driver and
// returns what it counted; the driver announces the capability.
func TestVerifyCountsTheDump(t *testing.T) {
	c := mustOpen(t)
	info, err := c.Info(context.Background())
	if err != nil || !slices.Contains(info.Capabilities, CapabilityVerify) {
		t.Fatalf("Info of a Verifier = %v (%v), want capability verify added", info.Capabilities, err)
	}
	const size = 5<<20 + 999
	res, err := c.Verify(context.Background(), &VerifyRequest{}, io.LimitReader(generator(3), size))
	if err != nil {
		t.Fatal(err)
	}
	if want := (Counts{"blocks": blocks(size)}); res.Bytes != size || !maps.Equal(res.Counts, want) {
		t.Fatalf("verify = %d bytes, counts %v; want %d bytes, counts %v", res.Bytes, res.Counts, size, want)
	}
}

// TestVerifyOfADriverWithoutVerify: a driver that is no Verifier answers
// with ErrNoVerify and does not announce the capability.
func TestVerifyOfADriverWithoutVerify(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	env := append(os.Environ(), envDriverVersion+"="+strconv.Itoa(ProtocolVersion), envPlainDriver+"=1")
	c, err := Open(ctx, os.Args[0], WithEnv(env), WithLogOutput(io.Discard))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	info, err := c.Info(ctx)
	if err != nil || slices.Contains(info.Capabilities, CapabilityVerify) {
		t.Fatalf("Info = %v (%v), want no capability verify", info.Capabilities, err)
	}
	_, err = c.Verify(ctx, &VerifyRequest{}, io.LimitReader(generator(3), 3<<20))
	if !errors.Is(err, ErrNoVerify) {
		t.Fatalf("Verify = %v, want ErrNoVerify", err)
	}
	assertError(t, err, "driver ", "verify: the driver cannot verify a dump")
}

func TestVerifyFailures(t *testing.T) {
	tests := map[string]struct {
		params map[string]string // driver parameters
		source io.Reader         // what the host streams
		want   []string          // substrings the error must contain
	}{
		"driver finds the dump broken": {
			params: map[string]string{"fault": "error", "fault-after": "2000000"},
			source: io.LimitReader(generator(3), 3<<20),
			want:   []string{"verify: block 2000 does not parse"},
		},
		"panic in Verify": {
			params: map[string]string{"fault": "panic"},
			source: io.LimitReader(generator(3), 100),
			want:   []string{"driver panicked in Verify: boom in verify"},
		},
		"host source truncated": {
			source: &failingReader{n: 2<<20 + 7, err: io.ErrUnexpectedEOF},
			want:   []string{"read restore stream: unexpected EOF"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c := mustOpen(t)
			_, err := c.Verify(context.Background(), &VerifyRequest{Request: Request{Params: tc.params}}, tc.source)
			assertError(t, err, tc.want...)
		})
	}
}
