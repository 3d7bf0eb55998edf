// Package deploy checks netd's Kubernetes manifests (k8s/) against the netd
// config that their ConfigMap holds, so that a port, a probe or a timeout
// changed on one side only is caught before it reaches a cluster. Decode
// reads the manifests strictly (an unknown field is an error) into the
// k8s.io/api types and the config with netd's own loader; Check compares
// them. deploy/README.md explains the rules they enforce.
package deploy

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"

	"github.com/netd/netd/internal/config"
	_ "github.com/netd/netd/pkg/modules/standard" // the modules a config may name
)

// ConfigKey is the ConfigMap key that holds netd's YAML config.
const ConfigKey = "netd.yaml"

// ContainerName is the name of netd's container in the Deployment.
const ContainerName = "netd"

// Probe paths netd's admin endpoint serves (README.md, Metrics and health).
const (
	ReadyPath  = "/readyz"
	HealthPath = "/healthz"
)

// Set is one decoded manifest of each kind, and the netd config of the
// ConfigMap. Each field's file is in Files, by the same kind.
type Set struct {
	ConfigMap  *corev1.ConfigMap
	Deployment *appsv1.Deployment
	Service    *corev1.Service
	PDB        *policyv1.PodDisruptionBudget
	Netd       *config.Config
	Files      map[string]string // kind -> the file it came from
}

// docSeparator splits a YAML stream into its documents.
var docSeparator = regexp.MustCompile(`(?m)^---[ \t]*$`)

// Decode decodes every document of files (name -> YAML) strictly into its
// k8s.io/api type and loads the ConfigMap's netd config with netd's loader.
// Each of ConfigMap, Deployment, Service and PodDisruptionBudget must occur
// exactly once; any other kind is an error. Errors name the file.
func Decode(files map[string][]byte) (*Set, error) {
	s := &Set{Files: map[string]string{}}
	var errs []error
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		for i, doc := range docSeparator.Split(string(files[name]), -1) {
			if strings.TrimSpace(stripComments(doc)) == "" {
				continue
			}
			if err := s.decodeDoc(name, []byte(doc)); err != nil {
				errs = append(errs, fmt.Errorf("%s: document %d: %w", name, i+1, err))
			}
		}
	}
	for _, kind := range []string{"ConfigMap", "Deployment", "Service", "PodDisruptionBudget"} {
		if _, ok := s.Files[kind]; !ok {
			errs = append(errs, fmt.Errorf("no %s among %s", kind, strings.Join(names, ", ")))
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	src, ok := s.ConfigMap.Data[ConfigKey]
	if !ok {
		return nil, fmt.Errorf("%s: ConfigMap %s has no key %s", s.Files["ConfigMap"], s.ConfigMap.Name, ConfigKey)
	}
	// The name ends in .yaml, which picks the loader's format; its errors
	// read FILE:KEY:LINE:COL, the line counted within the key's value.
	cfg, err := config.Parse(s.Files["ConfigMap"]+":"+ConfigKey, []byte(src), nil)
	if err != nil {
		return nil, err
	}
	s.Netd = cfg
	return s, nil
}

func stripComments(doc string) string {
	var b strings.Builder
	for line := range strings.Lines(doc) {
		if !strings.HasPrefix(strings.TrimSpace(line), "#") {
			b.WriteString(line)
		}
	}
	return b.String()
}

// decodeDoc decodes one document by its apiVersion and kind, strictly:
// unknown, duplicate and miscased fields are errors.
func (s *Set) decodeDoc(file string, doc []byte) error {
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal(doc, &tm); err != nil {
		return err
	}
	var dst any
	switch tm.APIVersion + " " + tm.Kind {
	case "v1 ConfigMap":
		s.ConfigMap = new(corev1.ConfigMap)
		dst = s.ConfigMap
	case "apps/v1 Deployment":
		s.Deployment = new(appsv1.Deployment)
		dst = s.Deployment
	case "v1 Service":
		s.Service = new(corev1.Service)
		dst = s.Service
	case "policy/v1 PodDisruptionBudget":
		s.PDB = new(policyv1.PodDisruptionBudget)
		dst = s.PDB
	default:
		return fmt.Errorf("apiVersion %q kind %q: not one this check knows (v1 ConfigMap, apps/v1 Deployment, v1 Service, policy/v1 PodDisruptionBudget)", tm.APIVersion, tm.Kind)
	}
	if prev, dup := s.Files[tm.Kind]; dup {
		return fmt.Errorf("a second %s (the first is in %s)", tm.Kind, prev)
	}
	s.Files[tm.Kind] = file
	// As the API server's strict field validation: YAML keys unique, and
	// JSON fields known and spelled with their case.
	j, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		// The YAML parser's errors span lines; one line each here.
		return fmt.Errorf("%s: %s", tm.Kind, strings.Join(strings.Fields(err.Error()), " "))
	}
	strict, err := kjson.UnmarshalStrict(j, dst)
	if err != nil {
		return fmt.Errorf("%s: %w", tm.Kind, err)
	}
	if len(strict) > 0 {
		return fmt.Errorf("%s: %w", tm.Kind, errors.Join(strict...))
	}
	return nil
}

