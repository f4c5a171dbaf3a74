package main

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// builtImage is an image written to a tarball.
type builtImage struct {
	tarball string
	digest  string
}

// build writes the image of recipe r to out/<name>.tar, unless the tarball
// there was made from the same inputs.
func build(imageName string, r recipe, given map[string]string, out string) (builtImage, error) {
	sources := map[string]string{}
	for _, f := range r.files {
		if p, ok := given[f.source]; ok {
			sources[f.dst] = p
		}
	}
	r.files = presentFiles(r.files, sources)
	if r.applets {
		if err := addApplets(&r, sources); err != nil {
			return builtImage{}, err
		}
	}
	key, err := inputKey(r, sources)
	if err != nil {
		return builtImage{}, err
	}
	tarPath := filepath.Join(out, imageName+".tar")
	keyPath := filepath.Join(out, imageName+".key")
	if cached, err := os.ReadFile(keyPath); err == nil {
		if fields := strings.Fields(string(cached)); len(fields) == 2 && fields[0] == key {
			if _, err := os.Stat(tarPath); err == nil {
				return builtImage{tarball: tarPath, digest: fields[1]}, nil
			}
		}
	}
	img, err := assemble(r, sources)
	if err != nil {
		return builtImage{}, err
	}
	digest, err := writeTarball(img, r.ref, tarPath)
	if err != nil {
		return builtImage{}, err
	}
	return builtImage{tarball: tarPath, digest: digest}, os.WriteFile(keyPath, []byte(key+" "+digest+"\n"), 0o644)
}

func presentFiles(files []imageFile, sources map[string]string) []imageFile {
	var present []imageFile
	for _, f := range files {
		if _, ok := sources[f.dst]; ok {
			present = append(present, f)
		}
	}
	return present
}

func addApplets(r *recipe, sources map[string]string) error {
	busybox := sources[r.files[0].dst]
	applets, err := busyboxApplets(busybox)
	if err != nil {
		return err
	}
	r.symlinks = map[string]string{}
	for _, a := range applets {
		if a != "busybox" {
			r.symlinks[path.Join("/bin", a)] = "busybox"
		}
	}
	return nil
}

// inputKey hashes everything an image is made of: the recipe and each
// source file's path, size and modification time.
func inputKey(r recipe, sources map[string]string) (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "v2 %q %q %q %q %v\n", r.ref, r.entrypoint, r.cmd, r.env, r.symlinks)
	for _, f := range r.files {
		st, err := os.Stat(sources[f.dst])
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s %s %o %d %d\n", sources[f.dst], f.dst, f.mode, st.Size(), st.ModTime().UnixNano())
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// assemble builds the image: the base layer, then the recipe's content.
func assemble(r recipe, sources map[string]string) (v1.Image, error) {
	base, err := baseLayer()
	if err != nil {
		return nil, err
	}
	content, err := contentLayer(r, sources)
	if err != nil {
		return nil, err
	}
	var layers []v1.Layer
	for _, data := range [][]byte{base, content} {
		l, err := tarball.LayerFromOpener(opener(data), tarball.WithCompressionLevel(gzip.BestSpeed))
		if err != nil {
			return nil, err
		}
		layers = append(layers, l)
	}
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		return nil, err
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cfg = cfg.DeepCopy()
	cfg.Architecture, cfg.OS = "amd64", "linux"
	cfg.Created = v1.Time{Time: epoch}
	cfg.Config.Entrypoint, cfg.Config.Cmd, cfg.Config.Env = r.entrypoint, r.cmd, r.env
	return mutate.ConfigFile(img, cfg)
}

func opener(data []byte) tarball.Opener {
	return func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }
}

func writeTarball(img v1.Image, ref, dst string) (string, error) {
	tag, err := name.NewTag(ref)
	if err != nil {
		return "", err
	}
	tmp := dst + ".tmp"
	if err := tarball.WriteToFile(tmp, tag, img); err != nil {
		return "", fmt.Errorf("write %s: %w", tmp, err)
	}
	digest, err := img.Digest()
	if err != nil {
		return "", err
	}
	return digest.String(), os.Rename(tmp, dst)
}

// importImage loads a tarball into containerd's k8s.io namespace and unpacks
// it for the default snapshotter, so the kubelet finds it without a pull.
func importImage(ctr, address, tarPath string) error {
	cmd := exec.Command(ctr, "--address", address, "--namespace", "k8s.io", "images", "import", tarPath)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s: %v: %s", strings.Join(cmd.Args, " "), err, out)
	}
	return nil
}
