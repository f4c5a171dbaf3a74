package cluster

import (
	"encoding/json"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// TestTemplatesRender checks every configuration template renders with the
// default settings and, where it is YAML or JSON, parses.
func TestTemplatesRender(t *testing.T) {
	cfg := Config{StateDir: "/state", RunDir: "/run/ks", BinDir: "/bin", NodeName: "node", Bridge: "br",
		NodeIP: "198.18.0.1", PodCIDR: "198.18.0.0/24", ServiceCIDR: "198.19.0.0/24",
		KubernetesServiceIP: "198.19.0.1", APIServerPort: 6443, EtcdPort: 2479, EtcdPeerPort: 2480,
		PostgresPort: 15432, Servers: true}
	for tmpl := range cfg.configFiles() {
		t.Run(tmpl, func(t *testing.T) {
			data, err := cfg.render(tmpl)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(string(data), "<no value>") {
				t.Fatalf("%s refers to a missing field:\n%s", tmpl, data)
			}
			switch {
			case strings.HasSuffix(tmpl, ".yaml"):
				for i, doc := range strings.Split(string(data), "\n---\n") {
					var v map[string]any
					if err := yaml.Unmarshal([]byte(doc), &v); err != nil || v["kind"] == nil {
						t.Fatalf("document %d of %s: kind %v, err %v:\n%s", i, tmpl, v["kind"], err, doc)
					}
				}
			case strings.HasSuffix(tmpl, ".conflist"):
				var v map[string]any
				if err := json.Unmarshal(data, &v); err != nil {
					t.Fatalf("%s: %v", tmpl, err)
				}
			}
		})
	}
}
