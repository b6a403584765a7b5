package config

import (
	"github.com/keygate/keygate"
	"github.com/keygate/keygate/keysource"
)

// sourceTypeProblems checks the fields of a key_source's type (command,
// oauth2, gcp_service_account) the way the source itself will, and refuses
// fields of another type, so a mistake stops the start naming the field
// and why.
func sourceTypeProblems(p *problems, s *keygate.KeySource, name func(string) string) {
	for _, x := range keysource.Check(*s) {
		p.add(name("key_source."+x.Field), "%s", x.Reason)
	}
}
