// Command keepsake-images assembles the OCI images the local cluster runs from
// binaries on this machine, with go-containerregistry and without contacting
// any registry, and imports them into the node's containerd (namespace
// k8s.io, where the kubelet's CRI looks).
//
//	keepsake-images -out DIR [-containerd-address SOCK] \
//	    -pause bin/pause -busybox /bin/busybox -minio bin/minio ... [NAME...]
//
// With no NAME it builds every image whose required files were given. Each
// image is cached as DIR/NAME.tar (docker-archive format, which `ctr images
// import` reads) and rebuilt only when its inputs change.
package main

import (
	"flag"
	"fmt"
	"os"
	"sort"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "keepsake-images:", err)
		os.Exit(1)
	}
}

func run() error {
	out := flag.String("out", "", "directory for the image tarballs (required)")
	address := flag.String("containerd-address", "", "containerd socket to import into; empty: build only")
	ctr := flag.String("ctr", "ctr", "ctr binary used for the import")
	sources := map[string]*string{}
	for _, name := range sourceNames() {
		sources[name] = flag.String(name, "", "host path of "+name)
	}
	flag.Parse()
	if *out == "" {
		return fmt.Errorf("-out is required")
	}
	given := map[string]string{}
	for name, p := range sources {
		if *p != "" {
			given[name] = *p
		}
	}
	names, err := selectImages(flag.Args(), given)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	for _, name := range names {
		if err := buildAndImport(name, given, *out, *address, *ctr); err != nil {
			return err
		}
	}
	return nil
}

func buildAndImport(name string, given map[string]string, out, address, ctr string) error {
	built, err := build(name, recipes[name], given, out)
	if err != nil {
		return fmt.Errorf("build image %s: %w", name, err)
	}
	if address != "" {
		if err := importImage(ctr, address, built.tarball); err != nil {
			return fmt.Errorf("import image %s: %w", name, err)
		}
	}
	fmt.Printf("%s\t%s\t%s\n", name, recipes[name].ref, built.digest)
	return nil
}

// selectImages returns the images to build: those named, or every image
// whose required source files were all given.
func selectImages(args []string, given map[string]string) ([]string, error) {
	if len(args) > 0 {
		for _, name := range args {
			r, ok := recipes[name]
			if !ok {
				return nil, fmt.Errorf("unknown image %q", name)
			}
			if missing := missingSources(r, given); len(missing) > 0 {
				return nil, fmt.Errorf("image %s needs -%s", name, missing[0])
			}
		}
		return args, nil
	}
	var names []string
	for name, r := range recipes {
		if len(missingSources(r, given)) == 0 {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	if len(names) == 0 {
		return nil, fmt.Errorf("no image has all its files given; see -help")
	}
	return names, nil
}

func missingSources(r recipe, given map[string]string) []string {
	var missing []string
	for _, f := range r.files {
		if _, ok := given[f.source]; !ok && !f.optional {
			missing = append(missing, f.source)
		}
	}
	return missing
}

func sourceNames() []string {
	seen := map[string]bool{}
	var names []string
	for _, r := range recipes {
		for _, f := range r.files {
			if !seen[f.source] {
				seen[f.source] = true
				names = append(names, f.source)
			}
		}
	}
	sort.Strings(names)
	return names
}
