package config

import (
	"strings"
	"testing"
	"time"
)

func TestPacingAndHedgeConfig(t *testing.T) {
	cfg := mustLoad(t, map[string]string{"keygate.yaml": `
pacing: {disabled: true, max_queue_wait: 2s}
models:
  - model_id: m
    base_url: http://127.0.0.1:1/v1
    hedge: {after_ms: 250, max_extra_percent: 5}
    api_keys: [{key: sk-one, rpm: 500, tpm: 200000}]
`}, nil, Options{})
	if !cfg.Pacing.Disabled || cfg.Pacing.MaxQueueWait != 2*time.Second {
		t.Errorf("pacing: %+v", cfg.Pacing)
	}
	m := cfg.Models[0]
	if m.Hedge == nil || m.Hedge.AfterMS != 250 || m.Hedge.MaxExtraPercent != 5 || m.APIKeys[0].RPM != 500 || m.APIKeys[0].TPM != 200000 {
		t.Errorf("model: hedge %+v, key %+v", m.Hedge, m.APIKeys[0])
	}

	_, err := load(t, map[string]string{"keygate.yaml": `
models:
  - model_id: m
    base_url: http://127.0.0.1:1/v1
    hedge: {after_ms: -1, max_extra_percent: 150}
    api_keys: [{key: sk-one, rpm: -5}]
`}, nil, Options{})
	for _, want := range []string{"models[0].hedge.after_ms", "models[0].hedge.max_extra_percent: 150 must be between 0 and 100", "models[0].api_keys[0].rpm"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v lacks %q", err, want)
		}
	}
}
