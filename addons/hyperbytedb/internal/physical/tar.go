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
// files always give the same bytes. Empty directories are entries too (a
// directory the backup holds, however empty, is restored). The paths in
// last (relative, slash-separated) come after all others, in their order:
// a file that changes every backup (a manifest's timestamp) then leaves
// the bytes before it unchanged.
func WriteTar(w io.Writer, dir string, last ...string) error {
	files, empty, err := list(dir)
	if err != nil {
		return fmt.Errorf("list %s: %w", dir, err)
	}
	tw := tar.NewWriter(w)
	for _, name := range order(append(files, empty...), last) {
		if err := addEntry(tw, dir, name, slices.Contains(empty, name)); err != nil {
			return err
		}
	}
	return tw.Close()
}

// order sorts names, moving those in last to the end, in last's order.
func order(names, last []string) []string {
	slices.Sort(names)
	out := slices.DeleteFunc(slices.Clone(names), func(n string) bool { return slices.Contains(last, n) })
	for _, n := range last {
		if slices.Contains(names, n) {
			out = append(out, n)
		}
	}
	return out
}

// list returns the regular files and the empty directories below dir,
// relative and slash-separated. Anything else is an error.
func list(dir string) (files, empty []string, err error) {
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		switch {
		case d.Type().IsRegular():
			files = append(files, filepath.ToSlash(rel))
		case !d.IsDir():
			return fmt.Errorf("%s is neither a file nor a directory", path)
		case rel != ".":
			if entries, err := os.ReadDir(path); err != nil || len(entries) == 0 {
				empty = append(empty, filepath.ToSlash(rel))
				return err
			}
		}
		return nil
	})
	return files, empty, err
}

// addEntry writes the file name, or the empty directory name, of dir.
func addEntry(tw *tar.Writer, dir, name string, isDir bool) error {
	if !isDir {
		return addFile(tw, dir, name)
	}
	hdr := &tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: 0o755, ModTime: epoch, Format: tar.FormatPAX}
	if err := tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("tar %s: %w", name, err)
	}
	return nil
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
// Only regular files and directories below dir are accepted: an entry that would land
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
	name := filepath.FromSlash(strings.TrimSuffix(hdr.Name, "/"))
	typeOK := hdr.Typeflag == tar.TypeReg || hdr.Typeflag == tar.TypeDir
	if !typeOK || !filepath.IsLocal(name) || strings.HasPrefix(hdr.Name, "/") {
		return fmt.Errorf("tar entry %q: want a regular file or directory below the backup directory", hdr.Name)
	}
	path := filepath.Join(dir, name)
	if hdr.Typeflag == tar.TypeDir {
		return os.MkdirAll(path, 0o755)
	}
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