// drainDelay is how long netd keeps accepting after SIGTERM, with /readyz
// at 503: the config's drain_delay.
func (s *Set) drainDelay() time.Duration { return s.Netd.DrainDelay }

// Check returns every disagreement between the manifests and the netd
// config, and every unsafe setting, one error each naming the file and field.
func (s *Set) Check() []error {
	c := checker{s: s}
	c.check()
	return c.errs
}

type checker struct {
	s    *Set
	errs []error
}

func (c *checker) errorf(kind, format string, args ...any) {
	c.errs = append(c.errs, fmt.Errorf("%s: %s", c.s.Files[kind], fmt.Sprintf(format, args...)))
}

// port is a port that netd listens on, from its config.
type port struct {
	what     string // "listener NAME" or "admin"
	number   int32
	protocol corev1.Protocol
}

func (c *checker) check() {
	s := c.s
	pod := &s.Deployment.Spec.Template
	var ctr *corev1.Container
	for i := range pod.Spec.Containers {
		if pod.Spec.Containers[i].Name == ContainerName {
			ctr = &pod.Spec.Containers[i]
		}
	}
	if ctr == nil {
		c.errorf("Deployment", "spec.template.spec.containers: no container named %q", ContainerName)
		return
	}
	listeners, admin := c.netdPorts()
	c.checkSelectors(pod)
	c.checkConfigPath(pod, ctr)
	c.checkContainerPorts(ctr, listeners, admin)
	c.checkProbe(ctr, "readinessProbe", ctr.ReadinessProbe, ReadyPath, admin)
	c.checkProbe(ctr, "livenessProbe", ctr.LivenessProbe, HealthPath, admin)
	c.checkStop(pod, ctr)
	c.checkDrainDelay(ctr)
	c.checkSecurity(pod, ctr)
	c.checkService(ctr, listeners, admin)
}

// netdPorts returns the TCP and UDP ports of the listeners and of the admin
// endpoint, and reports those a pod's IP would not reach.
func (c *checker) netdPorts() (listeners []port, admin *port) {
	reachable := func(what, hostport string) (int32, bool) {
		host, p, _ := net.SplitHostPort(hostport) // the loader checked it
		n, _ := strconv.Atoi(p)
		if ip, err := netip.ParseAddr(host); host != "" && (err != nil || !ip.IsUnspecified()) {
			c.errorf("ConfigMap", "%s: %s binds %s only; the pod's IP does not reach it (bind every address: leave the host out, as in :%d)", ConfigKey, what, host, n)
			return 0, false
		}
		if n == 0 {
			c.errorf("ConfigMap", "%s: %s has port 0, a random port no manifest can name", ConfigKey, what)
			return 0, false
		}
		return int32(n), true
	}
	for _, l := range c.s.Netd.Listeners {
		proto := corev1.ProtocolTCP
		switch l.Addr.Network() {
		case "udp":
			proto = corev1.ProtocolUDP
		case "unix":
			continue // inside the pod only
		}
		if l.Addr.Scheme == "fd" {
			c.errorf("ConfigMap", "%s: listener %s: fd:// needs systemd's socket activation, which a pod lacks", ConfigKey, l.Name)
			continue
		}
		what := "listener " + l.Name
		if n, ok := reachable(what, l.Addr.Host); ok {
			listeners = append(listeners, port{what, n, proto})
		}
	}
	if c.s.Netd.Admin == nil {
		c.errorf("ConfigMap", "%s: no admin block: the probes need /readyz and /healthz", ConfigKey)
		return listeners, nil
	}
	if n, ok := reachable("admin", c.s.Netd.Admin.Address); ok {
		admin = &port{"admin", n, corev1.ProtocolTCP}
	}
	return listeners, admin
}

func (c *checker) checkSelectors(pod *corev1.PodTemplateSpec) {
	subset := func(sel map[string]string) bool {
		if len(sel) == 0 {
			return false
		}
		for k, v := range sel {
			if pod.Labels[k] != v {
				return false
			}
		}
		return true
	}
	if sel := c.s.Deployment.Spec.Selector; sel == nil || len(sel.MatchExpressions) > 0 || !subset(sel.MatchLabels) {
		c.errorf("Deployment", "spec.selector: want matchLabels that the pod template's labels %v carry", pod.Labels)
	}
	if !subset(c.s.Service.Spec.Selector) {
		c.errorf("Service", "spec.selector %v does not select the Deployment's pods (labels %v)", c.s.Service.Spec.Selector, pod.Labels)
	}
	if sel := c.s.PDB.Spec.Selector; sel == nil || len(sel.MatchExpressions) > 0 || !subset(sel.MatchLabels) {
		c.errorf("PodDisruptionBudget", "spec.selector does not select the Deployment's pods (labels %v)", pod.Labels)
	}
}

