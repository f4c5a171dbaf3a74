// Package physical backs InfluxDB 1.x up as files: `influxd backup` (the
// legacy format, the one the offline `influxd restore -metadir -datadir`
// takes) into a staging directory, streamed as a deterministic tar, and the
// offline restore of such a stream into a stopped server's directories.
package physical

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// epoch is the modification time of every tar entry: unchanged files then
// make unchanged bytes, which the repository deduplicates.
var epoch = time.Unix(0, 0).UTC()

// WriteTar writes the regular files under dir to w as a tar stream in
// sorted path order, with fixed mtime, owner and mode, so that the same
// files always give the same bytes.
func WriteTar(w io.Writer, dir string) error {
	var names []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			rel, err := filepath.Rel(dir, path)
			if err != nil {
				return err
			}
			names = append(names, filepath.ToSlash(rel))
		} else if !d.IsDir() {
			return fmt.Errorf("%s is neither a file nor a directory", path)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("list %s: %w", dir, err)
	}
	slices.Sort(names)
	tw := tar.NewWriter(w)
	for _, name := range names {
		if err := addFile(tw, dir, name); err != nil {
			return err
		}
	}
	return tw.Close()
}

func addFile(tw *tar.Writer, dir, name string) error {
	f, err := os.Open(filepath.Join(dir, filepath.FromSlash(name)))
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	hdr := &tar.Header{Typeflag: tar.TypeReg, Name: name, Size: st.Size(), Mode: 0o644, ModTime: epoch, Format: tar.FormatPAX}
	if err := tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("tar %s: %w", name, err)
	}
	if _, err := io.Copy(tw, f); err != nil {
		return fmt.Errorf("tar %s: %w", name, err)
	}
	return nil
}

// ReadTar extracts a stream WriteTar made into dir, reading r to its end.
// Only regular files below dir are accepted: an entry that would land
// outside it, or of another type, is an error.
func ReadTar(r io.Reader, dir string) error {
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("read tar: %w", err)
		}
		if err := extract(tr, hdr, dir); err != nil {
			return err
		}
	}
	// Trailing padding after the end-of-archive blocks: the SDK wants the
	// stream read to its end.
	_, err := io.Copy(io.Discard, r)
	return err
}

func extract(tr *tar.Reader, hdr *tar.Header, dir string) error {
	name := filepath.FromSlash(hdr.Name)
	if hdr.Typeflag != tar.TypeReg || !filepath.IsLocal(name) || strings.HasPrefix(hdr.Name, "/") {
		return fmt.Errorf("tar entry %q: want a regular file below the backup directory", hdr.Name)
	}
	path := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("extract %s: %w", hdr.Name, err)
	}
	if _, err := io.Copy(f, tr); err != nil {
		f.Close()
		return fmt.Errorf("extract %s: %w", hdr.Name, err)
	}
	return f.Close()
}
