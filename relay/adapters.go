package relay

// The adapters the relay can use. A provider adapter registers itself in
// its package's init; a new one is one more file like this.
import _ "github.com/keygate/keygate/provider/openai"
