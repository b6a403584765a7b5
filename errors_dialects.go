package keygate

import "net/http"

// EUnsupportedEndpoint: the model's provider cannot serve the route
// (embeddings on an anthropic deployment, say); SPEC section 2.
const EUnsupportedEndpoint = "unsupported_endpoint"

// Kept beside its code rather than in the status table, so that adding it
// realigns no other line there.
func init() { statusByCode[EUnsupportedEndpoint] = http.StatusBadRequest }
