package api

import (
	"fmt"
	"sort"
	"sync"
)

// Info describes a module to the registry.
type Info struct {
	// Name is what a listener's module key names. Unique.
	Name string
	// Description is one line for `netd modules`.
	Description string
	// New returns a fresh, unconfigured instance; netd makes one per listener.
	New func() Module
}

var (
	registryMu sync.RWMutex
	registry   = map[string]Info{}
)

// Register adds a module to the registry. Call it from the module package's
// init. It panics on an empty name, a missing constructor or a name already
// taken, since each is a programming error that no config can work around.
func Register(info Info) {
	if info.Name == "" {
		panic("netd: api.Register: module with an empty name")
	}
	if info.New == nil {
		panic(fmt.Sprintf("netd: api.Register: module %q has no New", info.Name))
	}
	registryMu.Lock()
	defer registryMu.Unlock()
	if _, dup := registry[info.Name]; dup {
		panic(fmt.Sprintf("netd: api.Register: module %q registered twice", info.Name))
	}
	registry[info.Name] = info
}

// Lookup returns the module registered under name. Safe from any goroutine.
func Lookup(name string) (Info, bool) {
	registryMu.RLock()
	defer registryMu.RUnlock()
	info, ok := registry[name]
	return info, ok
}

// Registered returns every registered module, sorted by name. Safe from any
// goroutine.
func Registered() []Info {
	registryMu.RLock()
	defer registryMu.RUnlock()
	infos := make([]Info, 0, len(registry))
	for _, info := range registry {
		infos = append(infos, info)
	}
	sort.Slice(infos, func(i, j int) bool { return infos[i].Name < infos[j].Name })
	return infos
}
