package deploy

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// readManifests reads every k8s/*.yaml, by base name.
func readManifests(t *testing.T) map[string][]byte {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("k8s", "*.yaml"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no manifests in k8s/: %v", err)
	}
	files := map[string][]byte{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		files[filepath.Base(p)] = b
	}
	return files
}

// problems decodes and checks files; a decode error is the only problem.
func problems(files map[string][]byte) []error {
	s, err := Decode(files)
	if err != nil {
		return []error{err}
	}
	return s.Check()
}

// TestManifests: the shipped manifests decode strictly, their netd config
// loads, and they agree with it.
func TestManifests(t *testing.T) {
	files := readManifests(t)
	s, err := Decode(files)
	if err != nil {
		t.Fatal(err)
	}
	for _, err := range s.Check() {
		t.Error(err)
	}
	if len(s.Netd.Listeners) == 0 || s.Netd.Admin == nil {
		t.Errorf("netd config: %d listeners, admin %v", len(s.Netd.Listeners), s.Netd.Admin)
	}
}

// TestConfigMapIsImageConfig: the image's config (netd.yaml, which the
// Dockerfile copies) and the ConfigMap's are the same file.
func TestConfigMapIsImageConfig(t *testing.T) {
	s, err := Decode(readManifests(t))
	if err != nil {
		t.Fatal(err)
	}
	img, err := os.ReadFile("netd.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if got := []byte(s.ConfigMap.Data[ConfigKey]); !bytes.Equal(got, img) {
		t.Errorf("k8s/configmap.yaml's %s differs from netd.yaml; copy netd.yaml into it, indented:\n%s", ConfigKey, got)
	}
}

