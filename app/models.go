package app

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/keygate/keygate"
)

// configModels upserts the models the configuration declares into the
// store. Zero-config mode's model counts only when no model is configured
// anywhere else: not in the file, not through the API.
func (a *App) configModels(ctx context.Context) error {
	declared := slices.Clone(a.cfg.Models)
	if len(declared) == 0 && a.cfg.ZeroConfig != nil {
		stored, err := a.store.ListModels(ctx, keygate.ModelFilter{})
		if err != nil {
			return err
		}
		if !slices.ContainsFunc(stored, func(m keygate.Model) bool { return m.Origin == keygate.OriginAPI }) {
			declared = []keygate.Model{*a.cfg.ZeroConfig}
			a.log.Info("zero-config mode: one model from the LLM_* variables", "model", a.cfg.ZeroConfig.ModelID, "base_url", a.cfg.ZeroConfig.BaseURL)
		}
	}
	if err := a.store.SyncConfigModels(ctx, declared); err != nil {
		return fmt.Errorf("store the configured models: %w", err)
	}
	return nil
}

// reload puts the stored models into service. The pool swaps in a new
// snapshot, so requests in flight keep the keys they started with, and
// keys it already knows keep their health; keys fed by a key service get
// their source. The admin routes call it after every change.
func (a *App) reload(ctx context.Context) error {
	// The change is stored already: finish even if the caller hangs up.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	a.reloadMu.Lock()
	defer a.reloadMu.Unlock()
	models, err := a.store.ListModels(ctx, keygate.ModelFilter{})
	if err != nil {
		return fmt.Errorf("reload models: %w", err)
	}
	if err := a.pool.Load(models); err != nil {
		return fmt.Errorf("reload models: %w", err)
	}
	return a.bindSources()
}
