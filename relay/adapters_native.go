package relay

// The native providers' adapters (SPEC section 3a).
import (
	_ "github.com/keygate/keygate/provider/anthropic"
	_ "github.com/keygate/keygate/provider/azure"
	_ "github.com/keygate/keygate/provider/gemini"
)
