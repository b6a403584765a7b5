package metrics

import "github.com/prometheus/client_golang/prometheus"

// Register adds collectors of other parts (the cluster's) to /metrics.
func (m *Metrics) Register(cs ...prometheus.Collector) { m.reg.MustRegister(cs...) }

// KeyStateChanged counts one change of a key's state (pool.Change kinds:
// cooled, disabled, healed, reset, operator_disabled, operator_enabled).
func (m *Metrics) KeyStateChanged(kind string) {
	if m == nil {
		return
	}
	m.stateChanges.WithLabelValues(kind).Inc()
}
