package metrics

import (
	"github.com/jonboulle/clockwork"
	"github.com/keygate/keygate/pace"
	"github.com/keygate/keygate/pool"
	"github.com/prometheus/client_golang/prometheus"
)

// keyRoom reports each key's headroom and forecast (SPEC section 4a) when
// scraped: remaining requests and tokens, seconds until it runs dry, and how
// many keys run dry soon. Keys nothing is known about have no series.
type keyRoom struct {
	pool                    *pool.Pool
	clock                   clockwork.Clock
	reqs, toks, dryIn, nDry *prometheus.Desc
}

func newKeyRoom(p *pool.Pool, clock clockwork.Clock) *keyRoom {
	return &keyRoom{pool: p, clock: clock,
		reqs:  prometheus.NewDesc("keygate_key_remaining_requests", "Requests a key has left before its rate limit, by key id.", []string{"key_id"}, nil),
		toks:  prometheus.NewDesc("keygate_key_remaining_tokens", "Tokens a key has left before its rate limit, by key id.", []string{"key_id"}, nil),
		dryIn: prometheus.NewDesc("keygate_key_exhausts_in_seconds", "Seconds until a key runs out at its current burn rate, by key id.", []string{"key_id"}, nil),
		nDry:  prometheus.NewDesc("keygate_keys_running_dry", "Keys forecast to run out within 10 minutes.", nil, nil),
	}
}

func (k *keyRoom) Describe(ch chan<- *prometheus.Desc) {
	ch <- k.reqs
	ch <- k.toks
	ch <- k.dryIn
	ch <- k.nDry
}

func (k *keyRoom) Collect(ch chan<- prometheus.Metric) {
	now := k.clock.Now()
	dry := 0
	for _, key := range k.pool.Keys() {
		f := key.Forecast(now)
		if f.RemainingRequests != nil {
			ch <- prometheus.MustNewConstMetric(k.reqs, prometheus.GaugeValue, float64(*f.RemainingRequests), key.ID)
		}
		if f.RemainingTokens != nil {
			ch <- prometheus.MustNewConstMetric(k.toks, prometheus.GaugeValue, float64(*f.RemainingTokens), key.ID)
		}
		if f.ExhaustsAt != nil {
			ch <- prometheus.MustNewConstMetric(k.dryIn, prometheus.GaugeValue, max(f.ExhaustsAt.Sub(now).Seconds(), 0), key.ID)
			if f.RunningDry(now, pace.RunningDryWithin) {
				dry++
			}
		}
	}
	ch <- prometheus.MustNewConstMetric(k.nDry, prometheus.GaugeValue, float64(dry))
}