// checkConfigPath: netd serve -c PATH, where PATH is the ConfigMap's key
// as a volume mounts it.
func (c *checker) checkConfigPath(pod *corev1.PodTemplateSpec, ctr *corev1.Container) {
	if len(ctr.Command) > 0 {
		c.errorf("Deployment", "container %s: command %q replaces the image's entrypoint (netd); give netd's arguments in args", ctr.Name, ctr.Command)
	}
	path, ok := configFlag(ctr.Args)
	if !ok {
		c.errorf("Deployment", "container %s: args %q: want serve -c FILE", ctr.Name, ctr.Args)
		return
	}
	var want []string
	for _, v := range pod.Spec.Volumes {
		cm := v.ConfigMap
		if cm == nil || cm.Name != c.s.ConfigMap.Name {
			continue
		}
		file := ConfigKey
		if len(cm.Items) > 0 {
			file = ""
			for _, it := range cm.Items {
				if it.Key == ConfigKey {
					file = it.Path
				}
			}
		}
		for _, m := range ctr.VolumeMounts {
			if m.Name == v.Name && file != "" && m.SubPath == "" {
				want = append(want, strings.TrimSuffix(m.MountPath, "/")+"/"+file)
			}
		}
	}
	if !slices.Contains(want, path) {
		c.errorf("Deployment", "container %s: netd reads %s, but ConfigMap %s's %s is mounted at %q", ctr.Name, path, c.s.ConfigMap.Name, ConfigKey, want)
	}
}

// configFlag returns FILE of args "serve ... -c FILE" (or --config).
func configFlag(args []string) (string, bool) {
	if len(args) == 0 || args[0] != "serve" {
		return "", false
	}
	for i, a := range args {
		switch {
		case (a == "-c" || a == "--config") && i+1 < len(args):
			return args[i+1], true
		case strings.HasPrefix(a, "--config="):
			return strings.TrimPrefix(a, "--config="), true
		case strings.HasPrefix(a, "-c="):
			return strings.TrimPrefix(a, "-c="), true
		}
	}
	return "", false
}

func (c *checker) checkContainerPorts(ctr *corev1.Container, listeners []port, admin *port) {
	want := slices.Clone(listeners)
	if admin != nil {
		want = append(want, *admin)
	}
	for _, p := range want {
		if !slices.ContainsFunc(ctr.Ports, func(cp corev1.ContainerPort) bool {
			return cp.ContainerPort == p.number && protocolOf(cp.Protocol) == p.protocol
		}) {
			c.errorf("Deployment", "container %s: no containerPort %d/%s for netd's %s", ctr.Name, p.number, p.protocol, p.what)
		}
	}
	for _, cp := range ctr.Ports {
		if !slices.ContainsFunc(want, func(p port) bool {
			return cp.ContainerPort == p.number && protocolOf(cp.Protocol) == p.protocol
		}) {
			c.errorf("Deployment", "container %s: containerPort %d/%s (%s) is none of netd's ports", ctr.Name, cp.ContainerPort, protocolOf(cp.Protocol), cp.Name)
		}
	}
}

func protocolOf(p corev1.Protocol) corev1.Protocol {
	if p == "" {
		return corev1.ProtocolTCP
	}
	return p
}

// resolve returns the container port number that p names (a number, or a
// containerPort's name), or 0.
func resolve(ctr *corev1.Container, p intstr.IntOrString) int32 {
	if p.Type == intstr.Int {
		return p.IntVal
	}
	for _, cp := range ctr.Ports {
		if cp.Name == p.StrVal {
			return cp.ContainerPort
		}
	}
	return 0
}

func (c *checker) checkProbe(ctr *corev1.Container, name string, p *corev1.Probe, path string, admin *port) {
	if p == nil || p.HTTPGet == nil {
		c.errorf("Deployment", "container %s: %s: want httpGet %s on the admin port", ctr.Name, name, path)
		return
	}
	g := p.HTTPGet
	if g.Path != path {
		c.errorf("Deployment", "container %s: %s.httpGet.path %q: want %s", ctr.Name, name, g.Path, path)
	}
	if g.Scheme != "" && g.Scheme != corev1.URISchemeHTTP {
		c.errorf("Deployment", "container %s: %s.httpGet.scheme %s: netd's admin endpoint speaks HTTP", ctr.Name, name, g.Scheme)
	}
	if admin != nil && resolve(ctr, g.Port) != admin.number {
		c.errorf("Deployment", "container %s: %s.httpGet.port %s is not the admin port %d", ctr.Name, name, g.Port.String(), admin.number)
	}
}