// TestBrokenManifests changes one spot of a shipped manifest and expects
// the problem it makes; cases with no want must pass (bounds of a rule).
func TestBrokenManifests(t *testing.T) {
	const (
		readyPort  = "path: /readyz\n              port: admin"
		livePort   = "path: /healthz\n              port: admin"
		sleepBlock = "sleep:\n                seconds: 5"
	)
	for _, tc := range []struct {
		name, file, old, new string
		want                 string // a substring of one problem; "" = no problem
	}{
		// Strict decoding.
		{"unknown field in Deployment", "deployment.yaml", "terminationGracePeriodSeconds: 30", "terminationGracePeriodSecond: 30", `unknown field "spec.template.spec.terminationGracePeriodSecond"`},
		{"unknown field in Service", "service.yaml", "targetPort: echo", "targetport: echo", `unknown field "spec.ports[0].targetport"`},
		{"unknown field in ConfigMap", "configmap.yaml", "\ndata:", "\ndatas:", `unknown field "datas"`},
		{"unknown field in PDB", "pdb.yaml", "maxUnavailable: 1", "maxUnavailabl: 1", `unknown field "spec.maxUnavailabl"`},
		{"duplicate field", "deployment.yaml", "  replicas: 3", "  replicas: 3\n  replicas: 2", `"replicas" already set`},
		{"wrong type", "deployment.yaml", "replicas: 3", "replicas: three", "replicas"},
		{"unknown kind", "service.yaml", "kind: Service", "kind: Ingress", `kind "Ingress"`},
		{"kind twice", "pdb.yaml", "apiVersion: policy/v1\nkind: PodDisruptionBudget", "apiVersion: v1\nkind: ConfigMap", "a second ConfigMap"},
		{"no config key", "configmap.yaml", "  netd.yaml: |", "  netd.yml: |", "has no key netd.yaml"},
		{"bad netd config", "configmap.yaml", "    shutdown_timeout: 10s", "    shutdown_timout: 10s", `configmap.yaml:netd.yaml:9:1: unknown key "shutdown_timout"`},

		// The grace period: preStop 5s + drain_delay 5s + shutdown_timeout 10s.
		{"grace equal to the drain", "deployment.yaml", "terminationGracePeriodSeconds: 30", "terminationGracePeriodSeconds: 20", "terminationGracePeriodSeconds 20s must exceed preStop 5s + drain_delay 5s + shutdown_timeout 10s = 20s"},
		{"grace just above", "deployment.yaml", "terminationGracePeriodSeconds: 30", "terminationGracePeriodSeconds: 21", ""},
		{"grace unset", "deployment.yaml", "      terminationGracePeriodSeconds: 30\n", "", "terminationGracePeriodSeconds: unset"},
		{"longer shutdown_timeout", "configmap.yaml", "shutdown_timeout: 10s", "shutdown_timeout: 25s", "= 35s"},
		{"longer drain_delay", "configmap.yaml", "drain_delay: 5s", "drain_delay: 15s", "drain_delay 15s + shutdown_timeout 10s = 30s"},
		{"no drain_delay", "configmap.yaml", "    drain_delay: 5s\n", "", "drain_delay 0s must exceed the readiness probe's periodSeconds 2 x failureThreshold 2 = 4s"},
		{"drain_delay equal to the readiness fall", "configmap.yaml", "drain_delay: 5s", "drain_delay: 4s", "drain_delay 4s must exceed"},
		{"drain_delay just above", "configmap.yaml", "drain_delay: 5s", "drain_delay: 4001ms", ""},
		{"slower readiness probe", "deployment.yaml", "periodSeconds: 2", "periodSeconds: 3", "periodSeconds 3 x failureThreshold 2 = 6s"},
		{"readiness probe defaults", "deployment.yaml", "            periodSeconds: 2\n            failureThreshold: 2\n", "", "periodSeconds 10 x failureThreshold 3 = 30s"},
		{"default shutdown_timeout", "configmap.yaml", "    shutdown_timeout: 10s\n", "", ""},
		{"longer preStop", "deployment.yaml", "seconds: 5", "seconds: 20", "= 35s"},
		{"preStop exec", "deployment.yaml", sleepBlock, "exec:\n                command: [sleep, \"5\"]", "want a sleep action"},
		{"preStop zero", "deployment.yaml", "seconds: 5", "seconds: 0", "sleep.seconds 0"},

		// Probes.
		{"readiness on healthz", "deployment.yaml", "path: /readyz", "path: /healthz", `readinessProbe.httpGet.path "/healthz": want /readyz`},
		{"liveness on readyz", "deployment.yaml", "path: /healthz", "path: /readyz", `livenessProbe.httpGet.path "/readyz": want /healthz`},
		{"readiness on the echo port", "deployment.yaml", readyPort, "path: /readyz\n              port: echo", "readinessProbe.httpGet.port echo is not the admin port 9900"},
		{"liveness by number", "deployment.yaml", livePort, "path: /healthz\n              port: 9900", ""},
		{"liveness on another number", "deployment.yaml", livePort, "path: /healthz\n              port: 9901", "livenessProbe.httpGet.port 9901"},
		{"readiness over HTTPS", "deployment.yaml", readyPort, readyPort + "\n              scheme: HTTPS", "speaks HTTP"},
		{"no liveness", "deployment.yaml", "livenessProbe:", "startupProbe:", "livenessProbe: want httpGet /healthz"},

		// Ports.
		{"listener port moved", "configmap.yaml", "address: tcp://:8888", "address: tcp://:8889", "no containerPort 8889/TCP for netd's listener echo"},
		{"listener on loopback", "configmap.yaml", "address: tcp://:8888", "address: tcp://127.0.0.1:8888", "listener echo binds 127.0.0.1 only"},
		{"listener on every IPv4 address", "configmap.yaml", "address: tcp://:8888", "address: tcp4://0.0.0.0:8888", ""},
		{"listener on UDP", "configmap.yaml", "address: tcp://:8888", "address: udp://:8888", "no containerPort 8888/UDP"},
		{"listener on port 0", "configmap.yaml", "address: tcp://:8888", "address: tcp://:0", "port 0"},
		{"admin on loopback", "configmap.yaml", "address: :9900", "address: 127.0.0.1:9900", "admin binds 127.0.0.1 only"},
		{"no admin", "configmap.yaml", "    admin:\n      address: :9900\n", "", "no admin block"},
		{"stray containerPort", "deployment.yaml", "containerPort: 9900", "containerPort: 9901", "containerPort 9901/TCP (admin) is none of netd's ports"},
		{"service exposes admin", "service.yaml", "targetPort: echo", "targetPort: admin", "exposes the admin port"},
		{"service on an unknown name", "service.yaml", "targetPort: echo", "targetPort: ehco", "targets ehco/TCP, which no netd listener serves"},
		{"service port defaults to target", "service.yaml", "      targetPort: echo\n", "", ""},
		{"service over UDP", "service.yaml", "protocol: TCP", "protocol: UDP", "targets echo/UDP"},

		// Wiring and safety.
		{"config path", "deployment.yaml", `"-c", "/etc/netd/netd.yaml"`, `"-c", "/etc/netd.yaml"`, `netd reads /etc/netd.yaml, but ConfigMap netd's netd.yaml is mounted at ["/etc/netd/netd.yaml"]`},
		{"config volume of another ConfigMap", "deployment.yaml", "configMap:\n            name: netd", "configMap:\n            name: netd-config", "is mounted at []"},
		{"no serve", "deployment.yaml", `args: ["serve", `, `args: ["validate", `, "want serve -c FILE"},
		{"entrypoint replaced", "deployment.yaml", "          args:", "          command: [/bin/sh, -c]\n          args:", "replaces the image's entrypoint"},
		{"container renamed", "deployment.yaml", "- name: netd\n", "- name: server\n", `no container named "netd"`},
		{"root", "deployment.yaml", "runAsNonRoot: true", "runAsNonRoot: false", "runAsNonRoot: true"},
		{"writable root", "deployment.yaml", "readOnlyRootFilesystem: true", "readOnlyRootFilesystem: false", "readOnlyRootFilesystem: true"},
		{"privilege escalation", "deployment.yaml", "allowPrivilegeEscalation: false", "allowPrivilegeEscalation: true", "allowPrivilegeEscalation: false"},
		{"service selects nothing", "service.yaml", "  selector:\n    app.kubernetes.io/name: netd", "  selector:\n    app.kubernetes.io/name: netd-x", "does not select the Deployment's pods"},
		{"PDB selects nothing", "pdb.yaml", "    matchLabels:\n      app.kubernetes.io/name: netd", "    matchLabels:\n      app.kubernetes.io/name: other", "pdb.yaml: spec.selector does not select"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			files := readManifests(t)
			src := string(files[tc.file])
			if n := strings.Count(src, tc.old); n != 1 {
				t.Fatalf("%q occurs %d times in %s; the case needs it once", tc.old, n, tc.file)
			}
			files[tc.file] = []byte(strings.Replace(src, tc.old, tc.new, 1))
			errs := problems(files)
			if tc.want == "" {
				if err := errors.Join(errs...); err != nil {
					t.Fatalf("want no problem, got:\n%v", err)
				}
				return
			}
			if err := errors.Join(errs...); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("want a problem with %q, got:\n%v", tc.want, err)
			}
		})
	}
}

// TestDecodeNeedsEveryKind: a manifest set without one of its kinds fails.
func TestDecodeNeedsEveryKind(t *testing.T) {
	for name := range readManifests(t) {
		t.Run(name, func(t *testing.T) {
			files := readManifests(t)
			delete(files, name)
			if _, err := Decode(files); err == nil || !strings.Contains(err.Error(), "no ") {
				t.Fatalf("without %s: %v", name, err)
			}
		})
	}
}
