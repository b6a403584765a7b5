package admin

import (
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/keygate/keygate/pool"
	"github.com/keygate/keygate/respond"
)

// keySummary is the dashboard's overview of the pool, counted on the
// server over every key of every model.
type keySummary struct {
	Total    int            `json:"total"`
	ByStatus map[string]int `json:"by_status"` // every status of SPEC section 4, zeros included
	ByClass  map[string]int `json:"by_class"`
	// ReadyForRetry counts keys whose cooldown is over and that wait for
	// their probe.
	ReadyForRetry int `json:"ready_for_retry"`
	// NextRecovery is the soonest time a cooling key comes back.
	NextRecovery *time.Time     `json:"next_recovery,omitempty"`
	Sources      []sourceStatus `json:"sources"`
	At           time.Time      `json:"at"`
}

// sourceStatus is the state of one key fetched from a key service.
type sourceStatus struct {
	KeyID  string   `json:"key_id"`
	Masked string   `json:"masked"`
	Models []string `json:"models"`
	Status string   `json:"status"`
	pool.SourceView
}

// Statuses lists the key statuses of SPEC section 4 in the order
// operators read them.
var Statuses = []string{pool.StatusHealthy, pool.StatusUnused, pool.StatusWarning, pool.StatusError, pool.StatusCooldown, pool.StatusDisabled}

// HandleKeySummary answers GET /api/v1/keys/summary: how many keys there
// are per status and class, and the state of every key source.
func HandleKeySummary(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		now := d.Clock.Now()
		s := keySummary{ByStatus: map[string]int{}, ByClass: map[string]int{}, Sources: []sourceStatus{}, At: now.UTC()}
		for _, st := range Statuses {
			s.ByStatus[st] = 0
		}
		for _, k := range d.Pool.Keys() {
			v := k.View(now)
			s.Total++
			s.ByStatus[v.Status]++
			if v.ErrorClass != "" {
				s.ByClass[v.ErrorClass]++
			}
			if v.NextRetryAt != nil && v.Status != pool.StatusDisabled {
				if v.CooldownSecondsLeft == 0 {
					s.ReadyForRetry++
				} else if s.NextRecovery == nil || v.NextRetryAt.Before(*s.NextRecovery) {
					t := v.NextRetryAt.UTC()
					s.NextRecovery = &t
				}
			}
			if v.Source != nil {
				s.Sources = append(s.Sources, sourceStatus{KeyID: v.ID, Masked: v.Masked, Models: v.Models, Status: v.Status, SourceView: *v.Source})
			}
		}
		slices.SortFunc(s.Sources, func(a, b sourceStatus) int { return strings.Compare(a.KeyID, b.KeyID) })
		respond.JSON(w, http.StatusOK, s)
	})
}