// checkStop: the kubelet counts terminationGracePeriodSeconds from the
// start of preStop, and kills netd when it has passed; netd needs the
// preStop sleep, then drain_delay, then up to shutdown_timeout.
func (c *checker) checkStop(pod *corev1.PodTemplateSpec, ctr *corev1.Container) {
	var preStop time.Duration
	switch l := ctr.Lifecycle; {
	case l == nil || l.PreStop == nil:
		c.errorf("Deployment", "container %s: no lifecycle.preStop: new connections would reach a pod that stops accepting before its endpoint is gone", ctr.Name)
	case l.PreStop.Sleep == nil:
		c.errorf("Deployment", "container %s: lifecycle.preStop: want a sleep action (the image has no shell and no sleep program)", ctr.Name)
	case l.PreStop.Sleep.Seconds <= 0:
		c.errorf("Deployment", "container %s: lifecycle.preStop.sleep.seconds %d: want more than 0", ctr.Name, l.PreStop.Sleep.Seconds)
	default:
		preStop = time.Duration(l.PreStop.Sleep.Seconds) * time.Second
	}
	g := pod.Spec.TerminationGracePeriodSeconds
	if g == nil {
		c.errorf("Deployment", "spec.template.spec.terminationGracePeriodSeconds: unset; set it above preStop + drain_delay + shutdown_timeout")
		return
	}
	grace := time.Duration(*g) * time.Second
	need := preStop + c.s.drainDelay() + c.s.Netd.ShutdownTimeout
	if grace <= need {
		c.errorf("Deployment", "spec.template.spec.terminationGracePeriodSeconds %v must exceed preStop %v + drain_delay %v + shutdown_timeout %v = %v, or netd is killed in its drain",
			grace, preStop, c.s.drainDelay(), c.s.Netd.ShutdownTimeout, need)
	}
}

// checkDrainDelay: after SIGTERM /readyz fails while netd accepts on for
// drain_delay. The readiness probe marks the pod not serving after
// periodSeconds x failureThreshold, and only then does a balancer that
// follows the pod's readiness stop sending it connects: drain_delay must
// outlast that, or netd stops accepting first and those connects are
// refused.
func (c *checker) checkDrainDelay(ctr *corev1.Container) {
	p := ctr.ReadinessProbe
	if p == nil {
		return // checkProbe reports it
	}
	period, fall := p.PeriodSeconds, p.FailureThreshold
	if period == 0 {
		period = 10 // the API's defaults
	}
	if fall == 0 {
		fall = 3
	}
	notReady := time.Duration(period*fall) * time.Second
	if d := c.s.drainDelay(); d <= notReady {
		c.errorf("ConfigMap", "%s: drain_delay %v must exceed the readiness probe's periodSeconds %d x failureThreshold %d = %v, or netd stops accepting before balancers that follow readiness stop sending",
			ConfigKey, d, period, fall, notReady)
	}
}

func (c *checker) checkSecurity(pod *corev1.PodTemplateSpec, ctr *corev1.Container) {
	nonRoot := false
	if sc := pod.Spec.SecurityContext; sc != nil && sc.RunAsNonRoot != nil {
		nonRoot = *sc.RunAsNonRoot
	}
	sc := ctr.SecurityContext
	if sc != nil && sc.RunAsNonRoot != nil {
		nonRoot = *sc.RunAsNonRoot
	}
	if !nonRoot {
		c.errorf("Deployment", "container %s: want securityContext.runAsNonRoot: true", ctr.Name)
	}
	if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		c.errorf("Deployment", "container %s: want securityContext.allowPrivilegeEscalation: false", ctr.Name)
	}
	if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		c.errorf("Deployment", "container %s: want securityContext.readOnlyRootFilesystem: true", ctr.Name)
	}
}

func (c *checker) checkService(ctr *corev1.Container, listeners []port, admin *port) {
	if len(c.s.Service.Spec.Ports) == 0 {
		c.errorf("Service", "spec.ports: none")
	}
	for _, sp := range c.s.Service.Spec.Ports {
		target := sp.TargetPort
		if target == (intstr.IntOrString{}) {
			target = intstr.FromInt32(sp.Port) // the API's default
		}
		n := resolve(ctr, target)
		switch {
		case admin != nil && n == admin.number:
			c.errorf("Service", "port %s (%d) exposes the admin port: metrics and reload are for the kubelet and operators, not for clients", sp.Name, sp.Port)
		case !slices.ContainsFunc(listeners, func(p port) bool { return p.number == n && p.protocol == protocolOf(sp.Protocol) }):
			c.errorf("Service", "port %s (%d) targets %s/%s, which no netd listener serves", sp.Name, sp.Port, target.String(), protocolOf(sp.Protocol))
		}
	}
}
