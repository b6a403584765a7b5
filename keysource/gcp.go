package keysource

import (
	"context"
	"fmt"
	"os"
	"strings"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/google"
	"golang.org/x/oauth2/jwt"
)

// defaultGCPScope is what Vertex AI and Gemini on Google Cloud accept.
const defaultGCPScope = "https://www.googleapis.com/auth/cloud-platform"

// gcp gets a Google service account's access token (key_source.type
// gcp_service_account, for Vertex AI and Gemini): a JWT signed with the
// account's private key, exchanged at the key file's token_uri. The key
// comes from credentials_file (read at every fetch, so a rotated file is
// picked up) or credentials_json (given through the admin API).
type gcp struct {
	s      *Source
	scopes []string
	email  string
}

func newGCP(s *Source, p *Problems) *gcp {
	g := &gcp{s: s, scopes: s.spec.Scopes}
	if len(g.scopes) == 0 {
		g.scopes = []string{defaultGCPScope}
	}
	for i, sc := range g.scopes {
		if strings.TrimSpace(sc) == "" || strings.ContainsAny(sc, " \t\r\n") {
			p.Add(fmt.Sprintf("scopes[%d]", i), "%q must be one scope, without spaces", sc)
		}
	}
	field := "credentials_file"
	switch {
	case s.spec.CredentialsFile == "" && s.spec.CredentialsJSON == "":
		p.Add("credentials_file", "required: the service account's JSON key file (or credentials_json, its content)")
		return g
	case s.spec.CredentialsFile != "" && s.spec.CredentialsJSON != "":
		p.Add("credentials_json", "give credentials_file or credentials_json, not both")
		return g
	case s.spec.CredentialsJSON != "":
		field = "credentials_json"
	}
	cfg, err := g.config()
	if err != nil {
		p.Add(field, "%v", err)
		return g
	}
	g.email = cfg.Email
	return g
}

func (g *gcp) target() string {
	if g.email == "" {
		return "service account"
	}
	return "service account " + g.email
}

// config reads the key and checks it is a service account's. Its errors
// never quote the file's content.
func (g *gcp) config() (*jwt.Config, error) {
	data := []byte(g.s.spec.CredentialsJSON)
	if f := g.s.spec.CredentialsFile; f != "" {
		var err error
		if data, err = os.ReadFile(f); err != nil {
			return nil, fmt.Errorf("cannot read it: %w", err)
		}
	}
	cfg, err := google.JWTConfigFromJSON(data, g.scopes...)
	if err != nil {
		return nil, fmt.Errorf("not a service account JSON key: %s", strings.TrimPrefix(err.Error(), "google: "))
	}
	switch {
	case cfg.Email == "":
		return nil, fmt.Errorf("the key has no client_email")
	case len(cfg.PrivateKey) == 0:
		return nil, fmt.Errorf("the key has no private_key")
	}
	return cfg, nil
}

func (g *gcp) fetch(ctx context.Context) (Lease, error) {
	cfg, err := g.config()
	if err != nil {
		return Lease{}, err
	}
	ctx = context.WithValue(ctx, oauth2.HTTPClient, g.s.client)
	tok, err := cfg.TokenSource(ctx).Token()
	if err != nil {
		return Lease{}, tokenError(g.s, err, cfg.TokenURL, shownRaw(cfg.TokenURL))
	}
	return leaseOf(tok, g.s)
}
