package config

import (
	"cmp"
	"slices"
	"strconv"
	"strings"

	"github.com/keygate/keygate"
)

// zeroConfigVars are the variables whose presence turns zero-config mode on.
var zeroConfigVars = []string{
	"LLM_API_KEY", "LLM_BASE_URL", "LLM_MODEL",
	"APIKEY_SERVICE_ENABLED", "APIKEY_SERVICE_URL", "APIKEY_SCENE_CODE",
}

// zeroConfig builds the one model of zero-config mode from the variables the
// SPEC names, or returns nil when none of them is set.
func zeroConfig(get func(string) string, p *problems) *keygate.Model {
	if !slices.ContainsFunc(zeroConfigVars, func(name string) bool { return get(name) != "" }) {
		return nil
	}
	m := &keygate.Model{
		Name:         "zero-config",
		ModelID:      cmp.Or(get("LLM_MODEL"), "gpt-4"),
		Provider:     "openai",
		BaseURL:      cmp.Or(get("LLM_BASE_URL"), "https://api.openai.com/v1"),
		KeyUsageMode: keygate.ModeSingle,
	}
	if s := get("LLM_TEMPERATURE"); s != "" {
		t, err := strconv.ParseFloat(s, 64)
		if err != nil {
			p.add("LLM_TEMPERATURE", "%q is not a number", s)
		} else {
			m.Temperature = &t
		}
	}
	key := get("LLM_API_KEY")
	if key != "" {
		m.APIKeys = []keygate.KeySpec{{Key: key}}
	}

	enabled := true
	if s := get("APIKEY_SERVICE_ENABLED"); s != "" {
		switch strings.ToLower(s) {
		case "true", "1", "yes":
		case "false", "0", "no":
			enabled = false
		default:
			p.add("APIKEY_SERVICE_ENABLED", "%q must be true or false", s)
		}
	}
	if !enabled {
		if key == "" {
			p.add("LLM_API_KEY", "required when APIKEY_SERVICE_ENABLED is false")
		}
		return m
	}
	m.KeySource = &keygate.KeySource{
		URL:                  cmp.Or(get("APIKEY_SERVICE_URL"), "http://127.0.0.1:4532/getApikey"),
		SceneCode:            get("APIKEY_SCENE_CODE"),
		ExpireSeconds:        intVar(get, p, "APIKEY_EXPIRE_SECONDS", 600),
		RefreshBeforeSeconds: intVar(get, p, "APIKEY_REFRESH_BEFORE_SECONDS", 120),
	}
	return m
}

func intVar(get func(string) string, p *problems, name string, def int) int {
	s := get(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		p.add(name, "%q is not a whole number", s)
		return def
	}
	return n
}

// zeroConfigNames names the fields of the zero-config model after the
// variables they come from, so that a problem points at what to change.
var zeroConfigNames = map[string]string{
	"model_id":                          "LLM_MODEL",
	"base_url":                          "LLM_BASE_URL",
	"temperature":                       "LLM_TEMPERATURE",
	"api_keys[0].key":                   "LLM_API_KEY",
	"key_source.url":                    "APIKEY_SERVICE_URL",
	"key_source.scene_code":             "APIKEY_SCENE_CODE",
	"key_source.expire_seconds":         "APIKEY_EXPIRE_SECONDS",
	"key_source.refresh_before_seconds": "APIKEY_REFRESH_BEFORE_SECONDS",
}

func zeroConfigName(field string) string {
	if name, ok := zeroConfigNames[field]; ok {
		return name
	}
	return join("zero-config", field)
}
