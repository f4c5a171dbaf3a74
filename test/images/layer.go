package main

import (
	"archive/tar"
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// epoch is the modification time of every entry, so the same inputs give the
// same layer digest.
var epoch = time.Unix(0, 0).UTC()

// baseFiles are the small files every image gets: a passwd/group naming the
// users Keepsake's pods run as, and empty files the runtime bind-mounts over.
var baseFiles = map[string]string{
	"/etc/passwd": "root:x:0:0:root:/root:/bin/sh\n" +
		"keepsake:x:65532:65532:keepsake:/home/keepsake:/bin/sh\n" +
		"nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
	"/etc/group":         "root:x:0:\nkeepsake:x:65532:\nnogroup:x:65534:\n",
	"/etc/nsswitch.conf": "hosts: files dns\n",
	"/etc/hosts":         "",
	"/etc/hostname":      "",
	"/etc/resolv.conf":   "",
}

// baseDirs exist in every image: runc mounts /proc, /dev and /sys onto them,
// and sandboxes run with a read-only root where it cannot create them.
var baseDirs = map[string]int64{
	"/proc": 0o555, "/dev": 0o755, "/sys": 0o555, "/etc": 0o755,
	"/tmp": 0o1777, "/root": 0o700, "/home/keepsake": 0o755, "/var/tmp": 0o1777,
}

// tarWriter writes a layer tarball, adding each parent directory once.
type tarWriter struct {
	tw   *tar.Writer
	dirs map[string]bool
}

func newTarWriter(w io.Writer) *tarWriter {
	return &tarWriter{tw: tar.NewWriter(w), dirs: map[string]bool{"/": true}}
}

func (t *tarWriter) dir(p string, mode int64) error {
	p = path.Clean(p)
	if t.dirs[p] {
		return nil
	}
	if err := t.dir(path.Dir(p), 0o755); err != nil {
		return err
	}
	t.dirs[p] = true
	return t.tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: strings.TrimPrefix(p, "/") + "/",
		Mode: mode, ModTime: epoch, Format: tar.FormatPAX})
}

func (t *tarWriter) file(p string, mode int64, data io.Reader, size int64) error {
	if err := t.dir(path.Dir(p), 0o755); err != nil {
		return err
	}
	hdr := &tar.Header{Typeflag: tar.TypeReg, Name: strings.TrimPrefix(path.Clean(p), "/"),
		Mode: mode, Size: size, ModTime: epoch, Format: tar.FormatPAX}
	if err := t.tw.WriteHeader(hdr); err != nil {
		return err
	}
	_, err := io.Copy(t.tw, data)
	return err
}

func (t *tarWriter) symlink(p, target string) error {
	if err := t.dir(path.Dir(p), 0o755); err != nil {
		return err
	}
	return t.tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: strings.TrimPrefix(path.Clean(p), "/"),
		Linkname: target, Mode: 0o777, ModTime: epoch, Format: tar.FormatPAX})
}

// hostFile copies a file of this machine into the layer, following symlinks.
func (t *tarWriter) hostFile(src, dst string, mode int64) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if mode == 0 {
		mode = int64(st.Mode().Perm())
	}
	return t.file(dst, mode, f, st.Size())
}

func (t *tarWriter) close() error { return t.tw.Close() }

// baseLayer returns the tarball shared by every image.
func baseLayer() ([]byte, error) {
	var buf bytes.Buffer
	t := newTarWriter(&buf)
	for _, d := range sortedKeys(baseDirs) {
		if err := t.dir(d, baseDirs[d]); err != nil {
			return nil, err
		}
	}
	for _, p := range sortedKeys(baseFiles) {
		if err := t.file(p, 0o644, strings.NewReader(baseFiles[p]), int64(len(baseFiles[p]))); err != nil {
			return nil, err
		}
	}
	return buf.Bytes(), t.close()
}

// contentLayer returns the tarball holding a recipe's files, links and, for
// dynamically linked programs (Debian's influxd, a cgo-built minio), the ELF
// interpreter and libraries ldd resolves for them on this machine.
func contentLayer(r recipe, sources map[string]string) ([]byte, error) {
	var buf bytes.Buffer
	t := newTarWriter(&buf)
	var libs []string
	for _, f := range r.files {
		src := sources[f.dst]
		if err := t.hostFile(src, f.dst, f.mode); err != nil {
			return nil, fmt.Errorf("add %s as %s: %w", src, f.dst, err)
		}
		deps, err := sharedLibraries(src)
		if err != nil {
			return nil, err
		}
		libs = append(libs, deps...)
	}
	for _, lib := range dedupe(libs) {
		if err := t.hostFile(lib, lib, 0o755); err != nil {
			return nil, fmt.Errorf("add library %s: %w", lib, err)
		}
	}
	for _, link := range sortedKeys(r.symlinks) {
		if err := t.symlink(link, r.symlinks[link]); err != nil {
			return nil, err
		}
	}
	return buf.Bytes(), t.close()
}

// sharedLibraries lists the ELF interpreter and the shared libraries a
// program loads, as ldd resolves them on this machine. A static program has
// none.
func sharedLibraries(program string) ([]string, error) {
	out, err := exec.Command("ldd", program).CombinedOutput()
	if err != nil {
		if bytes.Contains(out, []byte("not a dynamic executable")) {
			return nil, nil
		}
		return nil, fmt.Errorf("ldd %s: %v: %s", program, err, out)
	}
	var libs []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		for i, f := range fields {
			if strings.HasPrefix(f, "/") && (i == 0 || fields[i-1] == "=>") {
				libs = append(libs, f)
			}
		}
		if strings.Contains(sc.Text(), "not found") {
			return nil, fmt.Errorf("ldd %s: %s", program, sc.Text())
		}
	}
	return libs, nil
}

// busyboxApplets lists the applets a busybox binary provides.
func busyboxApplets(busybox string) ([]string, error) {
	out, err := exec.Command(busybox, "--list").Output()
	if err != nil {
		return nil, fmt.Errorf("%s --list: %w", busybox, err)
	}
	return strings.Fields(string(out)), nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func dedupe(s []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, v := range s {
		if abs, err := filepath.Abs(v); err == nil && !seen[abs] {
			seen[abs] = true
			out = append(out, abs)
		}
	}
	sort.Strings(out)
	return out
}
