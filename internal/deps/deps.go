// Package deps pins the project's dependencies while the packages that use
// them are written; it goes away once they import them themselves.
package deps

import (
	_ "github.com/hashicorp/go-hclog"
	_ "github.com/hashicorp/hcl/v2"
	_ "github.com/hashicorp/hcl/v2/hclsyntax"
	_ "github.com/spf13/cobra"
	_ "github.com/spf13/viper"
	_ "github.com/zclconf/go-cty/cty"
	_ "go.uber.org/goleak"
	_ "go.yaml.in/yaml/v3"
	_ "golang.org/x/sys/unix"
)
