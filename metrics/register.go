package metrics

import "github.com/prometheus/client_golang/prometheus"

// Register adds collectors of other parts (the cluster's) to /metrics.
func (m *Metrics) Register(cs ...prometheus.Collector) { m.reg.MustRegister(cs...) }
